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

/// Bytes of MAC in a delivery token: 96 bits, 24 hex digits, so that
/// `bounces+<token>@domain` stays well inside a 64-octet local part.
const DELIVERY_TAG_BYTES: usize = 12;

impl Signer {
    /// The token naming one delivery, for the VERP return path
    /// (`bounces+TOKEN@…`) and the mailto unsubscribe subject: `ID-HEX`, in
    /// lower case and digits only, because relays may change the case of
    /// a local part.
    pub fn sign_delivery(&self, delivery_id: i64) -> String {
        let tag = self.mac_delivery(delivery_id).finalize().into_bytes();
        let hex: String = tag[..DELIVERY_TAG_BYTES].iter().map(|b| format!("{b:02x}")).collect();
        format!("{delivery_id}-{hex}")
    }

    /// The delivery a token names; case does not matter.
    pub fn verify_delivery(&self, token: &str) -> Result<i64, TokenError> {
        let token = token.trim().to_ascii_lowercase();
        let (id, hex) = token.split_once('-').ok_or(TokenError::Malformed)?;
        let id = parse_canonical(id).ok_or(TokenError::Malformed)?;
        if hex.len() != DELIVERY_TAG_BYTES * 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::Malformed);
        }
        let tag: Vec<u8> = (0..DELIVERY_TAG_BYTES)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| TokenError::Malformed)?;
        self.mac_delivery(id)
            .verify_truncated_left(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(id)
    }

    fn mac_delivery(&self, delivery_id: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("tidings:delivery:{delivery_id}").as_bytes());
        mac
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
    fn delivery_tokens_survive_case_changes_and_refuse_forgery() {
        let s = Signer::new(b"0123456789abcdef0123456789abcdef");
        let t = s.sign_delivery(1234);
        assert!(t.starts_with("1234-") && t.len() == 5 + 24, "{t}");
        assert_eq!(s.verify_delivery(&t), Ok(1234));
        assert_eq!(s.verify_delivery(&t.to_ascii_uppercase()), Ok(1234));
        assert_eq!(
            s.verify_delivery(&t.replacen("1234-", "1235-", 1)),
            Err(TokenError::BadSignature)
        );
        let other = Signer::new(b"another secret another secret ..");
        assert_eq!(other.verify_delivery(&t), Err(TokenError::BadSignature));
        for bad in ["", "1234", "1234-", "01234-00", "x-00", "1234-zz"] {
            assert_eq!(s.verify_delivery(bad), Err(TokenError::Malformed), "{bad}");
        }
        // A subscriber's unsubscribe token is not a delivery token.
        let unsub = s.sign(Purpose::Unsubscribe, 1234, None);
        assert!(s.verify_delivery(&unsub).is_err());
    }

    #[test]
    fn expiry() {
        let s = Signer::new(b"k");
        let t = s.sign(Purpose::Signup, 7, Some(1000));
        assert_eq!(s.verify(Purpose::Signup, &t, 1000), Ok(7));
        assert_eq!(s.verify(Purpose::Signup, &t, 1001), Err(TokenError::Expired));
    }
}
