//! The inbound mail listener of `serve`: SMTP (EHLO/HELO) and LMTP (LHLO,
//! for Postfix's `lmtp:` transport) on `[inbound] listen`. It accepts mail
//! only for the return path's VERP addresses and the unsubscribe address,
//! never relays, and answers 250 only once the event is committed: a
//! crash before that leaves the message with the sender, who tries again.
//! smtp-proto parses the commands; this is the loop around it.

use std::borrow::Cow;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{Quota, RateLimiter};
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use smtp_proto::{EhloResponse, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::{Envelope, Processor};
use crate::config::Inbound;
use crate::domain::Channel;

/// Recipients of one transaction at most.
const MAX_RECIPIENTS: usize = 50;
/// Commands refused in one session before it is closed.
const MAX_ERRORS: usize = 10;

type Limiter = RateLimiter<IpAddr, governor::state::keyed::HashMapStateStore<IpAddr>, governor::clock::DefaultClock>;

/// What one session needs besides its socket.
struct Shared {
    processor: Processor,
    limits: Inbound,
    hostname: String,
    per_client: Limiter,
}

/// Accepts sessions until `stop` turns true; each session runs on its own.
pub async fn serve(
    listener: TcpListener,
    processor: Processor,
    limits: Inbound,
    hostname: String,
    mut stop: watch::Receiver<bool>,
) {
    let per_minute = NonZeroU32::new(limits.messages_per_minute).unwrap_or(NonZeroU32::MIN);
    let shared = Arc::new(Shared {
        processor,
        per_client: RateLimiter::hashmap(Quota::per_minute(per_minute)),
        hostname,
        limits,
    });
    let slots = Arc::new(Semaphore::new(shared.limits.max_connections));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (mut socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("inbound listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(async move {
                let _ = socket
                    .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                    .await;
            });
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _ = socket.set_nodelay(true);
            if let Err(e) = session(&mut socket, peer.ip(), &shared).await {
                tracing::debug!(%peer, "inbound session ended: {e}");
            }
            drop(slot);
        });
    }
}

/// Where a session stands.
#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    recipients: Vec<String>,
}

/// One client's session, until QUIT, a timeout, too many errors or EOF.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut S,
    peer: IpAddr,
    shared: &Shared,
) -> std::io::Result<()> {
    let limits = &shared.limits;
    socket
        .write_all(format!("220 {} tidings inbound ESMTP/LMTP\r\n", shared.hostname).as_bytes())
        .await?;
    let mut channel: Option<Channel> = None;
    let mut transaction = Transaction::default();
    let mut receiver = RequestReceiver::default();
    let mut errors = 0usize;
    let mut chunk = vec![0u8; 16 * 1024];
    // Set while DATA is being read: the receiver, the message so far, and
    // whether it outgrew the limit (then the rest is read and dropped).
    let mut data: Option<(DataReceiver, Vec<u8>, bool)> = None;
    // Each command, and each message, must be complete within `timeout`
    // of the last reply: a client that trickles bytes cannot hold a
    // connection slot for longer than one silent client could.
    let mut deadline = tokio::time::Instant::now() + limits.timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, socket.read(&mut chunk)).await {
            Ok(read) => read?,
            Err(_) => {
                socket
                    .write_all(b"421 4.4.2 Too slow or idle too long, closing\r\n")
                    .await?;
                return Ok(());
            }
        };
        if n == 0 {
            return Ok(());
        }
        let mut bytes = chunk[..n].iter();
        let mut replies: Vec<u8> = Vec::new();
        loop {
            if let Some((data_receiver, message, too_big)) = &mut data {
                let done = data_receiver.ingest(&mut bytes, message);
                if message.len() > limits.max_message_bytes {
                    *too_big = true;
                    message.clear();
                }
                if !done {
                    break;
                }
                let (_, message, too_big) = data.take().unwrap_or_else(|| (DataReceiver::new(), Vec::new(), false));
                let channel = channel.unwrap_or(Channel::Smtp);
                // LMTP answers once per accepted recipient.
                let times = match channel {
                    Channel::Lmtp => transaction.recipients.len().max(1),
                    _ => 1,
                };
                let reply: Cow<'static, str> = if too_big {
                    format!("552 5.3.4 Message larger than {} bytes\r\n", limits.max_message_bytes).into()
                } else {
                    let envelope = Envelope {
                        mail_from: transaction.mail_from.take(),
                        recipients: std::mem::take(&mut transaction.recipients),
                    };
                    match shared.processor.message(&message, &envelope, channel).await {
                        Ok(_) => "250 2.0.0 Recorded\r\n".into(),
                        Err(e) => {
                            tracing::error!("inbound message not recorded, the sender will retry: {e}");
                            "451 4.3.0 Cannot record the message now, try again later\r\n".into()
                        }
                    }
                };
                for _ in 0..times {
                    replies.extend_from_slice(reply.as_bytes());
                }
                transaction = Transaction::default();
                continue;
            }
            let request = match receiver.ingest(&mut bytes) {
                Ok(r) => r,
                Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                Err(e) => {
                    errors += 1;
                    replies.extend_from_slice(syntax_reply(&e).as_bytes());
                    if errors >= MAX_ERRORS {
                        replies.extend_from_slice(b"421 4.7.0 Too many errors, closing\r\n");
                        socket.write_all(&replies).await?;
                        return Ok(());
                    }
                    continue;
                }
            };
            let reply = match request {
                Request::Ehlo { .. } | Request::Lhlo { .. } => {
                    channel = Some(if matches!(request, Request::Lhlo { .. }) {
                        Channel::Lmtp
                    } else {
                        Channel::Smtp
                    });
                    transaction = Transaction::default();
                    let mut ehlo = EhloResponse::new(shared.hostname.as_str());
                    ehlo.capabilities = smtp_proto::EXT_PIPELINING
                        | smtp_proto::EXT_SIZE
                        | smtp_proto::EXT_8BIT_MIME
                        | smtp_proto::EXT_ENHANCED_STATUS_CODES;
                    ehlo.size = limits.max_message_bytes;
                    let mut out = Vec::new();
                    ehlo.write(&mut out)?;
                    replies.extend_from_slice(&out);
                    continue;
                }
                Request::Helo { .. } => {
                    channel = Some(Channel::Smtp);
                    transaction = Transaction::default();
                    format!("250 {}\r\n", shared.hostname).into()
                }
                Request::Mail { from } => {
                    if channel.is_none() {
                        errors += 1;
                        "503 5.5.1 Say EHLO or LHLO first\r\n".into()
                    } else if transaction.mail_from.is_some() {
                        errors += 1;
                        "503 5.5.1 Nested MAIL command\r\n".into()
                    } else if from.size > limits.max_message_bytes {
                        format!("552 5.3.4 Message larger than {} bytes\r\n", limits.max_message_bytes).into()
                    } else if shared.per_client.check_key(&peer).is_err() {
                        tracing::warn!(%peer, "inbound: client over [inbound] messages_per_minute");
                        "450 4.7.1 Too many messages from your address, try again later\r\n".into()
                    } else {
                        transaction.mail_from = Some(from.address.to_string());
                        Cow::Borrowed("250 2.1.0 OK\r\n")
                    }
                }
                Request::Rcpt { to } => {
                    if transaction.mail_from.is_none() {
                        errors += 1;
                        "503 5.5.1 Need MAIL first\r\n".into()
                    } else if transaction.recipients.len() >= MAX_RECIPIENTS {
                        "452 4.5.3 Too many recipients\r\n".into()
                    } else if accepts(&shared.processor, &to.address) {
                        transaction.recipients.push(to.address.to_string());
                        "250 2.1.5 OK\r\n".into()
                    } else {
                        errors += 1;
                        tracing::info!(%peer, rcpt = %to.address, "inbound: refused a recipient that is not ours (no relaying)");
                        "550 5.7.1 Relaying denied: not an address of this server\r\n".into()
                    }
                }
                Request::Data => {
                    if transaction.recipients.is_empty() {
                        errors += 1;
                        "503 5.5.1 Need RCPT first\r\n".into()
                    } else {
                        data = Some((DataReceiver::new(), Vec::new(), false));
                        "354 Send the message, end with <CRLF>.<CRLF>\r\n".into()
                    }
                }
                Request::Rset => {
                    transaction = Transaction::default();
                    "250 2.0.0 OK\r\n".into()
                }
                Request::Noop { .. } => "250 2.0.0 OK\r\n".into(),
                Request::Vrfy { .. } => "252 2.5.0 Cannot verify, send it\r\n".into(),
                Request::Quit => {
                    replies.extend_from_slice(b"221 2.0.0 Bye\r\n");
                    socket.write_all(&replies).await?;
                    return Ok(());
                }
                other => {
                    errors += 1;
                    format!("502 5.5.1 {} is not offered here\r\n", other.name()).into()
                }
            };
            replies.extend_from_slice(reply.as_bytes());
            if errors >= MAX_ERRORS {
                replies.extend_from_slice(b"421 4.7.0 Too many errors, closing\r\n");
                socket.write_all(&replies).await?;
                return Ok(());
            }
        }
        if !replies.is_empty() {
            socket.write_all(&replies).await?;
            deadline = tokio::time::Instant::now() + limits.timeout;
        }
    }
}

/// Whether the listener takes mail for `address`: a VERP address of the
/// return path, or the unsubscribe address.
fn accepts(processor: &Processor, address: &str) -> bool {
    let addresses = processor.addresses();
    let lower = address.trim().to_ascii_lowercase();
    addresses
        .return_path
        .as_ref()
        .is_some_and(|rp| rp.token_of(&lower).is_some())
        || addresses.unsubscribe.as_ref().is_some_and(|u| u.as_str() == lower)
}

fn syntax_reply(e: &smtp_proto::Error) -> String {
    match e {
        smtp_proto::Error::UnknownCommand => "500 5.5.1 Command not recognised\r\n".into(),
        smtp_proto::Error::ResponseTooLong => "500 5.5.2 Line too long\r\n".into(),
        smtp_proto::Error::InvalidSenderAddress => "501 5.1.7 Bad sender address\r\n".into(),
        smtp_proto::Error::InvalidRecipientAddress => "501 5.1.3 Bad recipient address\r\n".into(),
        smtp_proto::Error::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}\r\n"),
        smtp_proto::Error::InvalidParameter { param } => format!("501 5.5.4 Invalid parameter {param}\r\n"),
        smtp_proto::Error::UnsupportedParameter { .. } => "555 5.5.4 Unsupported parameter\r\n".into(),
        _ => "500 5.5.2 Syntax error\r\n".into(),
    }
}
