//! `tidings doctor`: what decides whether the mail arrives and whether
//! what comes back is heard — SPF, DKIM, DMARC, the return path's MX, the
//! public site and both unsubscribe paths — each checked from outside, the
//! way a receiver or a reader would, and said in words with what to fix.
//! DNS goes to `[doctor] nameservers` (else the system's resolver), and the
//! site's name is resolved the same way.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dmarc::{Alignment, Dmarc, Policy};
use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::rr::RData;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfResult};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::app::App;
use crate::config::Config;
use crate::token::Purpose;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Worth knowing, but tidings cannot tell or it does not stop mail.
    Warn,
    Fail,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One check's result, said in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

fn finding(check: &'static str, verdict: Verdict, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        verdict,
        detail: detail.into(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("cannot set up the DNS resolver: {0}")]
    Resolver(String),
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

pub struct Doctor {
    dns: MessageAuthenticator,
    http: reqwest::Client,
}

impl Doctor {
    pub fn new(settings: &crate::config::Doctor) -> Result<Doctor, DoctorError> {
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_secs(5);
        options.attempts = 2;
        let dns = if settings.nameservers.is_empty() {
            MessageAuthenticator::new_system_conf()
        } else {
            let servers = settings
                .nameservers
                .iter()
                .map(|address| {
                    let mut server = NameServerConfig::udp_and_tcp(address.ip());
                    for connection in &mut server.connections {
                        connection.port = address.port();
                    }
                    server
                })
                .collect();
            MessageAuthenticator::new(ResolverConfig::from_name_servers(servers), options)
        }
        .map_err(|e| DoctorError::Resolver(e.to_string()))?;
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(Lookup(dns.resolver().clone())))
            .user_agent(concat!("tidings-doctor/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Doctor { dns, http })
    }

    /// Every check, in the order a message travels.
    pub async fn examine(&self, app: &App) -> Vec<Finding> {
        let config = &app.config;
        vec![
            self.spf(config).await,
            self.dkim(config).await,
            self.dmarc(config).await,
            self.return_path_mx(config).await,
            self.site(config).await,
            self.one_click(app).await,
            self.mail_unsubscribe(config).await,
        ]
    }

    fn resolver(&self) -> &TokioResolver {
        self.dns.resolver()
    }

    /// The TXT records at `name`, each one string; none when the name or
    /// the records do not exist.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        match self.resolver().txt_lookup(format!("{name}.")).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => {
                        let bytes: Vec<u8> = txt.txt_data.iter().flat_map(|part| part.iter().copied()).collect();
                        Some(String::from_utf8_lossy(&bytes).into_owned())
                    }
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(format!("cannot look up {name}: {e}")),
        }
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match self.resolver().lookup_ip(format!("{host}.")).await {
            Ok(found) => Ok(found.iter().collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(format!("cannot look up {host}: {e}")),
        }
    }

    /// SPF of the envelope sender's domain (the return path's, else the
    /// From address's), evaluated for the relay's addresses.
    async fn spf(&self, config: &Config) -> Finding {
        const CHECK: &str = "spf";
        let (domain, sender) = envelope_sender(config);
        let records = match self.txt(&domain).await {
            Ok(r) => r,
            Err(e) => return finding(CHECK, Verdict::Fail, e),
        };
        let spf: Vec<&String> = records
            .iter()
            .filter(|r| r.to_ascii_lowercase().starts_with("v=spf1"))
            .collect();
        match spf.len() {
            0 => {
                return finding(
                    CHECK,
                    Verdict::Fail,
                    format!(
                        "{domain} has no SPF record: publish a TXT record \"v=spf1 <your relay's ip4:/include: mechanisms> -all\""
                    ),
                );
            }
            1 => {}
            n => {
                return finding(
                    CHECK,
                    Verdict::Fail,
                    format!("{domain} has {n} SPF records, which receivers treat as an error: merge them into one"),
                );
            }
        }
        let Some(smtp) = &config.smtp else {
            return finding(
                CHECK,
                Verdict::Warn,
                format!(
                    "{domain} has an SPF record, but there is no [smtp] relay (messages go to the mailbox folder), so whom it must authorise cannot be told"
                ),
            );
        };
        let ips = match self.addresses(&smtp.host).await {
            Ok(ips) if !ips.is_empty() => ips,
            Ok(_) => {
                return finding(
                    CHECK,
                    Verdict::Fail,
                    format!("the relay {} has no address in DNS", smtp.host),
                );
            }
            Err(e) => return finding(CHECK, Verdict::Fail, e),
        };
        if ips.iter().all(|ip| crate::collect::guard::is_internal(*ip)) {
            return finding(
                CHECK,
                Verdict::Warn,
                format!(
                    "{domain} has an SPF record; the relay {} is on an internal address, so the address mail leaves from — the one SPF must authorise — cannot be told from here",
                    smtp.host
                ),
            );
        }
        let mut failed = Vec::new();
        let mut unsure = Vec::new();
        for ip in ips.iter().filter(|ip| !crate::collect::guard::is_internal(**ip)) {
            let output = self
                .dns
                .verify_spf(SpfParameters::verify_mail_from(
                    *ip,
                    &smtp.host,
                    "tidings-doctor",
                    &sender,
                ))
                .await;
            match output.result() {
                SpfResult::Pass => {}
                SpfResult::Fail | SpfResult::SoftFail => failed.push(format!("{ip} ({:?})", output.result())),
                other => unsure.push(format!("{ip} ({other:?})")),
            }
        }
        if !failed.is_empty() {
            finding(
                CHECK,
                Verdict::Fail,
                format!(
                    "{domain}'s SPF record does not authorise the relay {}: {}; add it (ip4:/ip6:, or your provider's include:)",
                    smtp.host,
                    failed.join(", ")
                ),
            )
        } else if !unsure.is_empty() {
            finding(
                CHECK,
                Verdict::Warn,
                format!(
                    "{domain}'s SPF record neither authorises nor refuses the relay {}: {}",
                    smtp.host,
                    unsure.join(", ")
                ),
            )
        } else {
            finding(
                CHECK,
                Verdict::Pass,
                format!(
                    "{domain}'s SPF record authorises the relay {} ({})",
                    smtp.host,
                    join_ips(&ips)
                ),
            )
        }
    }

    /// The selector's TXT record holds the public half of the signing key.
    async fn dkim(&self, config: &Config) -> Finding {
        const CHECK: &str = "dkim";
        let Some(settings) = &config.delivery.dkim else {
            return finding(
                CHECK,
                Verdict::Warn,
                "tidings does not sign (no [dkim]); unless the relay signs for the From domain, Gmail and Yahoo treat the mail as unauthenticated",
            );
        };
        let name = format!("{}._domainkey.{}", settings.selector, settings.domain);
        let (algorithm, ours) = match crate::deliver::dkim::public_key(&settings.private_key_file) {
            Ok(k) => k,
            Err(e) => {
                return finding(
                    CHECK,
                    Verdict::Fail,
                    format!("dkim.private_key_file {}: {e}", settings.private_key_file.display()),
                );
            }
        };
        let publish = format!(
            "\"v=DKIM1; k={algorithm}; p={}\"",
            base64::engine::general_purpose::STANDARD.encode(record_key(algorithm, &ours))
        );
        let records = match self.txt(&name).await {
            Ok(r) => r,
            Err(e) => return finding(CHECK, Verdict::Fail, e),
        };
        let Some(record) = records.iter().find(|r| tags(r).iter().any(|(k, _)| k == "p")) else {
            return finding(
                CHECK,
                Verdict::Fail,
                format!("{name} has no DKIM record: publish the TXT record {publish}"),
            );
        };
        let tags = tags(record);
        let tag = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let published: String = tag("p").unwrap_or_default().split_whitespace().collect();
        if published.is_empty() {
            return finding(
                CHECK,
                Verdict::Fail,
                format!("{name} revokes its key (empty p=): publish {publish}"),
            );
        }
        let kind = tag("k").unwrap_or("rsa").to_ascii_lowercase();
        let matches = kind == algorithm
            && base64::engine::general_purpose::STANDARD
                .decode(&published)
                .is_ok_and(|der| public_key_bits(&der) == ours);
        if matches {
            finding(
                CHECK,
                Verdict::Pass,
                format!("{name} holds the public key of dkim.private_key_file ({algorithm})"),
            )
        } else {
            finding(
                CHECK,
                Verdict::Fail,
                format!(
                    "{name} holds another key than dkim.private_key_file {}: publish {publish}",
                    settings.private_key_file.display()
                ),
            )
        }
    }

    /// A DMARC record for the From domain, and SPF or DKIM aligned with it.
    async fn dmarc(&self, config: &Config) -> Finding {
        const CHECK: &str = "dmarc";
        let from = config.site.from.email.domain().to_ascii_lowercase();
        let mut found = None;
        let mut at = from.as_str();
        loop {
            let name = format!("_dmarc.{at}");
            match self.txt(&name).await {
                Ok(records) => {
                    if let Some(r) = records.into_iter().find(|r| r.starts_with("v=DMARC1")) {
                        found = Some((name, r));
                        break;
                    }
                }
                Err(e) => return finding(CHECK, Verdict::Fail, e),
            }
            // The organisational domain's record applies too.
            match at.split_once('.') {
                Some((_, parent)) if parent.contains('.') => at = parent,
                _ => break,
            }
        }
        let Some((name, text)) = found else {
            return finding(
                CHECK,
                Verdict::Fail,
                format!(
                    "{from} has no DMARC record: publish a TXT record at _dmarc.{from}, e.g. \"v=DMARC1; p=none; rua=mailto:dmarc@{from}\" (Gmail and Yahoo require one of bulk senders)"
                ),
            );
        };
        let record = match Dmarc::parse(text.as_bytes()) {
            Ok(r) => r,
            Err(e) => return finding(CHECK, Verdict::Fail, format!("{name} does not parse ({e}): {text}")),
        };
        let (spf_domain, _) = envelope_sender(config);
        let spf_aligned = aligned(&spf_domain, &from, record.aspf);
        let dkim_aligned = config
            .delivery
            .dkim
            .as_ref()
            .is_some_and(|d| aligned(&d.domain.to_ascii_lowercase(), &from, record.adkim));
        let policy = match record.p {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
            Policy::Unspecified => "unspecified",
        };
        if !spf_aligned && !dkim_aligned {
            let dkim = config
                .delivery
                .dkim
                .as_ref()
                .map_or("no DKIM".to_string(), |d| format!("DKIM d={}", d.domain));
            return finding(
                CHECK,
                Verdict::Fail,
                format!(
                    "{name} (p={policy}) exists, but neither the envelope domain {spf_domain} nor {dkim} aligns with the From domain {from}: set [dkim] domain or [delivery] return_path within {from}"
                ),
            );
        }
        let via: Vec<&str> = [(spf_aligned, "SPF"), (dkim_aligned, "DKIM")]
            .into_iter()
            .filter_map(|(ok, what)| ok.then_some(what))
            .collect();
        finding(
            CHECK,
            Verdict::Pass,
            format!(
                "{name}: p={policy}; {} aligned with the From domain {from}",
                via.join(" and ")
            ),
        )
    }

    /// Bounces need somewhere to go: MX records for the envelope domain.
    async fn return_path_mx(&self, config: &Config) -> Finding {
        const CHECK: &str = "return-path";
        let (domain, sender) = envelope_sender(config);
        match self.resolver().mx_lookup(format!("{domain}.")).await {
            Ok(lookup) => {
                let exchanges: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some(mx.exchange.to_ascii().trim_end_matches('.').to_string()),
                        _ => None,
                    })
                    .collect();
                if exchanges.iter().all(|e| e.is_empty()) {
                    finding(
                        CHECK,
                        Verdict::Fail,
                        format!("{domain} refuses all mail (null MX): bounces to {sender} are lost"),
                    )
                } else {
                    finding(
                        CHECK,
                        Verdict::Pass,
                        format!("bounces to {sender} go to {}", exchanges.join(", ")),
                    )
                }
            }
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => finding(
                CHECK,
                Verdict::Fail,
                format!(
                    "{domain} has no MX record: bounces to {sender} cannot be delivered; publish one pointing at the server that hands them to tidings"
                ),
            ),
            Err(e) => finding(CHECK, Verdict::Fail, format!("cannot look up the MX of {domain}: {e}")),
        }
    }

    /// `base_url` is https (one-click unsubscribe requires it) and answers.
    async fn site(&self, config: &Config) -> Finding {
        const CHECK: &str = "site";
        let base = &config.site.base_url;
        let healthz = format!("{base}/healthz");
        let answer = match self.http.get(&healthz).send().await {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("{healthz} answered {}", r.status())),
            Err(e) => Some(format!("{healthz} does not answer: {}", error_chain(&e))),
        };
        let https = base.starts_with("https://");
        match (https, answer) {
            (true, None) => finding(CHECK, Verdict::Pass, format!("{healthz} answers over https")),
            (false, None) => finding(
                CHECK,
                Verdict::Fail,
                format!(
                    "{healthz} answers, but base_url is not https: mail clients only offer one-click unsubscribe (RFC 8058) for https links; put tidings behind a TLS proxy and set base_url to https://"
                ),
            ),
            (true, Some(problem)) => finding(CHECK, Verdict::Fail, problem),
            (false, Some(problem)) => finding(CHECK, Verdict::Fail, format!("base_url is not https, and {problem}")),
        }
    }

    /// A one-click POST, as a mail client sends it, with a valid token that
    /// names no subscriber (so nobody is unsubscribed).
    async fn one_click(&self, app: &App) -> Finding {
        const CHECK: &str = "unsubscribe-link";
        let signer = match app.signer().await {
            Ok(s) => s,
            Err(e) => return finding(CHECK, Verdict::Fail, format!("cannot sign a test token: {e}")),
        };
        let url = format!(
            "{}/unsubscribe/{}",
            app.config.site.base_url,
            signer.sign(Purpose::Unsubscribe, 0, None)
        );
        match self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => finding(
                CHECK,
                Verdict::Pass,
                format!(
                    "a one-click POST to {}/unsubscribe/… is answered {}",
                    app.config.site.base_url,
                    r.status()
                ),
            ),
            Ok(r) => finding(
                CHECK,
                Verdict::Fail,
                format!(
                    "a one-click POST to {}/unsubscribe/… is answered {}: readers' mail clients cannot unsubscribe them",
                    app.config.site.base_url,
                    r.status()
                ),
            ),
            Err(e) => finding(
                CHECK,
                Verdict::Fail,
                format!("a one-click POST to {url} fails: {}", error_chain(&e)),
            ),
        }
    }

    /// The mailto unsubscribe address is read: its domain takes mail, and
    /// the inbound listener accepts it (and nothing else) or a mailbox is
    /// read.
    async fn mail_unsubscribe(&self, config: &Config) -> Finding {
        const CHECK: &str = "unsubscribe-mail";
        let Some(address) = &config.site.unsubscribe_mailto else {
            return finding(
                CHECK,
                Verdict::Pass,
                "no [site] unsubscribe_mailto: only the one-click link is advertised",
            );
        };
        let domain = address.domain();
        let mx = match self.resolver().mx_lookup(format!("{domain}.")).await {
            Ok(lookup) => !lookup.answers().is_empty(),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => false,
            Err(e) => return finding(CHECK, Verdict::Fail, format!("cannot look up the MX of {domain}: {e}")),
        };
        if !mx {
            return finding(
                CHECK,
                Verdict::Fail,
                format!("{domain} has no MX record: unsubscribe mails to {address} cannot arrive"),
            );
        }
        if let Some(listen) = config.inbound.listen {
            return match probe_listener(listen, address.as_str()).await {
                Ok(()) => finding(
                    CHECK,
                    Verdict::Pass,
                    format!("the inbound listener on {listen} takes mail for {address} and refuses relaying"),
                ),
                Err(e) => finding(CHECK, Verdict::Fail, format!("the inbound listener on {listen}: {e}")),
            };
        }
        if let Some(mailbox) = &config.inbound.mailbox {
            return match crate::inbound::mailbox::connect(mailbox).await {
                Ok(mut session) => {
                    let _ = session.logout().await;
                    finding(
                        CHECK,
                        Verdict::Pass,
                        format!("mail to {address} is read from {mailbox} (it logs in)"),
                    )
                }
                Err(e) => finding(CHECK, Verdict::Fail, format!("the mailbox {mailbox}: {e}")),
            };
        }
        finding(
            CHECK,
            Verdict::Fail,
            format!(
                "{address} is advertised, but nothing reads it: set [inbound] listen (and route the address there) or [inbound] mailbox"
            ),
        )
    }
}

/// The envelope sender's domain and a sample address on it.
fn envelope_sender(config: &Config) -> (String, String) {
    match &config.delivery.return_path {
        Some(rp) => (rp.domain().to_ascii_lowercase(), rp.for_token("0-doctor")),
        None => (
            config.site.from.email.domain().to_ascii_lowercase(),
            config.site.from.email.as_str().to_string(),
        ),
    }
}

fn join_ips(ips: &[IpAddr]) -> String {
    ips.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ")
}

/// A DKIM record's `tag=value` list.
fn tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// The key bits of a `p=` value: RSA keys are usually published as a
/// SubjectPublicKeyInfo, sometimes bare; Ed25519 keys are 32 raw bytes.
fn public_key_bits(der: &[u8]) -> Vec<u8> {
    pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der)
        .ok()
        .and_then(|spki| spki.subject_public_key.as_bytes().map(<[u8]>::to_vec))
        .unwrap_or_else(|| der.to_vec())
}

/// What to publish as `p=`: an RSA key wrapped as a SubjectPublicKeyInfo
/// (what `openssl rsa -pubout` prints), an Ed25519 key as is.
fn record_key(algorithm: &str, key: &[u8]) -> Vec<u8> {
    if algorithm != "rsa" {
        return key.to_vec();
    }
    // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { key } }
    const ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x00];
    bits.extend_from_slice(key);
    let bit_string = der(0x03, &bits);
    der(0x30, &[ALGORITHM, &bit_string].concat())
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// DMARC alignment: strict is the same name; relaxed the same registered
/// domain, taken here as the last two labels (three under a two-letter
/// country code with a short second level, as in example.co.uk).
fn aligned(domain: &str, from: &str, mode: Alignment) -> bool {
    match mode {
        Alignment::Strict => domain == from,
        Alignment::Relaxed => registered_domain(domain) == registered_domain(from),
    }
}

fn registered_domain(domain: &str) -> String {
    let labels: Vec<&str> = domain.trim_end_matches('.').split('.').collect();
    let n = labels.len();
    let keep = if n >= 3 && labels[n - 1].len() == 2 && labels[n - 2].len() <= 3 {
        3
    } else {
        2
    };
    labels[n.saturating_sub(keep)..].join(".")
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Asks the listener, as a relay would, whether it takes `address`, and
/// that it refuses an address elsewhere; sends no message.
async fn probe_listener(listen: SocketAddr, address: &str) -> Result<(), String> {
    let connect = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(listen));
    let stream = connect
        .await
        .map_err(|_| "does not answer within 5 s".to_string())?
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut reply = async |command: Option<&str>| -> Result<String, String> {
        if let Some(c) = command {
            write
                .write_all(format!("{c}\r\n").as_bytes())
                .await
                .map_err(|e| e.to_string())?;
        }
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(5), read.read_line(&mut line))
                .await
                .map_err(|_| "no reply within 5 s".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed the connection".into());
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line.trim_end().to_string());
            }
        }
    };
    let expect = |reply: &str, code: char, what: &str| {
        if reply.starts_with(code) {
            Ok(())
        } else {
            Err(format!("{what}: {reply}"))
        }
    };
    expect(&reply(None).await?, '2', "greeting")?;
    expect(&reply(Some("EHLO tidings-doctor")).await?, '2', "EHLO")?;
    expect(&reply(Some("MAIL FROM:<>")).await?, '2', "MAIL FROM")?;
    let taken = reply(Some(&format!("RCPT TO:<{address}>"))).await?;
    expect(&taken, '2', &format!("refuses {address}"))?;
    let relay = reply(Some("RCPT TO:<doctor-relay-test@relay-test.invalid>")).await?;
    if relay.starts_with('2') {
        return Err(format!("accepts mail for any address (an open relay): {relay}"));
    }
    let _ = reply(Some("QUIT")).await;
    Ok(())
}

/// reqwest's name lookups through the doctor's resolver, so the site is
/// found where the DNS checks looked.
struct Lookup(TokioResolver);

impl reqwest::dns::Resolve for Lookup {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        Box::pin(async move {
            let found = resolver.lookup_ip(format!("{}.", name.as_str())).await?;
            let addresses: Vec<SocketAddr> = found.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_alignment_is_by_registered_domain() {
        assert!(aligned("bounces.example.com", "example.com", Alignment::Relaxed));
        assert!(aligned("mail.example.com", "news.example.com", Alignment::Relaxed));
        assert!(!aligned("mail.example.com", "example.com", Alignment::Strict));
        assert!(!aligned("example.net", "example.com", Alignment::Relaxed));
        assert!(aligned("a.example.co.uk", "example.co.uk", Alignment::Relaxed));
        assert!(!aligned("other.co.uk", "example.co.uk", Alignment::Relaxed));
    }

    #[test]
    fn a_published_rsa_key_is_read_wrapped_or_bare() {
        let key = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let wrapped = record_key("rsa", &key);
        assert_eq!(public_key_bits(&wrapped), key);
        assert_eq!(public_key_bits(&key), key);
        assert_eq!(record_key("ed25519", &[7; 32]), vec![7; 32]);
    }
}
