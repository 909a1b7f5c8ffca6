//! `POST /hooks/{ses,postmark,sendgrid,mailgun}`: provider webhooks. A
//! request that its provider did not sign gets 401 and changes nothing;
//! each event it carries goes through the inbound processor, keyed by the
//! provider's event id, so a retried request is recorded once.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::WebState;
use crate::app::App;
use crate::inbound::Processor;
use crate::inbound::sns::SnsMessage;
use crate::inbound::webhooks::{self, Provider, ProviderEvent, WebhookError, read};

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
    let events = match kind {
        Provider::Ses => ses(&state, &app, &body).await,
        _ => read(kind, &app.config.inbound.webhooks, &header, &body),
    };
    let events = match events {
        Ok(events) => events,
        Err(e) => return refusal(&provider, e),
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

fn refusal(provider: &str, e: WebhookError) -> Response {
    tracing::warn!(provider, "webhook refused: {e}");
    let status = match e {
        WebhookError::Unsigned(_) | WebhookError::NotConfigured(_) => {
            metrics::counter!("tidings_webhook_refused_total", "provider" => provider.to_string()).increment(1);
            StatusCode::UNAUTHORIZED
        }
        WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
        WebhookError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, format!("{e}\n")).into_response()
}

/// An SNS message: signed by SNS, from one of our topics; a subscription
/// to such a topic is confirmed, a notification read as SES's.
async fn ses(state: &WebState, app: &App, body: &[u8]) -> Result<Vec<ProviderEvent>, WebhookError> {
    let message = SnsMessage::parse(body)?;
    let Some(certificates) = &state.sns else {
        return Err(WebhookError::Unavailable("no HTTPS client for SNS certificates".into()));
    };
    certificates.verify(&message).await?;
    let webhooks = &app.config.inbound.webhooks;
    if !webhooks.ses_topic_arns.contains(&message.topic_arn) {
        return Err(WebhookError::Unsigned(format!(
            "topic {} is not one of inbound.webhooks.ses_topic_arns",
            message.topic_arn
        )));
    }
    match message.kind.as_str() {
        "Notification" => webhooks::ses(
            &message.message_id,
            &message.message,
            app.config.delivery.return_path.as_ref(),
        ),
        "SubscriptionConfirmation" => {
            certificates.confirm_subscription(&message).await?;
            tracing::info!(topic = message.topic_arn, "SNS subscription confirmed");
            Ok(Vec::new())
        }
        _ => Ok(Vec::new()),
    }
}
