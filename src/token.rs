//! Signed tokens for links in emails (unsubscribe, and later confirm and
//! preferences): `ID.EXPIRY.MAC`, where MAC is HMAC-SHA256 over the purpose,
//! the subscriber id and the expiry, so a token for one purpose or one
//! subscriber can never be replayed as another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The MAC is truncated to 128 bits (RFC 2104 allows it; forging still takes
/// 2^128 tries) to keep links short.
const TAG_BYTES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    /// A sign-up's confirmation link (the id is the sign-up's, not the
    /// subscriber's).
    Signup,
    Preferences,
    /// An editor's login session (the web editor's cookie).
    EditorSession,
    /// A form token tied to one editor session.
    Csrf,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Unsubscribe => "unsubscribe",
            Purpose::Signup => "signup",
            Purpose::Preferences => "preferences",
            Purpose::EditorSession => "editor-session",
            Purpose::Csrf => "csrf",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        Signer { key: secret.to_vec() }
    }

    fn mac(&self, purpose: Purpose, id: i64, expires: i64) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("tidings:{}:{id}:{expires}", purpose.label()).as_bytes());
        mac
    }

    /// `expires` is a Unix time, or `None` for a link that never expires
    /// (unsubscribe links must keep working in old emails).
    pub fn sign(&self, purpose: Purpose, id: i64, expires: Option<i64>) -> String {
        let expires = expires.unwrap_or(0);
        let tag = self.mac(purpose, id, expires).finalize().into_bytes();
        format!("{id}.{expires}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]))
    }

    /// Returns the subscriber id the token was signed for.
    pub fn verify(&self, purpose: Purpose, token: &str, now_unix: i64) -> Result<i64, TokenError> {
        let mut parts = token.split('.');
        let (Some(id), Some(expires), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        // Canonical decimal only: "+1" or "01" would sign the same id twice.
        let id: i64 = parse_canonical(id).ok_or(TokenError::Malformed)?;
        let expires: i64 = parse_canonical(expires).ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        if tag.len() != TAG_BYTES {
            return Err(TokenError::Malformed);
        }
        self.mac(purpose, id, expires)
            .verify_truncated_left(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        if expires != 0 && now_unix > expires {
            return Err(TokenError::Expired);
        }
        Ok(id)
    }
}

fn parse_canonical(s: &str) -> Option<i64> {
    let n: i64 = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forgery() {
        let s = Signer::new(b"0123456789abcdef0123456789abcdef");
        let t = s.sign(Purpose::Unsubscribe, 42, None);
        assert_eq!(s.verify(Purpose::Unsubscribe, &t, 0), Ok(42));
        // Another purpose, another id, another key, a flipped character.
        assert_eq!(s.verify(Purpose::Signup, &t, 0), Err(TokenError::BadSignature));
        let other_id = t.replacen("42.", "43.", 1);
        assert_eq!(
            s.verify(Purpose::Unsubscribe, &other_id, 0),
            Err(TokenError::BadSignature)
        );
        let other = Signer::new(b"another secret another secret ..");
        assert_eq!(other.verify(Purpose::Unsubscribe, &t, 0), Err(TokenError::BadSignature));
        let mut flipped = t.clone();
        let last = flipped.pop().expect("non-empty");
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert!(s.verify(Purpose::Unsubscribe, &flipped, 0).is_err());
        assert_eq!(s.verify(Purpose::Unsubscribe, "42", 0), Err(TokenError::Malformed));
        assert_eq!(
            s.verify(Purpose::Unsubscribe, &t.replacen("42.", "042.", 1), 0),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn expiry() {
        let s = Signer::new(b"k");
        let t = s.sign(Purpose::Signup, 7, Some(1000));
        assert_eq!(s.verify(Purpose::Signup, &t, 1000), Ok(7));
        assert_eq!(s.verify(Purpose::Signup, &t, 1001), Err(TokenError::Expired));
    }
}
