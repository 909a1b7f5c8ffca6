//! Issue 17's findings, each tried as an attacker would, against the real
//! binary and `tidings serve` on 127.0.0.1.

use mail_parser::MessageParser;

use crate::support::http::FeedServer;
use crate::support::smtp::{SmtpOptions, SmtpServer};
use crate::support::{Db, TestEnv, assert_exit};

/// Text from a feed, an editor's note and a subscriber's name that holds
/// the markers earlier versions filled in reaches the reader as text:
/// never as the reader's address, unsubscribe or preferences link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_from_outside_never_becomes_a_readers_address_or_link() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        r#"
[smtp]
url = "smtp://127.0.0.1:{port}"
starttls = "never"

[[sources]]
name = "Bait"
url = "{feed}"

[tags.security]
keywords = ["ransomware"]

[audiences.security]
title = "Security"
weights = {{ security = 1.0 }}

[[editions]]
name = "weekly"
title = "Weekly"
audience = "security"
schedule = "0 0 8 * * Mon"
subject = "{{{{ edition.title }}}} for {{{{ subscriber.name or 'you' }}}}"
"#,
        port = smtp.port,
        feed = feeds.url("feeds/marker-bait.xml"),
    ));
    let csv =
        "email,name,editions\nada@example.com,Ada TIDINGSxSUBSCRIBERxEMAILx7f3a,weekly\nbob@example.com,,weekly\n";
    std::fs::write(env.path("subs.csv"), csv).expect("csv");
    assert_exit(&env.run(&["subscribers", "import", "subs.csv"]).await, 0);
    let note = "Tell TIDINGSxSUBSCRIBERxEMAILx7f3a about TIDINGSxUNSUBSCRIBExURLx7f3a";
    assert_exit(&env.run(&["issue", "note", "weekly", note]).await, 0);
    assert_exit(&env.run(&["run", "--once"]).await, 0);

    let messages = smtp.messages();
    assert_eq!(messages.len(), 2, "one message per reader");
    for received in &messages {
        let msg = MessageParser::default().parse(&received.data).expect("MIME");
        let to = received.rcpt_to[0].clone();
        let text = msg.body_text(0).expect("text part").into_owned();
        let html = msg.body_html(0).expect("html part").into_owned();
        let subject = msg.subject().unwrap_or_default().to_string();
        let unsubscribe = msg
            .header_raw("List-Unsubscribe")
            .and_then(|v| v.split(['<', '>']).nth(1).map(str::to_string))
            .expect("List-Unsubscribe");
        // The template's own places still get the reader's values.
        assert!(
            text.contains(&format!("Unsubscribe (one click): {unsubscribe}")),
            "{text}"
        );
        for (part, body) in [("text", &text), ("html", &html), ("subject", &subject)] {
            // Where the bait was, the reader's values are not.
            for line in body
                .lines()
                .filter(|l| l.contains("evil.test") || l.contains("TIDINGS"))
            {
                assert!(!line.contains(&to), "{part} of {to}'s copy leaks the address: {line}");
                assert!(
                    !line.contains("/unsubscribe/"),
                    "{part} of {to}'s copy leaks a link: {line}"
                );
                assert!(
                    !line.contains("/preferences/"),
                    "{part} of {to}'s copy leaks a link: {line}"
                );
            }
        }
        // The bait arrives as the literal text it was (defused).
        assert!(
            text.contains("https://evil.test/track?e=TIDINGS-xSUBSCRIBERxEMAILx7f3a"),
            "{text}"
        );
        assert!(
            text.contains("Ransomware report TIDINGS-xSUBSCRIBERxEMAILx7f3a"),
            "{text}"
        );
        assert!(text.contains("Tell TIDINGS-xSUBSCRIBERxEMAILx7f3a about"), "{text}");
        if to == "ada@example.com" {
            assert_eq!(subject, "Weekly for Ada TIDINGS-xSUBSCRIBERxEMAILx7f3a");
        } else {
            assert_eq!(subject, "Weekly for you");
        }
    }
}
