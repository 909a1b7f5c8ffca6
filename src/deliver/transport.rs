//! Where messages go: an SMTP server (lettre, pooled connections, STARTTLS,
//! AUTH) or, when none is configured, a mailbox folder of `.eml` files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::DeliverError;
use crate::config::{Smtp, StartTls};

#[derive(Clone)]
pub enum Transport {
    Smtp { smtp: SmtpKind, label: String },
    Mailbox(PathBuf),
}

/// `smtp://` goes through tidings' own pool of connections, which turns
/// Nagle's algorithm off: lettre writes a message and its final `.` line
/// apart, and with Nagle on each message would wait for the server's
/// delayed ACK. `smtps://` uses lettre's pool.
#[derive(Clone)]
pub enum SmtpKind {
    Direct(Arc<SmtpPool>),
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
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

/// Idle SMTP connections (plain TCP, then STARTTLS and AUTH as configured),
/// reused message after message.
pub struct SmtpPool {
    host: String,
    port: u16,
    starttls: StartTls,
    tls: TlsParameters,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    idle: std::sync::Mutex<Vec<Connection>>,
}

/// A connection of the pool, and whether its server pipelines.
struct Connection {
    smtp: AsyncSmtpConnection,
    /// The server announced PIPELINING (RFC 2920).
    pipelining: bool,
}

/// Why a transaction did not end in "accepted", and whether the
/// connection is still usable for the next one.
struct TransactionError {
    error: lettre::transport::smtp::Error,
    /// Both sides agree where the dialogue stands (every command got its
    /// reply): after an RSET the connection can carry the next message.
    in_sync: bool,
}

impl TransactionError {
    fn from_reply(error: lettre::transport::smtp::Error) -> Self {
        // A reply with a code keeps the dialogue in step; anything else
        // (a network error, an unreadable reply) does not.
        let in_sync = error.status().is_some();
        TransactionError { error, in_sync }
    }
}

/// Text written to the server as it is (lettre's `command` takes anything
/// that displays).
struct Raw<'a>(&'a str);

impl std::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The DATA payload for `message`: SMTP transparency (RFC 5321 4.5.2: a
/// line that starts with "." gets one more), then the end-of-data line,
/// exactly as lettre's own codec writes them.
fn data_payload(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    if message.first() == Some(&b'.') {
        out.push(b'.');
    }
    let mut copied = 0;
    for at in memchr::memmem::find_iter(message, b"\r\n.") {
        out.extend_from_slice(&message[copied..at + 2]);
        out.push(b'.');
        copied = at + 2;
    }
    out.extend_from_slice(&message[copied..]);
    out.extend_from_slice(b"\r\n.\r\n");
    out
}

/// One mail transaction on a connection whose server pipelines: MAIL, RCPT
/// and DATA go out in one write and their replies are read after it; the
/// message and its end-of-data line go in a second. Two round trips per
/// message instead of lettre's four, and a refusal leaves the connection
/// usable. Messages that need SMTPUTF8 or 8BITMIME take lettre's own path.
async fn pipelined_transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    email: &[u8],
) -> Result<Response, TransactionError> {
    let mut group = Mail::new(envelope.from().cloned(), vec![]).to_string();
    for to in envelope.to() {
        group.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
    }
    group.push_str("DATA\r\n");
    // Every reply is read, refusals included, so the dialogue stays in step.
    let mut replies = vec![conn.command(Raw(&group)).await];
    for _ in 0..=envelope.to().len() {
        if replies
            .last()
            .is_some_and(|r| r.as_ref().is_err_and(|e| e.status().is_none()))
        {
            break;
        }
        replies.push(conn.read_response().await);
    }
    let data_accepted = replies.len() == envelope.to().len() + 2 && replies.last().is_some_and(Result::is_ok);
    if let Some(first_error) = replies.into_iter().find_map(Result::err) {
        let mut failed = TransactionError::from_reply(first_error);
        if data_accepted {
            // A server that takes DATA after refusing MAIL or RCPT: end the
            // dialogue rather than send an empty message.
            conn.abort().await;
            failed.in_sync = false;
        }
        return Err(failed);
    }
    let payload = data_payload(email);
    match std::str::from_utf8(&payload) {
        Ok(text) => conn.command(Raw(text)).await,
        // Not reached for ASCII messages; lettre's codec handles the rest.
        Err(_) => conn.message(email).await,
    }
    .map_err(TransactionError::from_reply)
}

/// Whether an EHLO reply announces PIPELINING.
fn announces_pipelining(ehlo: &Response) -> bool {
    ehlo.message().any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("PIPELINING"))
    })
}

impl SmtpPool {
    async fn connect(&self) -> Result<Connection, PoolError> {
        let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        let tcp = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| io_error(std::io::ErrorKind::TimedOut, "connect timed out"))?
            .map_err(lettre_network)?;
        tcp.set_nodelay(true).map_err(lettre_network)?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
        match self.starttls {
            StartTls::Never => {}
            StartTls::Opportunistic if !conn.can_starttls() => {}
            StartTls::Opportunistic | StartTls::Required => conn.starttls(self.tls.clone(), &self.hello).await?,
        }
        // lettre keeps only the extensions it uses from the EHLO reply; ask
        // again (before AUTH, which some servers forget on a new EHLO) to
        // learn whether the server pipelines.
        let pipelining = announces_pipelining(&conn.command(Ehlo::new(self.hello.clone())).await?);
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await?;
        }
        Ok(Connection { smtp: conn, pipelining })
    }

    async fn checkout(&self) -> Result<Connection, PoolError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect().await,
        }
    }

    fn checkin(&self, conn: Connection) {
        if !conn.smtp.has_broken()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(conn);
        }
    }

    async fn send(&self, message: &Message) -> Result<Response, PoolError> {
        let mut conn = self.checkout().await?;
        let bytes = message.formatted();
        let envelope = message.envelope();
        let plain = bytes.is_ascii()
            && envelope
                .to()
                .iter()
                .chain(envelope.from())
                .all(|a| AsRef::<str>::as_ref(a).is_ascii());
        let transaction = async {
            if conn.pipelining && plain {
                pipelined_transaction(&mut conn.smtp, envelope, &bytes).await
            } else {
                // lettre ends the connection after any refusal.
                conn.smtp
                    .send(envelope, &bytes)
                    .await
                    .map_err(|error| TransactionError { error, in_sync: false })
            }
        };
        match tokio::time::timeout(self.timeout, transaction).await {
            Ok(Ok(response)) => {
                self.checkin(conn);
                Ok(response)
            }
            Ok(Err(failed)) => {
                // After a refusal the connection is still good (RSET); after
                // a network error it is dropped.
                if failed.in_sync && !conn.smtp.has_broken() && conn.smtp.command(Rset).await.is_ok() {
                    self.checkin(conn);
                }
                Err(PoolError::Smtp(failed.error))
            }
            Err(_) => Err(io_error(std::io::ErrorKind::TimedOut, "SMTP command timed out")),
        }
    }

    async fn close(&self) {
        let conns: Vec<Connection> = self
            .idle
            .lock()
            .map(|mut idle| idle.drain(..).collect())
            .unwrap_or_default();
        for mut conn in conns {
            let _ = conn.smtp.quit().await;
        }
    }
}

/// A failure of the pool: an SMTP exchange (with or without a reply), or a
/// connection that could not be made or timed out.
#[derive(Debug)]
enum PoolError {
    Smtp(lettre::transport::smtp::Error),
    Network(String),
}

impl From<lettre::transport::smtp::Error> for PoolError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        PoolError::Smtp(e)
    }
}

impl PoolError {
    fn describe(&self) -> String {
        match self {
            PoolError::Smtp(e) => describe_smtp_error(e),
            PoolError::Network(e) => e.clone(),
        }
    }
}

fn io_error(_kind: std::io::ErrorKind, msg: &str) -> PoolError {
    PoolError::Network(msg.to_string())
}

fn lettre_network(e: std::io::Error) -> PoolError {
    PoolError::Network(tls_problem(&e).unwrap_or_else(|| e.to_string()))
}

/// A refused server certificate, said in words with what the operator can
/// do, or `None` when the error is something else.
pub fn tls_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::CertificateError as C;
    // An io::Error's `source` skips the error it wraps: look inside too.
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    let certificate = loop {
        let s = pending.pop()?;
        if let Some(rustls::Error::InvalidCertificate(c)) = s.downcast_ref::<rustls::Error>() {
            break c;
        }
        if let Some(inner) = s.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            pending.push(inner);
        }
        if let Some(next) = s.source() {
            pending.push(next);
        }
    };
    let what = match certificate {
        C::Expired | C::ExpiredContext { .. } => {
            "has expired: renew it on the server".to_string()
        }
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "is not valid yet: check the clocks of the server and of this machine".to_string()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "is issued for another host name: put the name the certificate names in [smtp] url, or give the server a certificate for the name you use".to_string()
        }
        C::UnknownIssuer => {
            "is signed by an authority this machine does not trust: set [smtp] ca_file to that authority's certificate (PEM), or use a certificate from a public authority".to_string()
        }
        C::Revoked => "has been revoked: the server needs a new certificate".to_string(),
        C::BadSignature => "carries a signature that does not verify: the server's certificate chain is broken".to_string(),
        other => {
            let detail = format!("{other:?}");
            if detail.contains("CaUsedAsEndEntity") {
                "is a CA certificate used as the server's own (what `openssl req -x509` makes by default): issue the server a certificate signed by that CA, with basicConstraints CA:FALSE, and set [smtp] ca_file to the CA".to_string()
            } else {
                format!("was refused ({other})")
            }
        }
    };
    Some(format!("TLS: the SMTP server's certificate {what}"))
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
        let credentials = match (&smtp.username, &smtp.password) {
            (Some(user), Some(pass)) => Some(Credentials::new(user.clone(), pass.expose().to_string())),
            _ => None,
        };
        let scheme = if smtp.implicit_tls { "smtps" } else { "smtp" };
        let label = format!("{scheme}://{}:{}", smtp.host, smtp.port);
        if !smtp.implicit_tls {
            let pool = SmtpPool {
                host: smtp.host.clone(),
                port: smtp.port,
                starttls: smtp.starttls,
                tls: params,
                credentials,
                timeout: Duration::from_secs(smtp.timeout_secs),
                hello: ClientId::default(),
                idle: std::sync::Mutex::new(Vec::new()),
            };
            return Ok(Transport::Smtp {
                smtp: SmtpKind::Direct(Arc::new(pool)),
                label,
            });
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
            .port(smtp.port)
            .tls(Tls::Wrapper(params))
            .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
            .pool_config(PoolConfig::new().max_size(concurrency.max(1) as u32));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        let transport: AsyncSmtpTransport<Tokio1Executor> = builder.build();
        Ok(Transport::Smtp {
            smtp: SmtpKind::Lettre(transport),
            label,
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
            Transport::Smtp {
                smtp: SmtpKind::Direct(pool),
                label,
            } => match pool.checkout().await {
                Ok(conn) => {
                    pool.checkin(conn);
                    Ok(())
                }
                Err(e) => Err(DeliverError::Unavailable(format!("{label}: {}", e.describe()))),
            },
            Transport::Smtp {
                smtp: SmtpKind::Lettre(transport),
                label,
            } => match transport.test_connection().await {
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
        let result = match self {
            Transport::Smtp {
                smtp: SmtpKind::Direct(pool),
                ..
            } => pool.send(message).await,
            Transport::Smtp {
                smtp: SmtpKind::Lettre(transport),
                ..
            } => transport.send(message.clone()).await.map_err(PoolError::Smtp),
            Transport::Mailbox(dir) => return write_to_mailbox(dir, message, message_id).await,
        };
        match result {
            Ok(resp) => SendOutcome::Sent(format!(
                "{} {}",
                resp.code(),
                resp.message().collect::<Vec<_>>().join(" ")
            )),
            Err(PoolError::Smtp(e)) => classify(&e),
            // Could not connect, or timed out: try again later.
            Err(PoolError::Network(e)) => SendOutcome::Transient(e),
        }
    }

    /// Sends one message outside any ledger (a confirmation, a test): the
    /// server's reply, or why it was not accepted.
    pub async fn send_one(&self, message: &Message, message_id: &str) -> Result<String, DeliverError> {
        match self.send(message, message_id).await {
            SendOutcome::Sent(reply) => Ok(reply),
            SendOutcome::Transient(r) | SendOutcome::Permanent(r) | SendOutcome::Fatal(r) => {
                Err(DeliverError::Unavailable(format!("not accepted: {r}")))
            }
        }
    }

    pub async fn shutdown(&self) {
        match self {
            Transport::Smtp {
                smtp: SmtpKind::Direct(pool),
                ..
            } => pool.close().await,
            Transport::Smtp {
                smtp: SmtpKind::Lettre(transport),
                ..
            } => transport.shutdown().await,
            Transport::Mailbox(_) => {}
        }
    }
}

async fn write_to_mailbox(dir: &std::path::Path, message: &Message, message_id: &str) -> SendOutcome {
    let file = dir.join(format!("{}.eml", file_stem(message_id)));
    let tmp = dir.join(format!(".{}.eml.tmp", file_stem(message_id)));
    // What a final delivery writes on top: the envelope sender, which is
    // the VERP address when a return path is configured.
    let mut bytes = match message.envelope().from() {
        Some(sender) => format!("Return-Path: <{sender}>\r\n").into_bytes(),
        None => Vec::new(),
    };
    bytes.extend_from_slice(&message.formatted());
    if let Err(e) = tokio::fs::create_dir_all(dir).await {
        return SendOutcome::Transient(format!("mailbox folder {}: {e}", dir.display()));
    }
    // Write then rename: a reader never sees half a message.
    let result = match tokio::fs::write(&tmp, &bytes).await {
        Ok(()) => tokio::fs::rename(&tmp, &file).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => SendOutcome::Sent(format!("written to {}", file.display())),
        Err(e) => SendOutcome::Transient(format!("{}: {e}", file.display())),
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
    if let Some(words) = tls_problem(e) {
        return words;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_payload_stuffs_leading_dots_like_lettres_codec() {
        assert_eq!(data_payload(b"a\r\nb\r\n"), b"a\r\nb\r\n\r\n.\r\n");
        assert_eq!(
            data_payload(b".first\r\n..two\r\nmid.dle\r\n.\r\n"),
            b"..first\r\n...two\r\nmid.dle\r\n..\r\n\r\n.\r\n"
        );
        // A bare LF does not start a line for SMTP; lettre leaves it alone too.
        assert_eq!(data_payload(b"x\n.y"), b"x\n.y\r\n.\r\n");
    }

    #[test]
    fn pipelining_is_read_from_the_ehlo_reply() {
        let reply = |lines: &[&str]| {
            Response::new(
                lettre::transport::smtp::response::Code::new(
                    lettre::transport::smtp::response::Severity::PositiveCompletion,
                    lettre::transport::smtp::response::Category::MailSystem,
                    lettre::transport::smtp::response::Detail::Zero,
                ),
                lines.iter().map(|l| l.to_string()).collect(),
            )
        };
        assert!(announces_pipelining(&reply(&[
            "mx.example.com",
            "SIZE 10240000",
            "pipelining"
        ])));
        assert!(!announces_pipelining(&reply(&[
            "mx.example.com",
            "SIZE 10240000",
            "8BITMIME"
        ])));
        assert!(!announces_pipelining(&reply(&["PIPELININGX"])));
    }
}
