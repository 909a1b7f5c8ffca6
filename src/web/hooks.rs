//! `POST /hooks/{postmark,sendgrid,mailgun}`: provider webhooks (SES: see
//! README, "What comes back"). A
//! request that its provider did not sign gets 401 and changes nothing;
//! each event it carries goes through the inbound processor, keyed by the
//! provider's event id, so a retried request is recorded once.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::WebState;
use crate::inbound::Processor;
use crate::inbound::webhooks::{Provider, WebhookError, read};

pub(super) async fn hook(
    State(state): State<WebState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app = state.app();
    let Some(kind) = Provider::parse(&provider).filter(|p| p.configured(&app.config.inbound.webhooks)) else {
        return (StatusCode::NOT_FOUND, "no such webhook\n").into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let events = match read(kind, &app.config.inbound.webhooks, &header, &body) {
        Ok(events) => events,
        Err(e @ (WebhookError::Unsigned(_) | WebhookError::NotConfigured(_))) => {
            tracing::warn!(provider, "webhook refused: {e}");
            metrics::counter!("tidings_webhook_refused_total", "provider" => provider.clone()).increment(1);
            return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response();
        }
        Err(e @ WebhookError::Malformed(_)) => {
            tracing::warn!(provider, "webhook refused: {e}");
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
    };
    let signer = match app.signer().await {
        Ok(s) => s,
        Err(e) => return super::server_error(&app, "webhook", e),
    };
    let processor = Processor::new(
        app.store.clone(),
        signer,
        &app.config,
        std::sync::Arc::clone(app.clock()),
    );
    for event in &events {
        // A failure here is answered 500: the provider sends the request
        // again, and what was recorded before is recognised by its key.
        if let Err(e) = processor
            .reading(event.reading.clone(), &event.key, kind.channel(), None)
            .await
        {
            return super::server_error(&app, "webhook", e);
        }
    }
    (StatusCode::OK, format!("{} events\n", events.len())).into_response()
}
