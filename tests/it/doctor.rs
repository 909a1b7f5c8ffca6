//! `tidings doctor` against a real DNS server (NSD) serving test zones,
//! the daemon's own web pages behind a TLS proxy, and its inbound
//! listener: a domain set up right passes every check (exit 0); a broken
//! one is told each thing to fix (exit 1).

use std::path::Path;

use tokio::io::AsyncWriteExt;

use crate::daemon::Served;
use crate::support::dns::Nsd;
use crate::support::{Db, TestEnv, stdout};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn zone(origin: &str, records: &str) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL 60\n@ IN SOA ns.{origin}. admin.{origin}. 1 3600 600 86400 60\n@ IN NS ns.{origin}.\nns IN A 127.0.0.1\n{records}\n"
    )
}

/// A TXT record's text as quoted strings of at most 255 bytes each.
fn txt(text: &str) -> String {
    text.as_bytes()
        .chunks(200)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An HTTPS front for `news.example.com` (under a test CA, written to
/// `ca_file`) that passes each connection to `upstream`, as an operator's
/// TLS proxy would.
async fn tls_proxy(ca_file: &Path, upstream: std::net::SocketAddr) -> u16 {
    let tls = crate::support::smtp::tls_for("news.example.com");
    std::fs::write(ca_file, &tls.ca_pem).expect("ca file");
    let acceptor = tls.acceptor;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn write_config(env: &TestEnv, site: &str, body: &str) {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    std::fs::write(
        env.config_path(),
        format!(
            "[site]\ntitle = \"Weekly AI Recap\"\ntemplates = \"{}\"\n{site}\n\n[database]\nurl = \"sqlite://tidings.db\"\n\n{body}",
            templates.display()
        ),
    )
    .expect("config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_dns_site_and_unsubscribe_paths_and_says_what_to_fix() {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/rsa-2048.pem");
    let pem = std::fs::read_to_string(&keys).expect("key");
    let ours = rcgen::KeyPair::from_pem(&pem).expect("rsa key");
    // A PEM public key's body is the base64 of its SubjectPublicKeyInfo.
    let b64 = |pem: String| pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>();
    let our_p = b64(ours.public_key_pem());
    let another_p = b64(rcgen::KeyPair::generate().expect("key").public_key_pem());

    let good = zone(
        "example.com",
        &format!(
            "@ IN MX 10 mx.example.com.\nmx IN A 127.0.0.1\n@ IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\nrelay IN A 192.0.2.10\nnews IN A 127.0.0.1\nsel._domainkey IN TXT ( {} )\n_dmarc IN TXT \"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com\"",
            txt(&format!("v=DKIM1; k=rsa; p={our_p}"))
        ),
    );
    let broken = zone(
        "broken.example",
        &format!(
            "@ IN TXT \"v=spf1 ip4:198.51.100.1 -all\"\nrelay IN A 192.0.2.10\nsel._domainkey IN TXT ( {} )",
            txt(&format!("v=DKIM1; k=rsa; p={another_p}"))
        ),
    );
    let Some(dns) = Nsd::start(&[("example.com", good), ("broken.example", broken)]).await else {
        return;
    };

    // Set up right: the daemon's pages behind HTTPS, its listener reading
    // the unsubscribe address.
    let env = TestEnv::new(Db::Sqlite);
    std::fs::copy(&keys, env.path("dkim.pem")).expect("key copy");
    let (web_port, inbound_port) = (free_port(), free_port());
    let ca_file = env.path("ca.pem");
    let proxy_port = tls_proxy(&ca_file, ([127, 0, 0, 1], web_port).into()).await;
    let body = |domain: &str, inbound: &str| {
        format!(
            r#"
[smtp]
url = "smtp://relay.{domain}:2525"
starttls = "never"

[web]
listen = "127.0.0.1:{web_port}"

[delivery]
return_path = "bounces@{domain}"

[dkim]
domain = "{domain}"
selector = "sel"
private_key_file = "dkim.pem"

{inbound}

[doctor]
nameservers = ["127.0.0.1:{dns}"]
"#,
            dns = dns.port
        )
    };
    write_config(
        &env,
        &format!(
            "base_url = \"https://news.example.com:{proxy_port}\"\nfrom = \"Weekly AI Recap <recap@example.com>\"\nunsubscribe_mailto = \"unsubscribe@example.com\""
        ),
        &body(
            "example.com",
            &format!("[inbound]\nlisten = \"127.0.0.1:{inbound_port}\""),
        ),
    );
    let served = Served::start(&env).await;
    served.address().await;
    served.address_logged_as("inbound mail listening (SMTP and LMTP)").await;
    let ca = ca_file.display().to_string();
    let out = env.run_with_env(&["doctor"], &[("SSL_CERT_FILE", &ca)]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", crate::support::stderr(&out));
    for line in [
        "example.com's SPF record authorises the relay relay.example.com (192.0.2.10)",
        "sel._domainkey.example.com holds the public key of dkim.private_key_file (rsa)",
        "_dmarc.example.com: p=quarantine; SPF and DKIM aligned with the From domain example.com",
        "bounces to bounces+0-doctor@example.com go to mx.example.com",
        &format!("https://news.example.com:{proxy_port}/healthz answers over https"),
        "a one-click POST to",
        &format!(
            "the inbound listener on 127.0.0.1:{inbound_port} takes mail for unsubscribe@example.com and refuses relaying"
        ),
        "all 7 checks passed",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    assert!(!text.contains("FAIL"), "{text}");
    assert!(served.stop().await.success());

    // Broken: each problem named, with what to publish or set.
    write_config(
        &env,
        &format!(
            "base_url = \"http://127.0.0.1:{web_port}\"\nfrom = \"News <news@broken.example>\"\nunsubscribe_mailto = \"unsubscribe@broken.example\""
        ),
        &body("broken.example", ""),
    );
    let served = Served::start(&env).await;
    served.address().await;
    let out = env.run(&["doctor"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for line in [
        "broken.example's SPF record does not authorise the relay relay.broken.example: 192.0.2.10 (Fail)",
        &format!(
            "sel._domainkey.broken.example holds another key than dkim.private_key_file {}: publish \"v=DKIM1; k=rsa; p={our_p}\"",
            env.path("dkim.pem").display()
        ),
        "broken.example has no DMARC record",
        "broken.example has no MX record: bounces to bounces+0-doctor@broken.example cannot be delivered",
        "base_url is not https",
        "broken.example has no MX record: unsubscribe mails to unsubscribe@broken.example cannot arrive",
        "6 of 7 checks failed:",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    // The one-click path itself still works over http.
    assert!(text.contains("ok    unsubscribe-link"), "{text}");
    assert!(served.stop().await.success());

    // Nothing was unsubscribed by the test token, nobody is listed.
    let list = stdout(&env.run(&["subscribers", "list"]).await);
    assert!(!list.contains("unsubscribed"), "{list}");
}
