//! The daemon's HTTP side: `GET /healthz` (the process runs and the database
//! answers) and `GET /metrics` (Prometheus text). The editor and subscriber
//! pages build on this router.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::store::Store;

#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    pub metrics: Option<Arc<PrometheusHandle>>,
}

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(State(state): State<WebState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database unavailable: {e}\n")).into_response(),
    }
}

async fn metrics(State(state): State<WebState>) -> Response {
    match &state.metrics {
        Some(handle) => {
            handle.run_upkeep();
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are off\n").into_response(),
    }
}

/// Installs the process-wide Prometheus recorder (once).
pub fn install_metrics() -> Option<Arc<PrometheusHandle>> {
    static HANDLE: std::sync::OnceLock<Option<Arc<PrometheusHandle>>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| tracing::warn!("metrics disabled: {e}"))
                .ok()
                .map(Arc::new)
        })
        .clone()
}
