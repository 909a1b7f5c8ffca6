//! A subscriber CSV (`tidings subscribers import`) → rows: every row is an
//! address that is valid and stable under re-parsing, or an error with its
//! line; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;
use tidings::app::parse_subscriber_csv;
use tidings::config::Config;
use tidings::domain::EmailAddress;
use tidings_fuzz::assert_one_line;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/tidings.toml"));
        Config::load(&path, &|_| None).expect("the bundled config validates")
    })
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    // The fuzzer writes the rows; the header is fixed half the time so that
    // its effort goes into the rows rather than into finding "email".
    let input: Vec<u8> = match data.split_first() {
        Some((&b, rest)) if b % 2 == 0 => [b"email,name,editions\n".as_slice(), rest].concat(),
        _ => data.to_vec(),
    };
    let Ok(rows) = parse_subscriber_csv(&input, config) else {
        return;
    };
    let editions: Vec<&str> = config.editions.iter().map(|e| e.name.as_str()).collect();
    for row in rows {
        match row {
            Ok(row) => {
                let again = EmailAddress::parse(row.email.as_str())
                    .unwrap_or_else(|e| panic!("accepted {:?}, which does not parse again: {e}", row.email));
                assert_eq!(again, row.email, "an address changed on re-parsing");
                assert_one_line("email", row.email.as_str());
                if let Some(name) = row.name.as_ref().map(|n| n.as_str()) {
                    assert_one_line("name", name);
                    assert!(!name.is_empty(), "an empty name kept");
                }
                assert!(!row.editions.is_empty(), "a subscriber of no edition");
                for e in &row.editions {
                    assert!(editions.contains(&e.as_str()), "unknown edition {e:?} accepted");
                }
            }
            Err((_, message)) => assert!(!message.is_empty(), "an error without a message"),
        }
    }
});
