//! Config text → validated settings: any text either validates or is
//! rejected with problems to show; nothing panics, and a secret given
//! through the environment never appears in an error message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use tidings::config::Config;

const SECRET: &str = "fuzz-secret-Zq8v2LkP0wX7nR4t";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Beside the repository's own templates, so a config that names them
    // can validate all the way through.
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/fuzz.toml"));
    let env = |name: &str| match name {
        "TIDINGS_SECRET" | "TIDINGS_SMTP_PASSWORD" | "TIDINGS_EDITOR_TOKEN" => Some(SECRET.to_string()),
        _ => None,
    };
    if let Err(e) = Config::parse(text, &path, &env) {
        let shown = e.to_string();
        assert!(!shown.is_empty(), "an error without a message");
        assert!(!shown.contains(SECRET), "the error shows a secret: {shown}");
    }
});
