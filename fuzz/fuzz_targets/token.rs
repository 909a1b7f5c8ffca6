//! A link's token → verdict. A token that verifies must be exactly the one
//! the signer makes for that purpose and id (no second spelling of a valid
//! token), and every signed token verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::token::{Purpose, Signer};

const PURPOSES: [Purpose; 5] = [
    Purpose::Unsubscribe,
    Purpose::Confirm,
    Purpose::Preferences,
    Purpose::EditorSession,
    Purpose::Csrf,
];

fuzz_target!(|data: &[u8]| {
    let signer = Signer::new(b"fuzzing secret, 32 bytes long...");
    let now = 1_800_000_000;
    // Round trip: any id and expiry signs to a token that verifies.
    if data.len() >= 17 {
        let id = i64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
        let expires = i64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
        let purpose = PURPOSES[usize::from(data[16]) % PURPOSES.len()];
        let expires = (expires != 0).then_some(expires);
        let token = signer.sign(purpose, id, expires);
        match signer.verify(purpose, &token, now) {
            Ok(got) => assert_eq!(got, id, "verified as another id"),
            Err(e) => assert!(
                expires.is_some_and(|x| x < now),
                "a fresh token of ours was refused: {e} ({token})"
            ),
        }
        for other in PURPOSES.iter().filter(|p| **p != purpose) {
            assert!(signer.verify(*other, &token, now).is_err(), "a token crossed purposes");
        }
    }
    // Forgery: arbitrary text verifies only if it is the signer's own token.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for purpose in PURPOSES {
        if let Ok(id) = signer.verify(purpose, text, now) {
            let expires: i64 = text.split('.').nth(1).and_then(|e| e.parse().ok()).expect("verified tokens have an expiry");
            let expected = signer.sign(purpose, id, (expires != 0).then_some(expires));
            assert_eq!(text, expected, "a token verified that the signer did not make");
        }
    }
});
