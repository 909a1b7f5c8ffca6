//! Model servers on 127.0.0.1 for the briefing tests: the real llama.cpp
//! `llama-server` with SmolLM2-135M-Instruct (built by
//! `scripts/model-server`; paths in `TIDINGS_TEST_LLAMA_SERVER` and
//! `TIDINGS_TEST_MODEL`), a counting pass-through in front of it, and a
//! small stand-in that answers as told for the failures the real server
//! cannot be made to produce (garbage, out-of-schema, figures that are
//! not in the story, 500s, a hang).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// A running `llama-server`, stopped when dropped.
pub struct LlamaServer {
    pub base: String,
    _child: tokio::process::Child,
}

impl LlamaServer {
    /// Starts the real server, or `None` (with a note) where it was not
    /// built; `TIDINGS_REQUIRE_MODEL=1` (CI) turns that into a failure.
    pub async fn start() -> Option<LlamaServer> {
        let (Ok(server), Ok(model)) = (
            std::env::var("TIDINGS_TEST_LLAMA_SERVER"),
            std::env::var("TIDINGS_TEST_MODEL"),
        ) else {
            assert!(
                std::env::var("TIDINGS_REQUIRE_MODEL").is_err(),
                "TIDINGS_REQUIRE_MODEL is set but TIDINGS_TEST_LLAMA_SERVER / TIDINGS_TEST_MODEL are not (run scripts/test)"
            );
            eprintln!("skipped: no llama-server (run the tests through scripts/test to build it)");
            return None;
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        // One slot and no prompt cache: answers at temperature 0 repeat.
        let child = tokio::process::Command::new(&server)
            .args(["-m", &model, "--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "-c",
                "4096",
                "-t",
                "2",
                "-np",
                "1",
                "--no-cache-prompt",
                "--log-disable",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {server}: {e}"));
        let base = format!("http://127.0.0.1:{port}");
        tidings::install_crypto_provider();
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = client.get(format!("{base}/health")).send().await
                && r.status().is_success()
            {
                return Some(LlamaServer { base, _child: child });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("llama-server did not become healthy within 60 s");
    }
}

/// A pass-through to a real server that counts the completions asked for
/// and keeps what was sent.
pub struct CountingProxy {
    pub base: String,
    pub requests: Arc<AtomicUsize>,
    pub bodies: Arc<Mutex<Vec<Value>>>,
}

impl CountingProxy {
    pub async fn start(upstream: &str) -> CountingProxy {
        #[derive(Clone)]
        struct S {
            upstream: String,
            requests: Arc<AtomicUsize>,
            bodies: Arc<Mutex<Vec<Value>>>,
            client: reqwest::Client,
        }
        async fn forward(State(s): State<S>, body: Bytes) -> Response {
            s.requests.fetch_add(1, Ordering::SeqCst);
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                s.bodies.lock().expect("lock").push(v);
            }
            let answer = s
                .client
                .post(format!("{}/v1/chat/completions", s.upstream))
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await;
            match answer {
                Ok(r) => {
                    let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                    let bytes = r.bytes().await.unwrap_or_default();
                    (status, [("content-type", "application/json")], bytes).into_response()
                }
                Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
            }
        }
        tidings::install_crypto_provider();
        let requests = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let state = S {
            upstream: upstream.to_string(),
            requests: Arc::clone(&requests),
            bodies: Arc::clone(&bodies),
            client: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(forward))
            .with_state(state);
        let base = serve(app).await;
        CountingProxy { base, requests, bodies }
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// How the stand-in answers a request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A card in the schema the request asked for, with these texts:
    /// `tldr` and one takeaway citing source 1 — for a story whose text
    /// holds `about` (any story when empty); other stories get a card
    /// without figures.
    Card {
        about: String,
        tldr: String,
        takeaway: String,
    },
    /// This exact message content (in a well-formed envelope).
    Content(String),
    /// This status and body.
    Status(u16, String),
    /// A body that is no chat completion at all.
    Raw(String),
    /// Never answers.
    Hang,
}

impl Answer {
    /// A card with these texts for any story.
    pub fn card(tldr: &str, takeaway: &str) -> Answer {
        Answer::Card {
            about: String::new(),
            tldr: tldr.into(),
            takeaway: takeaway.into(),
        }
    }
}

/// The stand-in: answers the scripted answers in order, the last one again
/// once they run out.
pub struct ScriptedModel {
    pub base: String,
    /// Card requests.
    pub requests: Arc<AtomicUsize>,
    /// Intro requests.
    pub intros: Arc<AtomicUsize>,
    /// The Authorization headers of the card requests that had one.
    pub authorizations: Arc<Mutex<Vec<String>>>,
    pub bodies: Arc<Mutex<Vec<Value>>>,
    script: Arc<Mutex<Vec<Answer>>>,
}

impl ScriptedModel {
    pub async fn start(script: Vec<Answer>) -> ScriptedModel {
        #[derive(Clone)]
        struct S {
            requests: Arc<AtomicUsize>,
            intros: Arc<AtomicUsize>,
            authorizations: Arc<Mutex<Vec<String>>>,
            bodies: Arc<Mutex<Vec<Value>>>,
            script: Arc<Mutex<Vec<Answer>>>,
        }
        async fn answer(State(s): State<S>, headers: axum::http::HeaderMap, body: Bytes) -> Response {
            if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
                s.authorizations.lock().expect("lock").push(auth.to_string());
            }
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            // Intros are counted apart, and answered in their own schema.
            if request["response_format"]["json_schema"]["name"] == "issue_intro" {
                s.intros.fetch_add(1, Ordering::SeqCst);
                let content = json!({"intro": "This week: one clinic's ransomware story, told from start to end."});
                return axum::Json(json!({
                    "choices": [{"message": {"content": content.to_string()}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 50, "completion_tokens": 20},
                }))
                .into_response();
            }
            let n = s.requests.fetch_add(1, Ordering::SeqCst);
            s.bodies.lock().expect("lock").push(request.clone());
            let next = {
                let script = s.script.lock().expect("lock");
                script.get(n).or(script.last()).cloned().unwrap_or(Answer::Hang)
            };
            let content = match next {
                Answer::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return StatusCode::GATEWAY_TIMEOUT.into_response();
                }
                Answer::Status(code, body) => {
                    return (
                        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        body,
                    )
                        .into_response();
                }
                Answer::Raw(body) => return (StatusCode::OK, body).into_response(),
                Answer::Content(c) => c,
                Answer::Card { about, tldr, takeaway } => {
                    let user = request["messages"][1]["content"].as_str().unwrap_or_default();
                    if about.is_empty() || user.contains(&about) {
                        card_for(&request, &tldr, &takeaway)
                    } else {
                        card_for(&request, GENERIC_TLDR, "The story is still developing.")
                    }
                }
            };
            let envelope = json!({
                "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 40},
            });
            axum::Json(envelope).into_response()
        }
        let requests = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let intros = Arc::new(AtomicUsize::new(0));
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let state = S {
            authorizations: Arc::clone(&authorizations),
            intros: Arc::clone(&intros),
            requests: Arc::clone(&requests),
            bodies: Arc::clone(&bodies),
            script: Arc::clone(&script),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(state);
        let base = serve(app).await;
        ScriptedModel {
            base,
            requests,
            authorizations,
            intros,
            bodies,
            script,
        }
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Answers from now on with `script` (counted from the next request).
    pub fn set_script(&self, script: Vec<Answer>) {
        let done = self.count();
        let mut s = self.script.lock().expect("lock");
        *s = std::iter::repeat_n(Answer::Hang, done).chain(script).collect();
    }
}

/// The TL;DR of the cards for stories a script did not name.
pub const GENERIC_TLDR: &str = "Harbour reports a new security incident this week.";

/// A card answering `request`'s schema: every audience it asks for.
fn card_for(request: &Value, tldr: &str, takeaway: &str) -> String {
    let schema = &request["response_format"]["json_schema"]["schema"];
    let mut why = serde_json::Map::new();
    for a in schema["properties"]["why_it_matters"]["required"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(name) = a.as_str() {
            why.insert(
                name.to_string(),
                json!("Teams that run remote access gateways face the same kind of attack."),
            );
        }
    }
    json!({
        "tldr": tldr,
        "what_changed": "The attackers published the stolen records on their leak site.",
        "why_it_matters": why,
        "what_to_do_next": "Check that every remote access gateway asks for a second factor.",
        "takeaways": [{"text": takeaway, "sources": [1]}],
    })
    .to_string()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}
