//! A real SMTP server on 127.0.0.1 for tests: EHLO, STARTTLS (with a CA the
//! test generates), AUTH PLAIN/LOGIN, per-recipient refusals, and capture
//! of every accepted message.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
    pub tls: bool,
    pub auth_user: Option<String>,
}

/// A refusal for recipients whose address contains `pattern`.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub pattern: String,
    pub reply: String,
    /// Refuse only the first N attempts per recipient (greylisting); `None`: always.
    pub times: Option<usize>,
}

#[derive(Default, Clone)]
pub struct SmtpOptions {
    pub tls: Option<TlsAcceptor>,
    /// Require AUTH with these credentials before MAIL.
    pub auth: Option<(String, String)>,
    pub refusals: Vec<Refusal>,
    /// Every Nth message (counted over all connections), after its data:
    /// answer with this reply instead of 250 and close the connection.
    pub fail_every: Option<(usize, String)>,
    /// Every Nth message: close the connection in the middle of its data.
    pub drop_mid_data_every: Option<usize>,
    /// Wait this long before accepting each message (a slow server).
    pub data_delay: Option<std::time::Duration>,
    /// Do not announce PIPELINING (RFC 2920) in the EHLO reply.
    pub no_pipelining: bool,
}

/// State shared by all connections of one server.
#[derive(Default)]
struct Shared {
    messages_seen: std::sync::atomic::AtomicUsize,
    /// MAIL commands that arrived with the next command already behind them.
    pipelined: std::sync::atomic::AtomicUsize,
    attempts: Mutex<std::collections::HashMap<String, usize>>,
    connections: std::sync::atomic::AtomicUsize,
    /// Woken each time a message is accepted.
    accepted: tokio::sync::Notify,
}

pub struct SmtpServer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    shared: Arc<Shared>,
}

impl SmtpServer {
    /// A server that waits `data_delay` before accepting each message.
    pub async fn slow(data_delay: std::time::Duration) -> SmtpServer {
        SmtpServer::start(SmtpOptions {
            data_delay: Some(data_delay),
            ..SmtpOptions::default()
        })
        .await
    }

    pub async fn start(options: SmtpOptions) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&received);
        let shared = Arc::new(Shared::default());
        let counters = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                shared.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (options, store, shared) = (options.clone(), Arc::clone(&store), Arc::clone(&shared));
                tokio::spawn(async move {
                    let _ = session(socket, options, store, shared).await;
                });
            }
        });
        SmtpServer {
            port,
            received,
            shared: counters,
        }
    }

    /// How many connections clients opened.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many transactions the client pipelined (MAIL with RCPT already sent).
    pub fn pipelined(&self) -> usize {
        self.shared.pipelined.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Returns once `n` messages were accepted; panics after `within`.
    pub async fn wait_for_messages(&self, n: usize, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let accepted = self.shared.accepted.notified();
            tokio::pin!(accepted);
            // Registered before the count is read: no message slips between.
            accepted.as_mut().enable();
            if self.received.lock().expect("lock").len() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, accepted).await.is_err() {
                panic!("{n} messages not accepted within {within:?}");
            }
        }
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// How many messages each recipient received.
    pub fn per_recipient(&self) -> std::collections::HashMap<String, usize> {
        let mut counts = std::collections::HashMap::new();
        for m in self.messages() {
            for r in m.rcpt_to {
                *counts.entry(r).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// A CA and a certificate for 127.0.0.1/localhost signed by it.
pub struct TestCa {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

/// A CA and a certificate for 127.0.0.1/localhost signed by it.
pub fn test_ca() -> TestCa {
    tls_with(None)
}

/// Certificates an operator's relay may have that tidings must refuse.
#[derive(Debug, Clone, Copy)]
pub enum BadCert {
    /// Self-signed and marked as a CA (`openssl req -x509`'s default).
    CaAsServer,
    Expired,
    /// Issued for another host name.
    WrongName,
    /// Signed by a CA other than the one `ca_pem` holds.
    UnknownIssuer,
}

/// A test CA (in `ca_pem`) and a server certificate, good or `bad`.
pub fn tls_with(bad: Option<BadCert>) -> TestCa {
    tidings::install_crypto_provider();
    let names = match bad {
        Some(BadCert::WrongName) => vec!["other.example".to_string()],
        _ => vec!["127.0.0.1".to_string(), "localhost".to_string()],
    };
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let authority = ca_params("tidings test CA");
    let ca_cert = authority.self_signed(&ca_key).expect("ca cert");
    if let Some(BadCert::CaAsServer) = bad {
        let mut params = ca_params("127.0.0.1");
        params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        return acceptor(cert.pem(), vec![cert.der().clone()], &key);
    }
    let issuer = rcgen::Issuer::new(authority, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let mut leaf_params = rcgen::CertificateParams::new(names).expect("leaf params");
    if let Some(BadCert::Expired) = bad {
        leaf_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf_params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf cert");
    let trusted_pem = match bad {
        Some(BadCert::UnknownIssuer) => {
            let other = rcgen::KeyPair::generate().expect("key");
            ca_params("another CA").self_signed(&other).expect("cert").pem()
        }
        _ => ca_cert.pem(),
    };
    acceptor(trusted_pem, vec![leaf.der().clone(), ca_cert.der().clone()], &leaf_key)
}

/// A test CA (in `ca_pem`) and a server certificate for host `name`.
pub fn tls_for(name: &str) -> TestCa {
    tidings::install_crypto_provider();
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let authority = ca_params("tidings test CA");
    let ca_cert = authority.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(authority, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf = rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    acceptor(
        ca_cert.pem(),
        vec![leaf.der().clone(), ca_cert.der().clone()],
        &leaf_key,
    )
}

fn ca_params(name: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn acceptor(ca_pem: String, chain: Vec<rustls::pki_types::CertificateDer<'static>>, key: &rcgen::KeyPair) -> TestCa {
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    TestCa {
        ca_pem,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn session(
    socket: tokio::net::TcpStream,
    options: SmtpOptions,
    store: Arc<Mutex<Vec<Received>>>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let mut stream: BufReader<Box<dyn Io>> = BufReader::new(Box::new(socket));
    let mut tls = false;
    let mut authed: Option<String> = None;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    write(&mut stream, "220 localhost test ESMTP\r\n").await?;
    loop {
        let Some(line) = read_line(&mut stream).await? else {
            return Ok(());
        };
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut reply = String::from("250-localhost\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n");
            if options.tls.is_some() && !tls {
                reply.push_str("250-STARTTLS\r\n");
            }
            if options.auth.is_some() && (tls || options.tls.is_none()) {
                reply.push_str("250-AUTH PLAIN LOGIN\r\n");
            }
            reply.push_str(if options.no_pipelining {
                "250 HELP\r\n"
            } else {
                "250 PIPELINING\r\n"
            });
            write(&mut stream, &reply).await?;
        } else if upper == "STARTTLS" {
            let Some(acceptor) = options.tls.clone().filter(|_| !tls) else {
                write(&mut stream, "454 TLS not available\r\n").await?;
                continue;
            };
            write(&mut stream, "220 go ahead\r\n").await?;
            let inner = stream.into_inner();
            let tls_stream = acceptor.accept(inner).await?;
            stream = BufReader::new(Box::new(tls_stream));
            tls = true;
            mail_from = None;
            rcpt_to.clear();
        } else if upper.starts_with("AUTH PLAIN") {
            let arg = line[10..].trim().to_string();
            let arg = if arg.is_empty() {
                write(&mut stream, "334 \r\n").await?;
                read_line(&mut stream).await?.unwrap_or_default()
            } else {
                arg
            };
            let decoded = B64.decode(arg.trim()).unwrap_or_default();
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            let ok = parts.len() == 3 && check_auth(&options, parts[1], parts[2]);
            if ok {
                authed = Some(String::from_utf8_lossy(parts[1]).into_owned());
                write(&mut stream, "235 2.7.0 authenticated\r\n").await?;
            } else {
                write(&mut stream, "535 5.7.8 authentication failed\r\n").await?;
            }
        } else if upper.starts_with("AUTH LOGIN") {
            write(&mut stream, "334 VXNlcm5hbWU6\r\n").await?;
            let user = B64
                .decode(read_line(&mut stream).await?.unwrap_or_default().trim())
                .unwrap_or_default();
            write(&mut stream, "334 UGFzc3dvcmQ6\r\n").await?;
            let pass = B64
                .decode(read_line(&mut stream).await?.unwrap_or_default().trim())
                .unwrap_or_default();
            if check_auth(&options, &user, &pass) {
                authed = Some(String::from_utf8_lossy(&user).into_owned());
                write(&mut stream, "235 2.7.0 authenticated\r\n").await?;
            } else {
                write(&mut stream, "535 5.7.8 authentication failed\r\n").await?;
            }
        } else if upper.starts_with("MAIL FROM:") {
            if options.auth.is_some() && authed.is_none() {
                write(&mut stream, "530 5.7.0 authentication required\r\n").await?;
                continue;
            }
            if !stream.buffer().is_empty() {
                shared.pipelined.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            mail_from = Some(addr(&line[10..]));
            rcpt_to.clear();
            write(&mut stream, "250 2.1.0 ok\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let to = addr(&line[8..]);
            if let Some(r) = options.refusals.iter().find(|r| to.contains(&r.pattern)) {
                let attempt = {
                    let mut attempts = shared.attempts.lock().expect("lock");
                    let n = attempts.entry(to.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                if r.times.is_none_or(|t| attempt <= t) {
                    write(&mut stream, &format!("{}\r\n", r.reply)).await?;
                    continue;
                }
            }
            rcpt_to.push(to);
            write(&mut stream, "250 2.1.5 ok\r\n").await?;
        } else if upper == "DATA" {
            if mail_from.is_none() || rcpt_to.is_empty() {
                write(&mut stream, "503 5.5.1 need MAIL and RCPT first\r\n").await?;
                continue;
            }
            write(&mut stream, "354 end with <CRLF>.<CRLF>\r\n").await?;
            let nth = shared.messages_seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if options.drop_mid_data_every.is_some_and(|n| nth.is_multiple_of(n)) {
                // Read a little of the message, then hang up without a reply.
                let mut first = Vec::new();
                let _ = stream.read_until(b'\n', &mut first).await;
                return Ok(());
            }
            let mut data = Vec::new();
            loop {
                let mut raw = Vec::new();
                if stream.read_until(b'\n', &mut raw).await? == 0 {
                    return Ok(());
                }
                if raw == b".\r\n" || raw == b".\n" {
                    break;
                }
                // Dot-unstuffing (RFC 5321 4.5.2).
                let start = usize::from(raw.starts_with(b".."));
                data.extend_from_slice(&raw[start..]);
            }
            if let Some(delay) = options.data_delay {
                tokio::time::sleep(delay).await;
            }
            if let Some((_, reply)) = options.fail_every.as_ref().filter(|(n, _)| nth.is_multiple_of(*n)) {
                write(&mut stream, &format!("{reply}\r\n")).await?;
                return Ok(());
            }
            store.lock().expect("lock").push(Received {
                mail_from: mail_from.take().unwrap_or_default(),
                rcpt_to: std::mem::take(&mut rcpt_to),
                data,
                tls,
                auth_user: authed.clone(),
            });
            shared.accepted.notify_waiters();
            write(&mut stream, "250 2.0.0 queued\r\n").await?;
        } else if upper == "RSET" {
            mail_from = None;
            rcpt_to.clear();
            write(&mut stream, "250 ok\r\n").await?;
        } else if upper == "NOOP" {
            write(&mut stream, "250 ok\r\n").await?;
        } else if upper == "QUIT" {
            write(&mut stream, "221 bye\r\n").await?;
            return Ok(());
        } else {
            write(&mut stream, "502 5.5.2 command not recognised\r\n").await?;
        }
    }
}

fn check_auth(options: &SmtpOptions, user: &[u8], pass: &[u8]) -> bool {
    options
        .auth
        .as_ref()
        .is_some_and(|(u, p)| u.as_bytes() == user && p.as_bytes() == pass)
}

fn addr(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg.split('>').next().unwrap_or(arg).trim_start_matches('<');
    inner.to_string()
}

async fn read_line(stream: &mut BufReader<Box<dyn Io>>) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

async fn write(stream: &mut BufReader<Box<dyn Io>>, text: &str) -> std::io::Result<()> {
    stream.get_mut().write_all(text.as_bytes()).await?;
    stream.get_mut().flush().await
}
