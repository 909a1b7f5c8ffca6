//! `config`'s checks, one function per section of the file. Each records
//! every problem it finds with its key (`sources[2].url: …`) and goes on,
//! so an operator sees all of them at once. Longer than most files: each
//! of the file's keys has its own check and message, and splitting a
//! section's checks apart would only scatter them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use url::Url;

use super::raw::*;
use super::*;
use crate::domain::Mailbox;
use crate::schedule::Schedule;

/// The problems found so far, each as `key: what is wrong`.
#[derive(Default)]
pub(super) struct Problems(Vec<String>);

impl Problems {
    fn bad(&mut self, key: &str, msg: String) {
        self.0.push(format!("{key}: {msg}"));
    }
}

/// The whole file, section by section; the environment wins over the file.
pub(super) fn config(
    raw: RawConfig,
    path: &Path,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut problems = Problems::default();
    let p = &mut problems;
    let site = site(&raw.site, base, p);
    let database = database(&raw.database, base, env, p);
    let smtp = smtp(&raw.smtp, base, env, p);
    let mailbox_dir = resolve(base, raw.mailbox.dir.as_deref().unwrap_or("outbox"));
    let delivery = delivery(&raw.delivery, &raw.dkim, base, p);
    let collect = collect(&raw.collect, base, p);
    let web = web(&raw.web, p);
    let inbound = inbound(&raw.inbound, &delivery, site.as_ref(), env, p);
    let briefing = raw.briefing.as_ref().and_then(|b| briefing(b, env, p));
    let doctor = doctor(&raw.doctor, p);
    let mut raw_sources: Vec<(String, RawSource)> = raw
        .sources
        .into_iter()
        .enumerate()
        .map(|(i, s)| (format!("sources[{i}]"), s))
        .collect();
    if let Some(path) = collect.as_ref().and_then(|c| c.opml.as_deref()) {
        match super::opml::read_file(path) {
            Ok(outlines) => raw_sources.extend(outlines.into_iter().map(|o| {
                let key = format!("collect.opml: {}: {}", path.display(), o.place);
                (key, o.source)
            })),
            Err(e) => p.bad("collect.opml", e),
        }
    }
    let sources = sources(raw_sources, raw.collect.full_text, base, p);
    let tag_rules = tag_rules(raw.tags, p);
    let audiences = audiences(raw.audiences, &sources, p);
    let editions = editions(raw.editions, &audiences, p);
    let (editor_token, secret) = secrets(env, p);
    if !problems.0.is_empty() {
        return Err(ConfigError {
            path: path.to_path_buf(),
            problems: problems.0,
        });
    }
    let (Some(site), Some(database), Some(collect), (Some(web_listen), web)) = (site, database, collect, web) else {
        unreachable!("a missing value always records a problem");
    };
    Ok(Config {
        path: path.to_path_buf(),
        site,
        database,
        smtp,
        mailbox_dir,
        delivery,
        inbound,
        web_listen,
        web,
        collect,
        briefing,
        doctor,
        sources,
        tag_rules,
        audiences,
        editions,
        secret,
        editor_token,
    })
}

/// `[site]`.
fn site(site: &RawSite, base: &Path, problems: &mut Problems) -> Option<Site> {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let base_url = site.base_url.trim_end_matches('/').to_string();
    match Url::parse(&base_url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        Ok(_) => bad("site.base_url", "must be an http:// or https:// URL".into()),
        Err(e) => bad("site.base_url", format!("\"{base_url}\" is not a URL ({e})")),
    }
    let from = match Mailbox::parse(&site.from) {
        Ok(m) => Some(m),
        Err(e) => {
            bad("site.from", format!("\"{}\": {e}", site.from));
            None
        }
    };
    if site.title.trim().is_empty() {
        bad("site.title", "must not be empty".into());
    }
    let templates_dir = resolve(base, site.templates.as_deref().unwrap_or("templates"));
    // Only when set: a mailto nobody reads would lose unsubscribes.
    let unsubscribe_mailto = match &site.unsubscribe_mailto {
        Some(addr) => match crate::domain::EmailAddress::parse(addr) {
            Ok(a) => Some(a),
            Err(e) => {
                bad("site.unsubscribe_mailto", format!("\"{addr}\": {e}"));
                None
            }
        },
        None => None,
    };
    let stale_after_hours = site.stale_after_hours.unwrap_or(48);
    if stale_after_hours < 1 {
        bad("site.stale_after_hours", "must be at least 1".into());
    }
    Some(Site {
        title: site.title.clone(),
        base_url,
        from: from?,
        templates_dir,
        unsubscribe_mailto,
        stale_after_hours,
    })
}

/// `[database]`; `DATABASE_URL` wins.
fn database(
    database: &RawDatabase,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<DatabaseUrl> {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let (db_key, db_raw) = match env(ENV_DATABASE_URL).filter(|v| !v.is_empty()) {
        Some(v) => (ENV_DATABASE_URL.to_string(), v),
        None => (
            "database.url".to_string(),
            database.url.clone().unwrap_or_else(|| "sqlite://tidings.db".into()),
        ),
    };
    match DatabaseUrl::parse(&db_raw, base) {
        Ok(d) => Some(d),
        Err(e) => {
            bad(&db_key, e);
            None
        }
    }
}

/// `[smtp]`; `TIDINGS_SMTP_URL` wins over its `url`. `None`: no relay.
fn smtp(
    smtp_raw: &Option<RawSmtp>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<Smtp> {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let starttls = smtp_raw.as_ref().map(|s| s.starttls).unwrap_or_default();
    let smtp_url = match env(ENV_SMTP_URL).filter(|v| !v.is_empty()) {
        Some(v) => Some((ENV_SMTP_URL.to_string(), v)),
        None => smtp_raw
            .as_ref()
            .and_then(|s| s.url.clone())
            .map(|u| ("smtp.url".to_string(), u)),
    };
    match smtp_url {
        None => None,
        Some((key, url)) => match Smtp::parse(&url, starttls) {
            Ok(mut smtp) => {
                if let Some(s) = smtp_raw {
                    if let Some(ca) = &s.ca_file {
                        let ca = resolve(base, ca);
                        if !ca.is_file() {
                            bad("smtp.ca_file", format!("file {} does not exist", ca.display()));
                        }
                        smtp.ca_file = Some(ca);
                    }
                    if let Some(t) = s.timeout_secs {
                        if t == 0 {
                            bad("smtp.timeout_secs", "must be at least 1".into());
                        }
                        smtp.timeout_secs = t;
                    }
                }
                Some(smtp)
            }
            Err(e) => {
                // Never echo the URL: it may hold a password.
                bad(&key, e);
                None
            }
        },
    }
}

/// `[delivery]` and `[dkim]`.
fn delivery(delivery: &RawDelivery, dkim_raw: &Option<RawDkim>, base: &Path, problems: &mut Problems) -> Delivery {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let concurrency = delivery.concurrency.unwrap_or(8);
    if concurrency == 0 || concurrency > 256 {
        bad("delivery.concurrency", "must be between 1 and 256".into());
    }
    let max_attempts = delivery.max_attempts.unwrap_or(6);
    if !(1..=100).contains(&max_attempts) {
        bad("delivery.max_attempts", "must be between 1 and 100".into());
    }
    if let Some(id) = &delivery.feedback_id
        && (id.is_empty() || !id.chars().all(|c| c.is_ascii_graphic()))
    {
        bad("delivery.feedback_id", "must be printable ASCII without spaces".into());
    }
    let return_path = delivery.return_path.as_deref().and_then(|raw| {
        crate::domain::ReturnPath::parse(raw)
            .map_err(|e| bad("delivery.return_path", format!("\"{raw}\": {e}")))
            .ok()
    });
    let dkim = match dkim_raw {
        None => None,
        Some(d) => {
            let file = resolve(base, &d.private_key_file);
            if d.domain.trim().is_empty() || d.domain.contains(char::is_whitespace) {
                bad("dkim.domain", "must be a domain name".into());
            }
            if d.selector.trim().is_empty() || d.selector.contains(char::is_whitespace) {
                bad("dkim.selector", "must be a DNS label".into());
            }
            let body_canonicalization = match d.canonicalization.as_deref().map(str::trim) {
                None | Some("relaxed/simple") => BodyCanonicalization::Simple,
                Some("relaxed/relaxed") => BodyCanonicalization::Relaxed,
                Some(other) => {
                    bad(
                        "dkim.canonicalization",
                        format!("\"{other}\" is not \"relaxed/simple\" or \"relaxed/relaxed\""),
                    );
                    BodyCanonicalization::Simple
                }
            };
            Some(Dkim {
                domain: d.domain.trim().to_lowercase(),
                selector: d.selector.trim().to_string(),
                private_key_file: file,
                body_canonicalization,
            })
        }
    };
    let d = delivery;
    let mut duration = |key: &str, value: &Option<String>, default: std::time::Duration| {
        positive_duration(key, value.as_deref(), default, &mut bad)
    };
    let retry_initial = duration(
        "delivery.retry_initial",
        &d.retry_initial,
        std::time::Duration::from_secs(30),
    );
    let retry_max = duration("delivery.retry_max", &d.retry_max, std::time::Duration::from_secs(3600));
    let lease = duration("delivery.lease", &d.lease, std::time::Duration::from_secs(60));
    if retry_max < retry_initial {
        bad(
            "delivery.retry_max",
            "must not be shorter than delivery.retry_initial".into(),
        );
    }
    Delivery {
        concurrency,
        rate_per_second: delivery.rate_per_second.unwrap_or(0),
        max_attempts,
        retry_initial,
        retry_max,
        lease,
        feedback_id: delivery.feedback_id.clone(),
        return_path,
        dkim,
    }
}

/// `[inbound]`.
fn inbound(
    i: &RawInbound,
    delivery: &Delivery,
    site: Option<&Site>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Inbound {
    let defaults = Inbound::default();
    let webhooks = webhooks(&i.webhooks, env, problems);
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let listen = i.listen.as_deref().and_then(|l| match l.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            bad(
                "inbound.listen",
                format!("\"{l}\" is not an address like 127.0.0.1:2525"),
            );
            None
        }
    });
    if listen.is_some() && delivery.return_path.is_none() && site.is_some_and(|s| s.unsubscribe_mailto.is_none()) {
        bad(
            "inbound.listen",
            "accepts mail only for delivery.return_path and site.unsubscribe_mailto, and neither is set".into(),
        );
    }
    let max_message_bytes = match i.max_message_bytes {
        Some(n) if !(1024..=100 * 1024 * 1024).contains(&n) => {
            bad("inbound.max_message_bytes", format!("{n} is outside 1024 to 104857600"));
            defaults.max_message_bytes
        }
        Some(n) => n,
        None => defaults.max_message_bytes,
    };
    let max_connections = match i.max_connections {
        Some(0) => {
            bad("inbound.max_connections", "must be at least 1".into());
            defaults.max_connections
        }
        Some(n) => n,
        None => defaults.max_connections,
    };
    let messages_per_minute = match i.messages_per_minute {
        Some(0) => {
            bad("inbound.messages_per_minute", "must be at least 1".into());
            defaults.messages_per_minute
        }
        Some(n) => n,
        None => defaults.messages_per_minute,
    };
    let soft_bounce_limit = match i.soft_bounce_limit {
        Some(0) => {
            bad("inbound.soft_bounce_limit", "must be at least 1".into());
            defaults.soft_bounce_limit
        }
        Some(n) => n,
        None => defaults.soft_bounce_limit,
    };
    let timeout = positive_duration("inbound.timeout", i.timeout.as_deref(), defaults.timeout, &mut bad);
    let soft_bounce_window = positive_duration(
        "inbound.soft_bounce_window",
        i.soft_bounce_window.as_deref(),
        defaults.soft_bounce_window,
        &mut bad,
    );
    let poll = positive_duration(
        "inbound.mailbox_poll",
        i.mailbox_poll.as_deref(),
        std::time::Duration::from_secs(60),
        &mut bad,
    );
    let processed_folder = i
        .mailbox_processed_folder
        .clone()
        .unwrap_or_else(|| "Processed".to_string());
    if processed_folder.trim().is_empty() || processed_folder.chars().any(|c| c.is_control() || c == '"') {
        bad(
            "inbound.mailbox_processed_folder",
            "must be a folder name without quotes or control characters".into(),
        );
    }
    let mailbox = i
        .mailbox
        .as_deref()
        .and_then(|raw| match imap_mailbox(raw, &processed_folder, poll) {
            Ok(m) => Some(m),
            Err(e) => {
                bad("inbound.mailbox", e);
                None
            }
        });
    Inbound {
        listen,
        mailbox,
        max_message_bytes,
        max_connections,
        messages_per_minute,
        timeout,
        soft_bounce_limit,
        soft_bounce_window,
        webhooks,
    }
}

/// `imaps://user:pass@host[:port]/FOLDER`; the error never shows the password.
fn imap_mailbox(raw: &str, processed_folder: &str, poll: std::time::Duration) -> Result<ImapMailbox, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL like imaps://user:password@host/INBOX ({e})"))?;
    let tls = match url.scheme() {
        "imaps" => true,
        "imap" => false,
        other => return Err(format!("scheme \"{other}\" is not imaps:// or imap://")),
    };
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or("no host")?.to_string();
    let decode = |s: &str| {
        super::settings::percent_decode(s)
            .ok_or_else(|| "the user or password is not valid percent-encoding".to_string())
    };
    let user = decode(url.username())?;
    if user.is_empty() {
        return Err("no user (imaps://user:password@host/INBOX)".into());
    }
    let password = decode(url.password().ok_or("no password (imaps://user:password@host/INBOX)")?)?;
    let folder = decode(url.path().trim_start_matches('/'))?;
    let folder = if folder.is_empty() { "INBOX".to_string() } else { folder };
    if folder == processed_folder {
        return Err(format!(
            "the folder read and inbound.mailbox_processed_folder are both \"{folder}\""
        ));
    }
    Ok(ImapMailbox {
        tls,
        port: url.port().unwrap_or(if tls { 993 } else { 143 }),
        host,
        user,
        password: Secret::new(password),
        folder,
        processed_folder: processed_folder.to_string(),
        poll,
    })
}

/// `[doctor]`: name servers as `IP` or `IP:PORT` (port 53 by default).
fn doctor(d: &RawDoctor, problems: &mut Problems) -> Doctor {
    let mut nameservers = Vec::new();
    for raw in d.nameservers.iter().flatten() {
        let parsed = raw.parse::<std::net::SocketAddr>().or_else(|_| {
            raw.parse::<std::net::IpAddr>()
                .map(|ip| std::net::SocketAddr::new(ip, 53))
        });
        match parsed {
            Ok(address) => nameservers.push(address),
            Err(_) => problems.bad(
                "doctor.nameservers",
                format!("{raw:?} is not an IP address or IP:PORT (e.g. \"127.0.0.1:53\")"),
            ),
        }
    }
    Doctor { nameservers }
}

/// `[inbound.webhooks]`: each `*_env` names a variable that must be set.
fn webhooks(w: &RawWebhooks, env: &dyn Fn(&str) -> Option<String>, problems: &mut Problems) -> Webhooks {
    use base64::Engine;
    let mut secret = |key: &str, variable: &Option<String>| -> Option<Secret> {
        let name = variable.as_deref()?;
        match env(name).filter(|v| !v.trim().is_empty()) {
            Some(v) => Some(Secret::new(v.trim())),
            None => {
                problems.bad(
                    &format!("inbound.webhooks.{key}"),
                    format!("the variable {name} is not set"),
                );
                None
            }
        }
    };
    let mailgun = secret("mailgun_signing_key_env", &w.mailgun_signing_key_env);
    let sendgrid = secret("sendgrid_public_key_env", &w.sendgrid_public_key_env);
    let postmark = secret("postmark_credentials_env", &w.postmark_credentials_env);
    if let Some(key) = &sendgrid
        && base64::engine::general_purpose::STANDARD.decode(key.expose()).is_err()
    {
        problems.bad(
            "inbound.webhooks.sendgrid_public_key_env",
            "the key is not base64 (copy the verification key SendGrid shows)".into(),
        );
    }
    if let Some(c) = &postmark
        && !c.expose().contains(':')
    {
        problems.bad(
            "inbound.webhooks.postmark_credentials_env",
            "must be user:password, as in the webhook URL https://user:password@…/hooks/postmark".into(),
        );
    }
    let ses_topic_arns = w.ses_topic_arns.clone().unwrap_or_default();
    for arn in &ses_topic_arns {
        // arn:aws:sns:REGION:ACCOUNT:NAME (aws-cn, aws-us-gov partitions too)
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() != 6 || parts[0] != "arn" || !parts[1].starts_with("aws") || parts[2] != "sns" {
            problems.bad(
                "inbound.webhooks.ses_topic_arns",
                format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)"),
            );
        }
    }
    Webhooks {
        mailgun,
        sendgrid,
        postmark,
        ses_topic_arns,
    }
}

/// `[collect]`.
fn collect(c: &RawCollect, base: &Path, problems: &mut Problems) -> Option<Collect> {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let mut duration = |key: &str, value: &Option<String>, default: std::time::Duration| {
        positive_duration(key, value.as_deref(), default, &mut bad)
    };
    let defaults = FetchLimits::default();
    let total_timeout = duration("collect.timeout", &c.timeout, defaults.total_timeout);
    let connect_timeout = duration("collect.connect_timeout", &c.connect_timeout, defaults.connect_timeout);
    let max_backoff = duration(
        "collect.max_backoff",
        &c.max_backoff,
        std::time::Duration::from_secs(24 * 3600),
    );
    let collect_schedule_raw = c.schedule.clone().unwrap_or_else(|| "0 */30 * * * *".to_string());
    let collect_schedule = match Schedule::parse(&collect_schedule_raw, Tz::UTC) {
        Ok(s) => Some(s),
        Err(e) => {
            bad("collect.schedule", format!("\"{collect_schedule_raw}\": {e}"));
            None
        }
    };
    let collect_concurrency = c.concurrency.unwrap_or(16);
    if !(1..=256).contains(&collect_concurrency) {
        bad("collect.concurrency", "must be between 1 and 256".into());
    }
    let per_host = c.per_host.unwrap_or(2);
    if !(1..=64).contains(&per_host) {
        bad("collect.per_host", "must be between 1 and 64".into());
    }
    let max_body_bytes = c.max_body_bytes.unwrap_or(defaults.max_body_bytes);
    if max_body_bytes < 1024 {
        bad("collect.max_body_bytes", "must be at least 1024".into());
    }
    let max_items = c.max_items.unwrap_or(500);
    if max_items == 0 {
        bad("collect.max_items", "must be at least 1".into());
    }
    let chrono_max_backoff = chrono::Duration::from_std(max_backoff).unwrap_or(chrono::Duration::hours(24));
    Some(Collect {
        schedule: collect_schedule?,
        concurrency: collect_concurrency,
        per_host,
        limits: FetchLimits {
            connect_timeout,
            total_timeout,
            max_body_bytes,
            max_redirects: defaults.max_redirects,
            allow_private: c.allow_private,
        },
        policy: CollectPolicy {
            max_items,
            backoff_max: chrono_max_backoff,
            ..CollectPolicy::default()
        },
        opml: c.opml.as_deref().map(|o| resolve(base, o)),
    })
}

/// `[briefing]`: where the model server is, what it may cost, and the key
/// read from the variable `api_key_env` names (never from the file).
fn briefing(b: &RawBriefing, env: &dyn Fn(&str) -> Option<String>, problems: &mut Problems) -> Option<Briefing> {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let endpoint = match Url::parse(b.endpoint.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        Ok(_) => {
            bad(
                "briefing.endpoint",
                format!("\"{}\" must be an http:// or https:// URL", b.endpoint),
            );
            None
        }
        Err(e) => {
            bad("briefing.endpoint", format!("\"{}\" is not a URL ({e})", b.endpoint));
            None
        }
    };
    let model = b.model.trim().to_string();
    if model.is_empty() || model.chars().any(char::is_control) {
        bad("briefing.model", "must name the model, on one line".into());
    }
    let api_key = match b.api_key_env.as_deref().map(str::trim) {
        None => None,
        Some(name) if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            bad(
                "briefing.api_key_env",
                "must be the name of an environment variable (letters, digits, _), not the key itself".into(),
            );
            None
        }
        Some(name) => match env(name) {
            Some(key) if !key.trim().is_empty() => Some(Secret::new(key.trim())),
            _ => {
                bad(
                    "briefing.api_key_env",
                    format!("the environment variable {name} is not set"),
                );
                None
            }
        },
    };
    let concurrency = b.concurrency.unwrap_or(2);
    if !(1..=32).contains(&concurrency) {
        bad("briefing.concurrency", "must be between 1 and 32".into());
    }
    let timeout = positive_duration(
        "briefing.timeout",
        b.timeout.as_deref(),
        std::time::Duration::from_secs(60),
        &mut bad,
    );
    let max_input_chars = b.max_input_chars.unwrap_or(6000);
    if !(200..=200_000).contains(&max_input_chars) {
        bad("briefing.max_input_chars", "must be between 200 and 200000".into());
    }
    let max_output_tokens = b.max_output_tokens.unwrap_or(1024);
    if !(64..=8192).contains(&max_output_tokens) {
        bad("briefing.max_output_tokens", "must be between 64 and 8192".into());
    }
    let max_stories_per_run = b.max_stories_per_run.unwrap_or(200);
    let unverified = match b.unverified.as_deref().unwrap_or("fallback") {
        "fallback" => UnverifiedPolicy::Fallback,
        "hold" => UnverifiedPolicy::Hold,
        other => {
            bad(
                "briefing.unverified",
                format!("\"{other}\": must be \"hold\" or \"fallback\""),
            );
            UnverifiedPolicy::Fallback
        }
    };
    let timeline_days = b.timeline_days.unwrap_or(90);
    if !(0..=3650).contains(&timeline_days) {
        bad("briefing.timeline_days", "must be between 0 and 3650".into());
    }
    Some(Briefing {
        endpoint: endpoint?,
        model,
        api_key,
        concurrency,
        timeout,
        max_input_chars,
        max_output_tokens,
        max_stories_per_run,
        unverified,
        timeline_days,
    })
}

/// `[[sources]]` and the OPML file's outlines, each with the key that
/// names it in errors: unique names, weights, tags, where each feed is.
fn sources(
    raw_sources: Vec<(String, RawSource)>,
    full_text_default: bool,
    base: &Path,
    problems: &mut Problems,
) -> Vec<Source> {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let mut sources = Vec::new();
    let mut seen = HashSet::new();
    for (key, s) in raw_sources {
        if s.name.trim().is_empty() {
            bad(&format!("{key}.name"), "must not be empty".into());
        } else if !seen.insert(s.name.clone()) {
            bad(
                &format!("{key}.name"),
                format!("\"{}\" is used by another source", s.name),
            );
        }
        let weight = s.weight.unwrap_or(1.0);
        if !weight.is_finite() || weight < 0.0 {
            bad(&format!("{key}.weight"), "must be a number ≥ 0".into());
        }
        let tags = match normalise_tags(&s.tags) {
            Ok(t) => t,
            Err(e) => {
                bad(&format!("{key}.tags"), e);
                Vec::new()
            }
        };
        match SourceLocation::parse(&s.url, base) {
            Ok(location) => sources.push(Source {
                name: s.name,
                location,
                tags,
                weight,
                full_text: s.full_text.unwrap_or(full_text_default),
            }),
            Err(e) => bad(&format!("{key}.url"), format!("\"{}\": {e}", s.url)),
        }
    }
    sources
}

/// `[tags.NAME]`: keyword rules.
fn tag_rules(raw_tags: BTreeMap<String, RawTagRule>, problems: &mut Problems) -> Vec<TagRule> {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let mut tag_rules = Vec::new();
    for (tag, rule) in raw_tags {
        let key = format!("tags.{tag}");
        let Some(norm) = crate::domain::normalise_tag(&tag) else {
            bad(&key, "is not a usable tag name".into());
            continue;
        };
        if norm != tag {
            bad(
                &key,
                format!("tag names are lower-case words joined by '-': use \"{norm}\""),
            );
        }
        let mut keywords = Vec::new();
        for (j, k) in rule.keywords.iter().enumerate() {
            let k = k.trim().to_lowercase();
            if k.is_empty() {
                bad(&format!("{key}.keywords[{j}]"), "must not be empty".into());
            } else {
                keywords.push(k);
            }
        }
        tag_rules.push(TagRule { tag: norm, keywords });
    }
    tag_rules
}

/// `[audiences.NAME]`: tag weights, source weights (of configured sources).
fn audiences(
    raw_audiences: BTreeMap<String, RawAudience>,
    sources: &[Source],
    problems: &mut Problems,
) -> BTreeMap<String, Audience> {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let source_names: HashSet<&str> = sources.iter().map(|s: &Source| s.name.as_str()).collect();
    let mut audiences = BTreeMap::new();
    for (name, a) in raw_audiences {
        let key = format!("audiences.{name}");
        let mut weights = BTreeMap::new();
        for (tag, w) in a.weights {
            if !w.is_finite() || w < 0.0 {
                bad(&format!("{key}.weights.{tag}"), "must be a number ≥ 0".into());
            }
            match crate::domain::normalise_tag(&tag) {
                Some(t) => {
                    weights.insert(t, w);
                }
                None => bad(&format!("{key}.weights.{tag}"), "is not a usable tag name".into()),
            }
        }
        if weights.values().all(|w| *w <= 0.0) {
            bad(
                &format!("{key}.weights"),
                "needs at least one tag with a weight above 0".into(),
            );
        }
        for (source, w) in &a.source_weights {
            if !w.is_finite() || *w < 0.0 {
                bad(&format!("{key}.source_weights.{source}"), "must be a number ≥ 0".into());
            }
            if !source_names.contains(source.as_str()) {
                bad(
                    &format!("{key}.source_weights.{source}"),
                    format!("no [[sources]] is named \"{source}\""),
                );
            }
        }
        let mut exclude_tags = BTreeSet::new();
        for tag in &a.exclude_tags {
            match crate::domain::normalise_tag(tag) {
                Some(t) => {
                    exclude_tags.insert(t);
                }
                None => bad(
                    &format!("{key}.exclude_tags"),
                    format!("\"{tag}\" is not a usable tag name"),
                ),
            }
        }
        let half_life = a
            .half_life
            .as_deref()
            .and_then(|h| match parse_duration(h).map(chrono::Duration::from_std) {
                Ok(Ok(d)) if d > chrono::Duration::zero() => Some(d),
                Ok(_) => {
                    bad(
                        &format!("{key}.half_life"),
                        "must be above zero and not absurdly long".into(),
                    );
                    None
                }
                Err(err) => {
                    bad(&format!("{key}.half_life"), err);
                    None
                }
            });
        let mut number = |field: &str, value: Option<f64>, default: f64| match value {
            Some(v) if v.is_finite() && v >= 0.0 => v,
            Some(_) => {
                bad(&format!("{key}.{field}"), "must be a number ≥ 0".into());
                default
            }
            None => default,
        };
        let threshold = number("threshold", a.threshold, DEFAULT_THRESHOLD);
        let cluster_bonus = number("cluster_bonus", a.cluster_bonus, DEFAULT_CLUSTER_BONUS);
        let cluster_bonus_max = number("cluster_bonus_max", a.cluster_bonus_max, DEFAULT_CLUSTER_BONUS_MAX);
        audiences.insert(
            name.clone(),
            Audience {
                name,
                title: a.title,
                weights,
                source_weights: a.source_weights,
                exclude_tags,
                half_life,
                threshold,
                cluster_bonus,
                cluster_bonus_max,
            },
        );
    }
    audiences
}

/// `[[editions]]`: each for a configured audience, on a schedule in its zone.
fn editions(
    raw_editions: Vec<RawEdition>,
    audiences: &BTreeMap<String, Audience>,
    problems: &mut Problems,
) -> Vec<Edition> {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let mut editions = Vec::new();
    let mut seen = HashSet::new();
    for (i, e) in raw_editions.into_iter().enumerate() {
        let key = format!("editions[{i}]");
        if !is_slug(&e.name) {
            bad(
                &format!("{key}.name"),
                format!("\"{}\" must be lower-case letters, digits, '-' or '_'", e.name),
            );
        } else if !seen.insert(e.name.clone()) {
            bad(
                &format!("{key}.name"),
                format!("\"{}\" is used by another edition", e.name),
            );
        }
        if !audiences.contains_key(&e.audience) {
            bad(
                &format!("{key}.audience"),
                format!("no [audiences.{}] is defined", e.audience),
            );
        }
        let tz: Option<Tz> = match e.timezone.parse() {
            Ok(tz) => Some(tz),
            Err(_) => {
                bad(
                    &format!("{key}.timezone"),
                    format!("\"{}\" is not an IANA time zone name", e.timezone),
                );
                None
            }
        };
        let schedule = match (Schedule::parse(&e.schedule, tz.unwrap_or(Tz::UTC)), tz) {
            (Ok(s), Some(_)) => Some(s),
            (Ok(_), None) => None,
            (Err(err), _) => {
                bad(&format!("{key}.schedule"), format!("\"{}\": {err}", e.schedule));
                None
            }
        };
        let window_days = e.window_days.unwrap_or(7);
        if !(1..=3660).contains(&window_days) {
            bad(&format!("{key}.window_days"), "must be between 1 and 3660".into());
        }
        let max_stories = e.max_stories.unwrap_or(10);
        if !(1..=500).contains(&max_stories) {
            bad(&format!("{key}.max_stories"), "must be between 1 and 500".into());
        }
        let min_stories = e.min_stories.unwrap_or(1);
        if min_stories > max_stories {
            bad(&format!("{key}.min_stories"), "must not exceed max_stories".into());
        }
        let grace = match &e.grace {
            None => chrono::Duration::hours(6),
            Some(g) => match parse_duration(g).map(chrono::Duration::from_std) {
                Ok(Ok(d)) => d,
                Ok(Err(_)) => {
                    bad(&format!("{key}.grace"), "is too long".into());
                    chrono::Duration::hours(6)
                }
                Err(err) => {
                    bad(&format!("{key}.grace"), err);
                    chrono::Duration::hours(6)
                }
            },
        };
        let max_per_source = e.max_per_source.unwrap_or(DEFAULT_MAX_PER_SOURCE);
        if max_per_source == 0 {
            bad(&format!("{key}.max_per_source"), "must be at least 1".into());
        }
        let mut sections = Vec::new();
        let mut sectioned_tags = HashSet::new();
        for (j, section) in e.sections.into_iter().enumerate() {
            let skey = format!("{key}.sections[{j}]");
            if section.title.trim().is_empty() {
                bad(&format!("{skey}.title"), "must not be empty".into());
            }
            if section.max == Some(0) {
                bad(&format!("{skey}.max"), "must be at least 1".into());
            }
            let mut tags = Vec::new();
            for tag in &section.tags {
                match crate::domain::normalise_tag(tag) {
                    Some(t) if !sectioned_tags.insert(t.clone()) => bad(
                        &format!("{skey}.tags"),
                        format!("\"{t}\" is already in an earlier section (a story appears in one section only)"),
                    ),
                    Some(t) => tags.push(t),
                    None => bad(&format!("{skey}.tags"), format!("\"{tag}\" is not a usable tag name")),
                }
            }
            sections.push(Section {
                title: section.title,
                tags,
                max: section.max,
            });
        }
        if sections.iter().filter(|s| s.tags.is_empty()).count() > 1 {
            bad(
                &format!("{key}.sections"),
                "at most one section may have no tags (the one for all other stories)".into(),
            );
        }
        let template = e.template.unwrap_or_else(|| e.name.clone());
        if !is_slug(&template) {
            bad(&format!("{key}.template"), "must be a plain name, not a path".into());
        }
        if let Some(schedule) = schedule {
            editions.push(Edition {
                name: e.name,
                title: e.title,
                audience: e.audience,
                schedule,
                window_days,
                max_stories,
                min_stories,
                template,
                subject: e.subject,
                grace,
                max_per_source,
                sections,
                approval: e.approval,
            });
        }
    }
    editions
}

/// `[web]`: where `serve` listens, and its limits.
fn web(w: &RawWeb, problems: &mut Problems) -> (Option<std::net::SocketAddr>, Web) {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let web_listen_raw = w.listen.clone().unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let web_listen = match web_listen_raw.parse::<std::net::SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            bad(
                "web.listen",
                format!("\"{web_listen_raw}\" is not an address like 127.0.0.1:8080"),
            );
            None
        }
    };

    let web = {
        let defaults = Web::default();
        let mut web_duration = |key: &str, value: &Option<String>, default: std::time::Duration| {
            positive_duration(key, value.as_deref(), default, &mut bad)
        };
        let header_timeout = web_duration("web.header_timeout", &w.header_timeout, defaults.header_timeout);
        let idle_timeout = web_duration("web.idle_timeout", &w.idle_timeout, defaults.idle_timeout);
        let metrics_listen = w.metrics_listen.as_deref().and_then(|m| match m.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                bad(
                    "web.metrics_listen",
                    format!("\"{m}\" is not an address like 127.0.0.1:9090"),
                );
                None
            }
        });
        let max_connections = match w.max_connections {
            Some(0) => {
                bad("web.max_connections", "must be at least 1".into());
                defaults.max_connections
            }
            Some(n) => n,
            None => defaults.max_connections,
        };
        let max_header_bytes = match w.max_header_bytes {
            Some(n) if !(1024..=1024 * 1024).contains(&n) => {
                bad("web.max_header_bytes", format!("{n} is outside 1024 to 1048576"));
                defaults.max_header_bytes
            }
            Some(n) => n,
            None => defaults.max_header_bytes,
        };
        let mut trusted_proxies = Vec::new();
        for (i, p) in w.trusted_proxies.iter().flatten().enumerate() {
            let parsed = p
                .parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => trusted_proxies.push(net),
                Err(_) => bad(
                    &format!("web.trusted_proxies[{i}]"),
                    format!("\"{p}\" is not an address or a CIDR block like 10.0.0.0/8"),
                ),
            }
        }
        let pending_days = match w.pending_days {
            Some(0) => {
                bad("web.pending_days", "must be at least 1".into());
                defaults.pending_days
            }
            Some(n) => n,
            None => defaults.pending_days,
        };
        Web {
            metrics_listen,
            header_timeout,
            idle_timeout,
            max_connections,
            max_header_bytes,
            trusted_proxies,
            pending_days,
        }
    };
    (web_listen, web)
}

/// `TIDINGS_EDITOR_TOKEN` and `TIDINGS_SECRET`: long and hard to guess.
fn secrets(env: &dyn Fn(&str) -> Option<String>, problems: &mut Problems) -> (Option<Secret>, Option<Secret>) {
    let mut bad = |key: &str, msg: String| problems.bad(key, msg);
    let editor_token = match env(ENV_EDITOR_TOKEN) {
        None => None,
        Some(s) if s.len() < MIN_EDITOR_TOKEN_LEN => {
            bad(
                ENV_EDITOR_TOKEN,
                format!(
                    "is {} bytes long; it must be at least {MIN_EDITOR_TOKEN_LEN} (make one with: openssl rand -hex 32)",
                    s.len()
                ),
            );
            None
        }
        Some(s) if guessable(&s) => {
            bad(
                ENV_EDITOR_TOKEN,
                "is too easy to guess (too few different characters, or white space at either end); \
                 make one with: openssl rand -hex 32"
                    .into(),
            );
            None
        }
        Some(s) => Some(Secret::new(s)),
    };
    let secret = match env(ENV_SECRET) {
        None => None,
        Some(s) if s.len() < MIN_SECRET_LEN => {
            bad(
                ENV_SECRET,
                format!(
                    "is {} bytes long; it must be at least {MIN_SECRET_LEN} (try: openssl rand -hex 32)",
                    s.len()
                ),
            );
            None
        }
        Some(s) => Some(Secret::new(s)),
    };
    (editor_token, secret)
}

impl SourceLocation {
    /// `http(s)://…` is fetched; `file://…` or any other string is a path,
    /// relative paths against `base`.
    pub fn parse(raw: &str, base: &Path) -> Result<Self, String> {
        if raw.starts_with("http://") || raw.starts_with("https://") {
            let url = Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
            return Ok(SourceLocation::Http(url));
        }
        if raw.starts_with("file://") {
            let url = Url::parse(raw).map_err(|e| format!("not a valid file URL ({e})"))?;
            let path = url.to_file_path().map_err(|_| "not a local file URL".to_string())?;
            return Ok(SourceLocation::File(path));
        }
        if raw.contains("://") {
            return Err("only http://, https:// and file:// URLs or local paths are supported".into());
        }
        Ok(SourceLocation::File(resolve(base, raw)))
    }
}

/// A duration longer than zero, or `default` with the problem recorded.
pub(super) fn positive_duration(
    key: &str,
    value: Option<&str>,
    default: std::time::Duration,
    bad: &mut impl FnMut(&str, String),
) -> std::time::Duration {
    match value.map(parse_duration) {
        None => default,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Ok(_)) => {
            bad(key, "must be longer than 0".into());
            default
        }
        Some(Err(e)) => {
            bad(key, e);
            default
        }
    }
}

/// A token whose characters carry less than about 80 bits, estimated as
/// length × log2(distinct characters): `aaaa…`, `abababab…`, 16 spaces.
pub(super) fn guessable(token: &str) -> bool {
    let distinct: std::collections::BTreeSet<char> = token.chars().collect();
    let bits = token.chars().count() as f64 * (distinct.len().max(1) as f64).log2();
    token.trim() != token || bits < 80.0
}

/// Parses "30s", "10m", "1h 30m", "24h".
pub fn parse_duration(raw: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(raw.trim())
        .map_err(|e| format!("\"{raw}\" is not a duration like \"30s\", \"10m\" or \"6h\" ({e})"))
}

/// toml's messages carry the line, column and an excerpt; keep them whole but
/// drop the leading "TOML parse error" noise.
pub(super) fn describe_toml_error(e: &toml::de::Error) -> String {
    let msg = e.to_string();
    let msg = msg.trim_end();
    match e.span() {
        Some(_) => msg.replacen("TOML parse error at ", "", 1),
        None => msg.to_string(),
    }
}

pub(super) fn normalise_tags(tags: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for t in tags {
        match crate::domain::normalise_tag(t) {
            Some(n) => {
                if !out.contains(&n) {
                    out.push(n)
                }
            }
            None => return Err(format!("\"{t}\" is not a usable tag name")),
        }
    }
    Ok(out)
}

pub(super) fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `p` relative to the configuration file's folder, with `.` and `..`
/// taken out (`/srv/news/config/../tidings.db` is `/srv/news/tidings.db`).
pub(super) fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    normalise(&joined)
}

/// Removes `.` and resolves `..` by the path's text: what an operator
/// reads, without touching the file system.
pub(super) fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}
