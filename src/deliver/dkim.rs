//! DKIM signing keys from the files operators have: a PKCS#8 PEM from
//! `openssl genpkey -algorithm ed25519` or `-algorithm rsa`, or an RSA PKCS#1
//! PEM. lettre wants RSA as PKCS#1 PEM and Ed25519 as the base64 of its
//! 32-byte seed, so the key is converted here.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

use crate::config::{BodyCanonicalization, Dkim};

const OID_ED25519: &str = "1.3.101.112";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

/// Headers the signature covers, beyond the body: what a receiver shows or
/// acts on, so none of it can be altered on the way. (Not Content-Type:
/// lettre 0.11 canonicalizes it differently from what it sends, and every
/// verifier then rejects the signature; checked with dkimpy in the tests.)
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
];

#[derive(Debug, thiserror::Error)]
#[error("dkim.private_key_file {path}: {reason}")]
pub struct DkimKeyError {
    path: String,
    reason: String,
}

/// The signing key and settings, and which algorithm they use.
pub struct DkimSigner {
    pub config: DkimConfig,
    pub algorithm: &'static str,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DkimSigner({})", self.algorithm)
    }
}

pub fn load(settings: &Dkim) -> Result<DkimSigner, DkimKeyError> {
    let fail = |reason: String| DkimKeyError {
        path: settings.private_key_file.display().to_string(),
        reason,
    };
    let pem = std::fs::read(&settings.private_key_file).map_err(|e| fail(e.to_string()))?;
    let (key, algorithm) = signing_key(&pem).map_err(fail)?;
    let headers = SIGNED_HEADERS
        .iter()
        .map(|h| HeaderName::new_from_ascii_str(h))
        .collect();
    let config = DkimConfig::new(
        settings.selector.clone(),
        settings.domain.clone(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: match settings.body_canonicalization {
                BodyCanonicalization::Simple => DkimCanonicalizationType::Simple,
                BodyCanonicalization::Relaxed => DkimCanonicalizationType::Relaxed,
            },
        },
    );
    Ok(DkimSigner { config, algorithm })
}

fn signing_key(pem: &[u8]) -> Result<(DkimSigningKey, &'static str), String> {
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("not a PEM private key ({e})"))?;
    match key {
        PrivateKeyDer::Pkcs1(rsa) => Ok((rsa_key(rsa.secret_pkcs1_der())?, "rsa-sha256")),
        PrivateKeyDer::Pkcs8(p8) => {
            let info = pkcs8::PrivateKeyInfo::try_from(p8.secret_pkcs8_der())
                .map_err(|e| format!("not a PKCS#8 key ({e})"))?;
            match info.algorithm.oid.to_string().as_str() {
                OID_ED25519 => {
                    // The private key is an OCTET STRING holding the 32-byte seed.
                    let seed = match info.private_key {
                        [0x04, 0x20, seed @ ..] if seed.len() == 32 => seed,
                        _ => return Err("malformed Ed25519 key".into()),
                    };
                    let key = DkimSigningKey::new(&B64.encode(seed), DkimSigningAlgorithm::Ed25519)
                        .map_err(|e| e.to_string())?;
                    Ok((key, "ed25519-sha256"))
                }
                OID_RSA => Ok((rsa_key(info.private_key)?, "rsa-sha256")),
                other => Err(format!("unsupported key algorithm {other}; use Ed25519 or RSA")),
            }
        }
        _ => Err("unsupported key format; use PKCS#8 (openssl genpkey) or RSA PKCS#1".into()),
    }
}

/// PKCS#1 DER → the PEM lettre reads.
fn rsa_key(pkcs1_der: &[u8]) -> Result<DkimSigningKey, String> {
    let body = B64.encode(pkcs1_der);
    let mut pem = String::from("-----BEGIN RSA PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).map_err(|e| e.to_string())?);
        pem.push('\n');
    }
    pem.push_str("-----END RSA PRIVATE KEY-----\n");
    DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa).map_err(|e| format!("RSA key: {e}"))
}

/// Reads the key to check it, for `config check`.
pub fn check(path: &Path) -> Result<&'static str, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    signing_key(&pem).map(|(_, alg)| alg)
}

/// The public half of the key at `path`, as a DKIM record's `p=` holds it
/// (RSA: the PKCS#1 RSAPublicKey inside the usual SubjectPublicKeyInfo;
/// Ed25519: the 32 raw bytes), with the record's `k=` name.
pub fn public_key(path: &Path) -> Result<(&'static str, Vec<u8>), String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("not a PEM private key ({e})"))?;
    let rsa = |pair: Result<ring::rsa::KeyPair, ring::error::KeyRejected>| {
        pair.map(|k| ("rsa", k.public().as_ref().to_vec()))
            .map_err(|e| format!("RSA key: {e}"))
    };
    match key {
        PrivateKeyDer::Pkcs1(k) => rsa(ring::rsa::KeyPair::from_der(k.secret_pkcs1_der())),
        PrivateKeyDer::Pkcs8(p8) => {
            let info = pkcs8::PrivateKeyInfo::try_from(p8.secret_pkcs8_der())
                .map_err(|e| format!("not a PKCS#8 key ({e})"))?;
            match (info.algorithm.oid.to_string().as_str(), info.private_key) {
                (OID_ED25519, [0x04, 0x20, seed @ ..]) if seed.len() == 32 => {
                    use ring::signature::KeyPair;
                    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
                        .map_err(|e| format!("Ed25519 key: {e}"))?;
                    Ok(("ed25519", pair.public_key().as_ref().to_vec()))
                }
                (OID_RSA, _) => rsa(ring::rsa::KeyPair::from_pkcs8(p8.secret_pkcs8_der())),
                (other, _) => Err(format!("unsupported key algorithm {other}")),
            }
        }
        _ => Err("unsupported key format".into()),
    }
}
