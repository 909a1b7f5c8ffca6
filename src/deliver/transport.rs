//! Where messages go: an SMTP server (lettre, pooled connections, STARTTLS,
//! AUTH) or, when none is configured, a mailbox folder of `.eml` files.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::DeliverError;
use crate::config::{Smtp, StartTls};

#[derive(Clone)]
pub enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        label: String,
    },
    Mailbox(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// How one send went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted, with the server's reply.
    Sent(String),
    /// Worth another try later (4xx, dropped connection, timeout).
    Transient(String),
    /// Refused for this recipient (5xx).
    Permanent(String),
    /// The server refuses us, not the recipient (authentication, TLS):
    /// stop sending, mark nobody.
    Fatal(String),
}

impl Transport {
    pub fn smtp(smtp: &Smtp, concurrency: usize) -> Result<Self, DeliverError> {
        crate::install_crypto_provider();
        let mut tls_builder = TlsParameters::builder(smtp.host.clone());
        if let Some(ca) = &smtp.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| DeliverError::Setup(format!("smtp.ca_file {}: {e}", ca.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| DeliverError::Setup(format!("smtp.ca_file {}: {e}", ca.display())))?;
            tls_builder = tls_builder.add_root_certificate(cert);
        }
        let params = tls_builder
            .build_rustls()
            .map_err(|e| DeliverError::Setup(format!("TLS settings: {e}")))?;
        let tls = match (smtp.implicit_tls, smtp.starttls) {
            (true, _) => Tls::Wrapper(params),
            (false, StartTls::Required) => Tls::Required(params),
            (false, StartTls::Opportunistic) => Tls::Opportunistic(params),
            (false, StartTls::Never) => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
            .pool_config(PoolConfig::new().max_size(concurrency.max(1) as u32));
        if let (Some(user), Some(pass)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
        }
        let transport: AsyncSmtpTransport<Tokio1Executor> = builder.build();
        let scheme = if smtp.implicit_tls { "smtps" } else { "smtp" };
        Ok(Transport::Smtp {
            transport,
            label: format!("{scheme}://{}:{}", smtp.host, smtp.port),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp { label, .. } => format!("SMTP server {label}"),
            Transport::Mailbox(dir) => format!("mailbox folder {}", dir.display()),
        }
    }

    /// Connects (TLS, AUTH) once before a run, so a wrong password or an
    /// unreachable server stops the run before any delivery is touched.
    pub async fn check(&self) -> Result<(), DeliverError> {
        match self {
            Transport::Smtp { transport, label } => match transport.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(DeliverError::Unavailable(format!("{label}: connection test failed"))),
                Err(e) => Err(DeliverError::Unavailable(format!(
                    "{label}: {}",
                    describe_smtp_error(&e)
                ))),
            },
            Transport::Mailbox(dir) => std::fs::create_dir_all(dir)
                .map_err(|e| DeliverError::Unavailable(format!("mailbox folder {}: {e}", dir.display()))),
        }
    }

    pub async fn send(&self, message: &Message, message_id: &str) -> SendOutcome {
        match self {
            Transport::Smtp { transport, .. } => match transport.send(message.clone()).await {
                Ok(resp) => SendOutcome::Sent(format!(
                    "{} {}",
                    resp.code(),
                    resp.message().collect::<Vec<_>>().join(" ")
                )),
                Err(e) => classify(&e),
            },
            Transport::Mailbox(dir) => {
                let file = dir.join(format!("{}.eml", file_stem(message_id)));
                let tmp = dir.join(format!(".{}.eml.tmp", file_stem(message_id)));
                let bytes = message.formatted();
                // Write then rename: a reader never sees half a message.
                let result = tokio::fs::write(&tmp, &bytes).await;
                let result = match result {
                    Ok(()) => tokio::fs::rename(&tmp, &file).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => SendOutcome::Sent(format!("written to {}", file.display())),
                    Err(e) => SendOutcome::Transient(format!("{}: {e}", file.display())),
                }
            }
        }
    }

    pub async fn shutdown(&self) {
        if let Transport::Smtp { transport, .. } = self {
            transport.shutdown().await;
        }
    }
}

fn file_stem(message_id: &str) -> String {
    message_id
        .trim_matches(|c| c == '<' || c == '>')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The server's reply as an operator reads it ("550 5.1.1 no such user"),
/// or the error chain for failures without a reply.
fn describe_smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    match (e.status(), parts.is_empty()) {
        (Some(code), false) => format!("{code} {}", parts.join(": ")),
        (_, true) => e.to_string(),
        (None, false) => format!("{e}: {}", parts.join(": ")),
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendOutcome {
    let msg = describe_smtp_error(e);
    let code = e.status().map(|c| c.to_string());
    if e.is_permanent() {
        // 530/534/535/538: authentication; the server refuses us, not them.
        if matches!(code.as_deref(), Some("530" | "534" | "535" | "538")) {
            return SendOutcome::Fatal(msg);
        }
        SendOutcome::Permanent(msg)
    } else {
        SendOutcome::Transient(msg)
    }
}
