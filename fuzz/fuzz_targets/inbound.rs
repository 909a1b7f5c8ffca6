//! Bytes a stranger mails to the inbound listener → what tidings makes of
//! them: never a panic; the detail is one bounded line without control
//! characters; a status code is `class.subject.detail`; the tokens to
//! verify are few and short, so a hostile message costs little.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::domain::{EmailAddress, ReturnPath};
use tidings::inbound::{Addresses, Envelope, TokenCandidate, classify};

fuzz_target!(|data: &[u8]| {
    let addresses = Addresses {
        return_path: ReturnPath::parse("bounces@example.com").ok(),
        unsubscribe: EmailAddress::parse("unsubscribe@example.com").ok(),
    };
    for envelope in [
        Envelope::default(),
        Envelope {
            mail_from: Some(String::new()),
            recipients: vec!["bounces+12-0123456789abcdef01234567@example.com".into()],
        },
    ] {
        let reading = classify(data, &envelope, &addresses);
        let detail = &reading.detail;
        assert!(detail.chars().count() <= 301, "{} characters", detail.chars().count());
        assert!(!detail.chars().any(char::is_control), "{detail:?}");
        if let Some(code) = &reading.status_code {
            let parts: Vec<&str> = code.split('.').collect();
            assert!(
                parts.len() == 3
                    && matches!(parts[0], "2" | "4" | "5")
                    && parts[1..].iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())),
                "status code {code:?}"
            );
        }
        assert!(reading.tokens.len() <= 64, "{} tokens", reading.tokens.len());
        for token in &reading.tokens {
            let (TokenCandidate::Delivery(t) | TokenCandidate::Subscriber(t)) = token;
            assert!(!t.is_empty(), "empty token");
        }
    }
});
