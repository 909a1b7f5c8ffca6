//! A real HTTP server on 127.0.0.1 serving the fixture feeds in
//! `tests/fixtures/feeds`, with ETag/304, chosen status codes and a count
//! of requests.
//!
//! Fixture files may hold date placeholders so their stories stay inside
//! the ranking window whenever the tests run: `%%RFC2822:-36h%%` and
//! `%%RFC3339:-2d%%` become that long before now.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Duration, DurationRound, Utc};

#[derive(Clone)]
struct Shared {
    dir: PathBuf,
    requests: Arc<AtomicUsize>,
    /// Fixed at start, so every fetch of a fixture gives the same bytes.
    now: DateTime<Utc>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    paced_order: Arc<std::sync::Mutex<Vec<u32>>>,
    /// The server's port, written where a fixture says `%%PORT%%`.
    port: u16,
}

pub struct FeedServer {
    pub base: String,
    pub requests: Arc<AtomicUsize>,
    /// Most `/paced/…` requests ever in flight at once.
    pub max_in_flight: Arc<AtomicUsize>,
    /// The `/paced/N` requests' N, in the order they arrived.
    pub paced_order: Arc<std::sync::Mutex<Vec<u32>>>,
}

impl FeedServer {
    pub async fn start() -> FeedServer {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/feeds");
        let requests = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let paced_order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let addr = listener.local_addr().expect("addr");
        let shared = Shared {
            port: addr.port(),
            paced_order: Arc::clone(&paced_order),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: Arc::clone(&max_in_flight),
            dir,
            requests: Arc::clone(&requests),
            now: Utc::now()
                .duration_trunc(Duration::seconds(1))
                .unwrap_or_else(|_| Utc::now()),
        };
        let app = Router::new()
            .route("/feeds/{file}", get(feed))
            .route("/feeds/{dir}/{file}", get(feed_in_dir))
            .route("/robots.txt", get(robots))
            .route("/status/{code}", get(status))
            .route("/hostile/slow-body", get(slow_body))
            .route("/hostile/slow-headers", get(slow_headers))
            .route("/hostile/loop-a", get(|| async { redirect(302, "/hostile/loop-b") }))
            .route("/hostile/loop-b", get(|| async { redirect(302, "/hostile/loop-a") }))
            .route("/hostile/chain/{n}", get(chain))
            .route(
                "/hostile/moved",
                get(|| async { redirect(301, "/hostile/moved-again") }),
            )
            .route(
                "/hostile/moved-again",
                get(|| async { redirect(308, "/feeds/gamma.json") }),
            )
            .route(
                "/hostile/temporary",
                get(|| async { redirect(302, "/feeds/gamma.json") }),
            )
            .route("/hostile/big", get(big_body))
            .route("/hostile/bomb", get(gzip_bomb))
            .route("/hostile/many", get(many_items))
            .route("/hostile/cached", get(cached))
            .route("/paced/{n}", get(paced))
            .route("/redirect", get(redirect_to))
            .with_state(shared);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FeedServer {
            base: format!("http://{addr}"),
            requests,
            max_in_flight,
            paced_order,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// `/status/429?retry_after=7200` answers that status (with Retry-After).
async fn status(
    State(s): State<Shared>,
    Path(code): Path<u16>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let mut resp = Response::builder().status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if let Some(after) = q.get("retry_after") {
        resp = resp.header(header::RETRY_AFTER, after.as_str());
    }
    resp.body(Body::from("fixture status")).unwrap_or_default()
}

fn redirect(code: u16, to: &str) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND))
        .header(header::LOCATION, to)
        .body(Body::empty())
        .unwrap_or_default()
}

/// `/redirect?to=URL` redirects anywhere (302).
async fn redirect_to(Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
    redirect(302, q.get("to").map(String::as_str).unwrap_or("/"))
}

/// `/hostile/chain/N` redirects N times before reaching a feed.
async fn chain(Path(n): Path<u32>) -> Response {
    if n == 0 {
        redirect(302, "/feeds/gamma.json")
    } else {
        redirect(302, &format!("/hostile/chain/{}", n - 1))
    }
}

/// Headers at once, then one byte every 200 ms for a minute.
async fn slow_body() -> Response {
    let stream = futures_util::stream::unfold(0u32, |i| async move {
        if i >= 300 {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b" ")), i + 1))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/rss+xml")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

async fn slow_headers() -> Response {
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    plain(StatusCode::OK, "too late")
}

/// 50 MiB, streamed without a Content-Length.
async fn big_body() -> Response {
    let chunk = bytes::Bytes::from(vec![b' '; 1024 * 1024]);
    let stream = futures_util::stream::iter((0..50).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/rss+xml")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

/// About 100 KiB on the wire that inflate to 100 MiB.
async fn gzip_bomb() -> Response {
    static BOMB: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let _ = gz.write_all(b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>");
        let zeros = vec![b'A'; 1024 * 1024];
        for _ in 0..100 {
            let _ = gz.write_all(&zeros);
        }
        gz.finish().unwrap_or_default()
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/rss+xml")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(BOMB.as_slice()))
        .unwrap_or_default()
}

/// An RSS feed with 100,000 items (about 7 MB, under the body limit).
async fn many_items() -> Response {
    let mut body = String::with_capacity(8 * 1024 * 1024);
    body.push_str("<rss version=\"2.0\"><channel><title>Many</title><link>https://many.example/</link>");
    for i in 0..100_000 {
        body.push_str(&format!(
            "<item><title>Item {i}</title><link>https://many.example/{i}</link></item>"
        ));
    }
    body.push_str("</channel></rss>");
    Response::builder()
        .header(header::CONTENT_TYPE, "application/rss+xml")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// A small feed answered after 300 ms, counting requests in flight.
async fn paced(State(s): State<Shared>, Path(n): Path<u32>) -> Response {
    if let Ok(mut order) = s.paced_order.lock() {
        order.push(n);
    }
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/rss+xml")
        .body(Body::from(format!(
            "<rss version=\"2.0\"><channel><title>Paced {n}</title><item><title>Paced item {n}</title><link>https://paced.example/{n}</link></item></channel></rss>"
        )))
        .unwrap_or_default()
}

/// A feed that asks to be cached for an hour.
async fn cached(State(s): State<Shared>) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/rss+xml")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(Body::from(
            "<rss version=\"2.0\"><channel><title>Cached</title><item><title>Cached item</title><link>https://cached.example/1</link></item></channel></rss>",
        ))
        .unwrap_or_default()
}

async fn feed_in_dir(
    State(s): State<Shared>,
    Path((dir, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if dir.contains("..") || dir.contains('/') {
        return plain(StatusCode::BAD_REQUEST, "bad name");
    }
    serve_fixture(s, &format!("{dir}/{file}"), &file, headers)
}

async fn robots(State(s): State<Shared>, headers: HeaderMap) -> Response {
    serve_fixture(s, "robots.txt", "robots.txt", headers)
}

async fn feed(State(s): State<Shared>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve_fixture(s, &file, &file, headers)
}

/// `path` (relative to the fixture folder) ending in the name `file`.
fn serve_fixture(s: Shared, path: &str, file: &str, headers: HeaderMap) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if file.contains("..") || file.contains('/') {
        return plain(StatusCode::BAD_REQUEST, "bad name");
    }
    let Ok(bytes) = std::fs::read(s.dir.join(path)) else {
        return plain(StatusCode::NOT_FOUND, "no such fixture");
    };
    let bytes = replace_bytes(&bytes, b"%%PORT%%", s.port.to_string().as_bytes());
    let bytes = fill_dates(&bytes, s.now);
    let etag = format!("\"{:x}-{}\"", simple_hash(&bytes), bytes.len());
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, &etag)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let content_type = if file.contains("latin1") {
        "application/rss+xml; charset=ISO-8859-1"
    } else if file.ends_with(".json") {
        "application/feed+json"
    } else if file.ends_with(".atom") {
        "application/atom+xml"
    } else if file.ends_with(".html") {
        "text/html; charset=utf-8"
    } else if file.ends_with(".png") {
        "image/png"
    } else if file.ends_with(".txt") {
        "text/plain"
    } else {
        "application/rss+xml"
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ETAG, etag)
        .body(Body::from(bytes))
        .unwrap_or_default()
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from(text))
        .unwrap_or_default()
}

fn simple_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Replaces `%%RFC2822:-36h%%` / `%%RFC3339:-2d%%` with dates relative to `now`.
pub fn fill_dates(bytes: &[u8], now: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(start) = find(rest, b"%%") {
        out.extend_from_slice(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = find(after, b"%%") else {
            out.extend_from_slice(&rest[start..]);
            return out;
        };
        let spec = String::from_utf8_lossy(&after[..end]).into_owned();
        let (kind, offset) = spec.split_once(':').unwrap_or(("", ""));
        let amount: i64 = offset.trim_end_matches(['h', 'd']).parse().unwrap_or(0);
        let delta = if offset.ends_with('d') {
            Duration::days(amount)
        } else {
            Duration::hours(amount)
        };
        let at = now + delta;
        let text = if kind == "RFC2822" {
            at.to_rfc2822()
        } else {
            at.to_rfc3339()
        };
        out.extend_from_slice(text.as_bytes());
        rest = &after[end + 2..];
    }
    out.extend_from_slice(rest);
    out
}

fn replace_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
