//! The `inbound.process` job: a stored delivery becomes a canonical event (CloudEvents 1.0
//! JSON) handed to the event sinks (the outbound fan-out, the linked connection's handler).
//!
//! Processing is idempotent: an event already processed is left alone, so a job re-run after
//! a lost lease, or a replay, does no harm beyond handing the event on again.

use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;
use switchyard_core::{InboundEventId, TenantId};
use switchyard_jobs::{
    queue::{FailureClass, Job, JobError},
    worker::JobHandler,
};
use switchyard_webhooks::InboundRequest;
use url::Url;

use crate::{
    InboundError,
    envelope::StoredRequest,
    events::{InboundEvent, InboundEvents, InboundStatus},
    sources::SourceStore,
};

/// Where canonical events go once built.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Takes one event; an error fails the job attempt (it is retried). `headers` are the
    /// delivery's request headers (a connector's manifest may name events by them).
    async fn accept(
        &self,
        event: &InboundEvent,
        linked_connection: Option<&str>,
        canonical: &Value,
        headers: &HeaderMap,
    ) -> Result<(), String>;
}

/// Runs `inbound.process` jobs.
pub struct ProcessInbound {
    events: InboundEvents,
    sources: SourceStore,
    sinks: Vec<Arc<dyn EventSink>>,
}

impl ProcessInbound {
    pub fn new(
        events: InboundEvents,
        sources: SourceStore,
        sinks: Vec<Arc<dyn EventSink>>,
    ) -> Self {
        Self {
            events,
            sources,
            sinks,
        }
    }

    async fn process(&self, tenant: TenantId, id: InboundEventId) -> Result<(), JobError> {
        let event = self
            .events
            .get(tenant, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| JobError::new(FailureClass::InvalidResponse, "inbound event is gone"))?;
        if event.status != InboundStatus::Received {
            return Ok(());
        }
        let Some(source) = self
            .sources
            .get(tenant, event.source_id)
            .await
            .map_err(internal)?
        else {
            let reason = "its source was deleted before it was processed";
            self.events
                .finish(&event, InboundStatus::Failed, None, None, Some(reason))
                .await
                .map_err(internal)?;
            return Ok(());
        };
        let config = source.config().map_err(internal)?;
        let stored = self.events.request(&event).await.map_err(internal)?;
        let parts = RequestParts::from_stored(&stored).map_err(internal)?;
        let request = parts.request(&stored);
        let canonical = switchyard_webhooks::canonical_event(
            &config,
            &request,
            &format!("/sources/{}", source.id),
        );
        for sink in &self.sinks {
            sink.accept(
                &event,
                source.connection_id.as_deref(),
                &canonical,
                request.headers,
            )
            .await
            .map_err(|error| JobError::new(FailureClass::Internal, error))?;
        }
        let event_type = canonical.get("type").and_then(Value::as_str);
        let subject = canonical.get("subject").and_then(Value::as_str);
        self.events
            .finish(&event, InboundStatus::Processed, event_type, subject, None)
            .await
            .map_err(internal)?;
        metrics::counter!("switchyard_inbound_processed_total").increment(1);
        Ok(())
    }
}

#[async_trait]
impl JobHandler for ProcessInbound {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    JobError::new(
                        FailureClass::InvalidResponse,
                        format!("payload without `{name}`"),
                    )
                })
        };
        let tenant: TenantId = field("tenant")?
            .parse()
            .map_err(|e| JobError::new(FailureClass::InvalidResponse, format!("tenant: {e}")))?;
        let id: InboundEventId = field("event_id")?
            .parse()
            .map_err(|e| JobError::new(FailureClass::InvalidResponse, format!("event id: {e}")))?;
        self.process(tenant, id).await
    }
}

fn internal(error: InboundError) -> JobError {
    JobError::internal(error.to_string())
}

/// The typed parts of a stored request, so an [`InboundRequest`] can borrow them.
pub struct RequestParts {
    method: Method,
    url: Url,
    headers: HeaderMap,
}

impl RequestParts {
    /// # Errors
    /// When the stored method, URL or a header does not parse (the store is corrupt).
    pub fn from_stored(stored: &StoredRequest) -> Result<Self, InboundError> {
        let method = Method::from_bytes(stored.method.as_bytes()).map_err(InboundError::corrupt)?;
        let url = Url::parse(&stored.url).map_err(InboundError::corrupt)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &stored.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).map_err(InboundError::corrupt)?,
                HeaderValue::from_bytes(value).map_err(InboundError::corrupt)?,
            );
        }
        Ok(Self {
            method,
            url,
            headers,
        })
    }

    pub fn request<'a>(&'a self, stored: &'a StoredRequest) -> InboundRequest<'a> {
        InboundRequest {
            method: &self.method,
            url: &self.url,
            headers: &self.headers,
            body: &stored.body,
            received_at: stored.received_at,
        }
    }
}
