//! `[inbound] mailbox`: an IMAP folder that a relay drops bounces into,
//! read by the daemon. Each message is read without marking it seen,
//! recorded through the processor, and only then moved to the processed
//! folder; a message that could not be recorded stays where it is for the
//! next pass. Nothing is ever deleted unread. Waits with IMAP IDLE where the
//! server offers it (with a timeout well under IDLE's 29 minutes), else
//! polls every `mailbox_poll`.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::{Envelope, Processor};
use crate::config::ImapMailbox;
use crate::domain::Channel;

/// A connection to the server, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

type Session = async_imap::Session<Box<dyn Io>>;

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("{mailbox}: cannot connect: {reason}")]
    Connect { mailbox: String, reason: String },
    #[error("{mailbox}: the server refused the login: {reason}")]
    Login { mailbox: String, reason: String },
    #[error("{mailbox}: {reason}")]
    Imap { mailbox: String, reason: String },
}

/// What one pass over the folder did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// Messages recorded (or recognised as recorded before) and moved.
    pub moved: usize,
    /// Messages left in the folder because they could not be recorded.
    pub left: usize,
}

/// Reads the mailbox until `stop` turns true, reconnecting after failures
/// (after 5 s, doubling to 5 minutes).
pub async fn run(mailbox: ImapMailbox, processor: Processor, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(5);
    loop {
        let result = tokio::select! {
            r = session_loop(&mailbox, &processor) => r,
            _ = stop.changed() => return,
        };
        if let Err(e) = result {
            tracing::warn!("inbound mailbox: {e}; trying again in {}s", backoff.as_secs());
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(300));
    }
}

/// One connection: passes over the folder, waiting between them.
async fn session_loop(mailbox: &ImapMailbox, processor: &Processor) -> Result<(), MailboxError> {
    let mut session = connect(mailbox).await?;
    let idle = session
        .capabilities()
        .await
        .map_err(|e| imap_error(mailbox, "CAPABILITY", e))?
        .has_str("IDLE");
    tracing::info!(%mailbox, idle, "inbound mailbox connected");
    loop {
        let report = pass(&mut session, mailbox, processor).await?;
        if report.moved + report.left > 0 {
            tracing::info!(%mailbox, moved = report.moved, left = report.left, "inbound mailbox read");
        }
        if idle && report.left == 0 {
            let mut handle = session.idle();
            handle.init().await.map_err(|e| imap_error(mailbox, "IDLE", e))?;
            let (wait, _stop) = handle.wait_with_timeout(mailbox.poll.min(Duration::from_secs(20 * 60)));
            wait.await.map_err(|e| imap_error(mailbox, "IDLE", e))?;
            session = handle.done().await.map_err(|e| imap_error(mailbox, "DONE", e))?;
        } else {
            tokio::time::sleep(mailbox.poll).await;
            // Keeps the connection alive, and tells a dead one.
            session.noop().await.map_err(|e| imap_error(mailbox, "NOOP", e))?;
        }
    }
}

/// Connects, logs in and selects the folder; creates the processed folder
/// when it is missing.
pub async fn connect(mailbox: &ImapMailbox) -> Result<Session, MailboxError> {
    let connect_error = |reason: String| MailboxError::Connect {
        mailbox: mailbox.to_string(),
        reason,
    };
    let tcp = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::net::TcpStream::connect((mailbox.host.as_str(), mailbox.port)),
    )
    .await
    .map_err(|_| connect_error("timed out".into()))?
    .map_err(|e| connect_error(e.to_string()))?;
    let stream: Box<dyn Io> = if mailbox.tls {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(mailbox.host.clone())
            .map_err(|e| connect_error(format!("\"{}\" is not a server name: {e}", mailbox.host)))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| connect_error(format!("TLS: {e}")))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut client = async_imap::Client::new(stream);
    client
        .read_response()
        .await
        .map_err(|e| connect_error(format!("no greeting: {e}")))?
        .ok_or_else(|| connect_error("closed before its greeting".into()))?;
    let mut session = client
        .login(&mailbox.user, mailbox.password.expose())
        .await
        .map_err(|(e, _)| MailboxError::Login {
            mailbox: mailbox.to_string(),
            reason: e.to_string(),
        })?;
    // CREATE fails when the folder exists; that is fine.
    let _ = session.create(&mailbox.processed_folder).await;
    session
        .select(&mailbox.folder)
        .await
        .map_err(|e| imap_error(mailbox, "SELECT", e))?;
    Ok(session)
}

fn imap_error(mailbox: &ImapMailbox, command: &str, e: async_imap::error::Error) -> MailboxError {
    MailboxError::Imap {
        mailbox: mailbox.to_string(),
        reason: format!("{command} failed: {e}"),
    }
}

/// Every message in the folder: read (without \Seen), recorded, moved.
pub async fn pass(
    session: &mut Session,
    mailbox: &ImapMailbox,
    processor: &Processor,
) -> Result<PassReport, MailboxError> {
    let mut uids: Vec<u32> = session
        .uid_search("ALL")
        .await
        .map_err(|e| imap_error(mailbox, "UID SEARCH", e))?
        .into_iter()
        .collect();
    uids.sort_unstable();
    let can_move = uids.is_empty()
        || session
            .capabilities()
            .await
            .map_err(|e| imap_error(mailbox, "CAPABILITY", e))?
            .has_str("MOVE");
    let mut report = PassReport::default();
    for uid in uids {
        let messages: Vec<_> = session
            .uid_fetch(uid.to_string(), "BODY.PEEK[]")
            .await
            .map_err(|e| imap_error(mailbox, "UID FETCH", e))?
            .try_collect()
            .await
            .map_err(|e| imap_error(mailbox, "UID FETCH", e))?;
        let Some(raw) = messages.iter().find_map(|m| m.body()) else {
            continue;
        };
        match processor.message(raw, &Envelope::default(), Channel::Imap).await {
            Ok(_) => {
                move_message(session, mailbox, uid, can_move).await?;
                report.moved += 1;
            }
            Err(e) => {
                tracing::warn!(%mailbox, uid, "inbound mailbox: message left in the folder for the next pass: {e}");
                report.left += 1;
            }
        }
    }
    Ok(report)
}

/// MOVE where the server has it (RFC 6851); else COPY, then flag the
/// original deleted and expunge it — after the copy succeeded.
async fn move_message(
    session: &mut Session,
    mailbox: &ImapMailbox,
    uid: u32,
    can_move: bool,
) -> Result<(), MailboxError> {
    let set = uid.to_string();
    if can_move {
        return session
            .uid_mv(&set, &mailbox.processed_folder)
            .await
            .map_err(|e| imap_error(mailbox, "UID MOVE", e));
    }
    session
        .uid_copy(&set, &mailbox.processed_folder)
        .await
        .map_err(|e| imap_error(mailbox, "UID COPY", e))?;
    let _: Vec<_> = session
        .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
        .await
        .map_err(|e| imap_error(mailbox, "UID STORE", e))?
        .try_collect()
        .await
        .map_err(|e| imap_error(mailbox, "UID STORE", e))?;
    let _: Vec<_> = session
        .expunge()
        .await
        .map_err(|e| imap_error(mailbox, "EXPUNGE", e))?
        .try_collect()
        .await
        .map_err(|e| imap_error(mailbox, "EXPUNGE", e))?;
    Ok(())
}
