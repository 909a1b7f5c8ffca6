//! Amazon SNS, which carries SES's bounce and complaint notifications to
//! `/hooks/ses`. Each SNS message is signed (RSA, SHA-256 with
//! `SignatureVersion` 2) by a certificate that tidings fetches itself, over
//! HTTPS and only from SNS's own hosts (`sns.REGION.amazonaws.com`), so a
//! forged message cannot point at a certificate of its own. Any AWS account
//! can sign, so the topic must also be one of `ses_topic_arns`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use url::Url;

use super::webhooks::WebhookError;

/// The fields of an SNS message that tidings reads; the names are SNS's.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsMessage {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(default, rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

impl SnsMessage {
    pub fn parse(body: &[u8]) -> Result<SnsMessage, WebhookError> {
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(format!("not an SNS message: {e}")))
    }

    /// The text SNS signed: chosen fields as `Name\nvalue\n`, in byte order
    /// of their names, which differ by message type.
    pub fn string_to_sign(&self) -> Result<String, WebhookError> {
        let mut fields: Vec<(&str, &str)> = vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.kind.as_str() {
            "Notification" => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.push(("Timestamp", &self.timestamp));
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                let (Some(url), Some(token)) = (&self.subscribe_url, &self.token) else {
                    return Err(WebhookError::Malformed(format!(
                        "a {} without SubscribeURL or Token",
                        self.kind
                    )));
                };
                fields.push(("SubscribeURL", url));
                fields.push(("Timestamp", &self.timestamp));
                fields.push(("Token", token));
            }
            other => return Err(WebhookError::Malformed(format!("unknown SNS message type {other:?}"))),
        }
        fields.push(("TopicArn", &self.topic_arn));
        fields.push(("Type", &self.kind));
        Ok(fields.iter().map(|(k, v)| format!("{k}\n{v}\n")).collect())
    }
}

/// An SNS endpoint URL (certificate or subscription) that tidings will
/// fetch: HTTPS on the default port, host `sns.REGION.amazonaws.com` (or
/// `.amazonaws.com.cn`), no credentials.
pub fn sns_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    let host = url.host_str().unwrap_or_default();
    let region = host.strip_prefix("sns.").and_then(|h| {
        h.strip_suffix(".amazonaws.com")
            .or_else(|| h.strip_suffix(".amazonaws.com.cn"))
    });
    let region_ok = region.is_some_and(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if url.scheme() != "https"
        || !region_ok
        || url.port().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "{raw:?} is not on an SNS host (https://sns.REGION.amazonaws.com/…)"
        ));
    }
    Ok(url)
}

/// Signing certificates by URL, fetched once each. The client decides
/// whose TLS roots are trusted (the system's, in the daemon).
pub struct SnsCertificates {
    client: reqwest::Client,
    cache: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

/// SNS uses a handful of certificates at a time; a flood of distinct URLs
/// must not grow the cache without end.
const MAX_CACHED: usize = 32;
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

impl SnsCertificates {
    pub fn new(client: reqwest::Client) -> Self {
        SnsCertificates {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A client for the daemon: short timeouts, no redirects.
    pub fn standard() -> reqwest::Result<Self> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .user_agent(concat!("tidings/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(SnsCertificates::new(client))
    }

    /// Checks the message's signature; `Ok` only when SNS signed it.
    pub async fn verify(&self, message: &SnsMessage) -> Result<(), WebhookError> {
        if message.signature_version != "2" {
            return Err(WebhookError::Unsigned(format!(
                "SignatureVersion {:?}: only 2 (SHA-256) is accepted; set the topic's SignatureVersion attribute to 2",
                message.signature_version
            )));
        }
        let url = sns_url(&message.signing_cert_url).map_err(WebhookError::Unsigned)?;
        if !url.path().ends_with(".pem") {
            return Err(WebhookError::Unsigned(format!(
                "SigningCertURL {url} is not a certificate (.pem)"
            )));
        }
        let signed = message.string_to_sign()?;
        let signature = STANDARD
            .decode(message.signature.trim())
            .map_err(|_| WebhookError::Unsigned("the signature is not base64".into()))?;
        let der = self.certificate(&url).await?;
        let der = CertificateDer::from(der.as_slice());
        let certificate = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| WebhookError::Unsigned(format!("the certificate at {url} cannot be read: {e}")))?;
        certificate
            .verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
            .map_err(|_| WebhookError::Unsigned(format!("the signature does not match the certificate at {url}")))
    }

    async fn certificate(&self, url: &Url) -> Result<Arc<Vec<u8>>, WebhookError> {
        if let Some(der) = self.cache.lock().ok().and_then(|c| c.get(url.as_str()).cloned()) {
            return Ok(der);
        }
        let unavailable = |e: String| WebhookError::Unavailable(format!("the SNS certificate at {url}: {e}"));
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unavailable(e.to_string()))?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_CERTIFICATE_BYTES as u64)
        {
            return Err(unavailable("larger than a certificate".into()));
        }
        let body = response.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        if body.len() > MAX_CERTIFICATE_BYTES {
            return Err(unavailable("larger than a certificate".into()));
        }
        let der = CertificateDer::from_pem_slice(&body)
            .map_err(|e| WebhookError::Unsigned(format!("the SNS certificate at {url} is not PEM: {e:?}")))?;
        let der = Arc::new(der.as_ref().to_vec());
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(url.as_str().to_string(), Arc::clone(&der));
        }
        Ok(der)
    }

    /// Confirms a subscription to one of our topics by visiting its
    /// SubscribeURL (which must be on an SNS host too).
    pub async fn confirm_subscription(&self, message: &SnsMessage) -> Result<(), WebhookError> {
        let raw = message.subscribe_url.as_deref().unwrap_or_default();
        let url = sns_url(raw).map_err(WebhookError::Malformed)?;
        self.client
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| WebhookError::Unavailable(format!("confirming the SNS subscription: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_over_https_are_fetched() {
        for ok in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.eu-west-3.amazonaws.com/x.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
        ] {
            assert!(sns_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.us_east.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
            "https://s3.us-east-1.amazonaws.com/x.pem",
            "not a url",
        ] {
            assert!(sns_url(bad).is_err(), "{bad}");
        }
    }

    fn message(kind: &str) -> SnsMessage {
        SnsMessage {
            kind: kind.into(),
            message_id: "m-1".into(),
            topic_arn: "arn:aws:sns:us-east-1:1:t".into(),
            subject: None,
            message: "{\"a\":1}".into(),
            timestamp: "2026-12-06T10:00:00.000Z".into(),
            signature_version: "2".into(),
            signature: String::new(),
            signing_cert_url: String::new(),
            subscribe_url: Some("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription".into()),
            token: Some("tok".into()),
        }
    }

    #[test]
    fn the_signed_text_follows_the_message_type() {
        let n = message("Notification");
        assert_eq!(
            n.string_to_sign().expect("signed text"),
            "Message\n{\"a\":1}\nMessageId\nm-1\nTimestamp\n2026-12-06T10:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nNotification\n"
        );
        let mut with_subject = n.clone();
        with_subject.subject = Some("Hi".into());
        assert!(
            with_subject
                .string_to_sign()
                .expect("signed text")
                .contains("MessageId\nm-1\nSubject\nHi\nTimestamp")
        );
        let c = message("SubscriptionConfirmation");
        assert!(c.string_to_sign().expect("signed text").contains(
            "SubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\nTimestamp\n2026-12-06T10:00:00.000Z\nToken\ntok\nTopicArn"
        ));
        assert!(message("Other").string_to_sign().is_err());
    }
}
