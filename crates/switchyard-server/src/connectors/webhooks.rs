//! Webhooks to connectors: a verified event of a source linked to a connection goes to that
//! connection's connector, whose webhook rules name the streams to sync now.
//!
//! The connector sees the gateway's event type without its provider namespace
//! (`github.member.added` → `member.added`), which is what its manifest's `event_type` parts
//! join to, and the payload as `data`. A manifest that declares `routing` has the payload
//! checked against the linked connection's config (an event of another GitHub installation
//! sent to this source is not this connection's): a mismatch is logged and left alone.

use async_trait::async_trait;
use serde_json::Value;
use switchyard_connectors::{CallContext, ConnectorError, WebhookEvent};
use switchyard_core::ConnectionId;
use switchyard_inbound::events::InboundEvent;
use switchyard_inbound::process::EventSink;
use switchyard_jobs::runs::{RunStore, RunTrigger};
use switchyard_store::Database;

use super::ConnectorService;
use super::sync_job::enqueue_sync;

pub struct ConnectorWebhooks {
    pub service: ConnectorService,
    pub database: Database,
    pub runs: RunStore,
}

/// The event type as the connector names it.
fn local_type(event_type: &str) -> &str {
    event_type
        .split_once('.')
        .map_or(event_type, |(_, rest)| rest)
}

#[async_trait]
impl EventSink for ConnectorWebhooks {
    async fn accept(
        &self,
        event: &InboundEvent,
        linked_connection: Option<&str>,
        canonical: &Value,
    ) -> Result<(), String> {
        let Some(linked) = linked_connection else {
            return Ok(());
        };
        let Ok(id) = linked.parse::<ConnectionId>() else {
            // A source may name a connection of another system; nothing to do here.
            return Ok(());
        };
        let connection = match self.service.connections.get(&event.tenant_id, &id).await {
            Ok(Some(connection)) => connection,
            Ok(None) => return Ok(()),
            Err(error) => return Err(format!("connection store: {}", error.code())),
        };
        let Some(connector) = self.service.catalogue.connector(&connection.provider) else {
            return Ok(());
        };
        let data = canonical.get("data").cloned().unwrap_or(Value::Null);
        if let Some(manifest) = self
            .service
            .catalogue
            .registry()
            .manifest(&connection.provider)
            && let Some(routing) = manifest.webhooks.as_ref().and_then(|w| w.routing.as_ref())
            && !routes_to(routing, &data, &connection.config)
        {
            tracing::info!(inbound_event = %event.id, connection = %id, "webhook is for another account than the linked connection; not routed");
            return Ok(());
        }
        let webhook = WebhookEvent {
            event_type: canonical
                .get("type")
                .and_then(Value::as_str)
                .map(|t| local_type(t).to_owned()),
            body: data,
        };
        let context = ConnectorService::context(&connection);
        let outcome = match connector
            .handle_webhook(
                CallContext {
                    calls: self.service.calls(),
                    connection: &context,
                },
                &webhook,
            )
            .await
        {
            Ok(outcome) => outcome,
            Err(ConnectorError::Unsupported { .. }) => return Ok(()),
            Err(error) => return Err(format!("connector webhook handler: {}", error.code())),
        };
        for stream in &outcome.sync {
            // One sync per event and stream: the event's id makes a re-processed event the
            // same sync, and the stream's lease runs them one after another.
            enqueue_sync(
                &self.database,
                &self.runs,
                event.tenant_id,
                id,
                stream,
                RunTrigger::Webhook,
                Some(format!("webhook-sync:{}:{stream}", event.id)),
            )
            .await
            .map_err(|_| "could not enqueue a webhook's sync".to_owned())?;
        }
        Ok(())
    }
}

/// Whether the payload's routing value is the connection's.
/// Whether an event concerns the connection: judged by the first routing rule whose config
/// field the connection has set; a connection with none of them set is not the one.
fn routes_to(
    routing: &switchyard_connectors::manifest::Routing,
    data: &Value,
    config: &Value,
) -> bool {
    use switchyard_connectors::manifest::ValueSource;
    let text = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let Some((rule, expected)) = routing
        .rules()
        .iter()
        .find_map(|rule| Some((rule, config.get(&rule.config_field).and_then(text)?)))
    else {
        return false;
    };
    let ValueSource::Body { path } = &rule.source else {
        // Headers are not kept with the canonical event: nothing to check against.
        return true;
    };
    let Ok(path) = serde_json_path::JsonPath::parse(path) else {
        return false;
    };
    let found = path.query(data).all().into_iter().next().and_then(text);
    found.is_some_and(|found| found == expected)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_connectors::manifest::Routing;

    use super::{local_type, routes_to};

    #[test]
    fn the_first_rule_the_connection_has_a_value_for_decides() {
        let routing: Routing = serde_json::from_value(json!([
            {"source": {"path": "$.installation.id"}, "config_field": "installation_id"},
            {"source": {"path": "$.organization.login"}, "config_field": "organization"},
        ]))
        .unwrap();
        let app = json!({"organization": "acme", "installation_id": "42"});
        let token = json!({"organization": "acme"});
        let from_app = json!({"installation": {"id": 42}, "organization": {"login": "acme"}});
        let from_org = json!({"organization": {"login": "acme"}});
        let other_app = json!({"installation": {"id": 7}, "organization": {"login": "acme"}});
        assert!(routes_to(&routing, &from_app, &app));
        assert!(!routes_to(&routing, &other_app, &app));
        // An App connection is judged by its installation, even for its own organization.
        assert!(!routes_to(&routing, &from_org, &app));
        assert!(routes_to(&routing, &from_org, &token));
        assert!(routes_to(&routing, &from_app, &token));
        assert!(!routes_to(
            &routing,
            &json!({"organization": {"login": "other"}}),
            &token
        ));
        assert!(!routes_to(&routing, &from_org, &json!({})));
    }

    #[test]
    fn the_provider_namespace_goes() {
        assert_eq!(local_type("github.member.added"), "member.added");
        assert_eq!(local_type("ping"), "ping");
    }
}
