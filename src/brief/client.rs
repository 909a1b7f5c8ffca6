//! A client for OpenAI-compatible chat completion servers (llama.cpp's
//! llama-server, Ollama, vLLM, LM Studio, hosted APIs): one request with a
//! JSON schema for the answer. The envelope is read leniently — servers
//! differ in what they fill in — and the answer itself strictly, elsewhere.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::BriefError;
use crate::config::Briefing;

/// Largest answer read from the server; a card is a few KiB.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// What the server answered, with its token counts.
#[derive(Debug, Clone)]
pub struct Completion {
    pub content: String,
    /// `length`: the answer was cut at `max_tokens`.
    pub finish_reason: Option<String>,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

#[derive(Clone)]
pub struct ModelClient {
    http: reqwest::Client,
    url: url::Url,
    model: String,
    api_key: Option<String>,
    max_tokens: u32,
}

impl std::fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelClient")
            .field("url", &self.url.as_str())
            .field("model", &self.model)
            .finish()
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl ModelClient {
    pub fn new(settings: &Briefing) -> Result<ModelClient, BriefError> {
        let mut url = settings.endpoint.clone();
        // `…/v1` and `…/v1/` both mean the API's base.
        let path = format!("{}/chat/completions", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10).min(settings.timeout))
            // The model server is the operator's: no redirects elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tidings/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BriefError::Setup(e.to_string()))?;
        Ok(ModelClient {
            http,
            url,
            model: settings.model.clone(),
            api_key: settings.api_key.as_ref().map(|k| k.expose().to_string()),
            max_tokens: settings.max_output_tokens,
        })
    }

    /// Asks for one answer that follows `schema`, at temperature 0.
    pub async fn complete(
        &self,
        system: &str,
        user: &str,
        schema_name: &str,
        schema: &serde_json::Value,
    ) -> Result<Completion, BriefError> {
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "stream": false,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "strict": true, "schema": schema},
            },
        });
        let mut request = self.http.post(self.url.clone()).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(|e| transport_error(&self.url, e))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&self.url, e))? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_RESPONSE_BYTES {
                return Err(BriefError::Garbage(format!(
                    "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
        }
        if !status.is_success() {
            let text = crate::text::shorten(&crate::text::clean_line(&String::from_utf8_lossy(&bytes)), 200);
            return Err(BriefError::Status {
                status: status.as_u16(),
                body: text,
            });
        }
        let envelope: Envelope = serde_json::from_slice(&bytes)
            .map_err(|e| BriefError::Garbage(format!("the answer is not a chat completion ({e})")))?;
        let usage = envelope.usage.unwrap_or_default();
        let choice = envelope
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| BriefError::Garbage("the answer has no choices".into()))?;
        let content = choice
            .message
            .and_then(|m| m.content)
            .ok_or_else(|| BriefError::Garbage("the answer has no message content".into()))?;
        Ok(Completion {
            content,
            finish_reason: choice.finish_reason.filter(|r| !r.is_empty()),
            tokens_in: usage.prompt_tokens,
            tokens_out: usage.completion_tokens,
        })
    }
}

fn transport_error(url: &url::Url, e: reqwest::Error) -> BriefError {
    let at = format!("{}://{}", url.scheme(), url.authority());
    if e.is_timeout() {
        BriefError::Timeout(at)
    } else if e.is_connect() {
        BriefError::Unreachable(at)
    } else {
        BriefError::Transport(format!("{at}: {e}"))
    }
}
