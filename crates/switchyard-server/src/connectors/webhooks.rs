//! Webhooks to connectors: a verified event of a source linked to a connection goes to that
//! connection's connector, whose webhook rules say what it does: sync streams, store or
//! delete the records the payload carries, emit outbound events.
//!
//! The connector gets the payload (`data`), the request headers and the gateway's event type
//! without its provider namespace (`github.member.added` → `member.added`); a manifest names
//! the event by its own `event_type` parts. A manifest that declares `routing` has the
//! delivery checked against the linked connection's config (an event of another GitHub
//! installation sent to this source is not this connection's): a mismatch is logged and left
//! alone.
//!
//! Records are written as a sync page writes them (keyed, content-hashed, unchanged ones not
//! rewritten, `added`/`updated`/`deleted` changes) without the stream's sync lease: the
//! stream's row lock orders them with a running sync's pages, and their stamp keeps a full
//! read under way from sweeping them (see `PageWrite::seen_by`). They commit in one
//! transaction with what they announce: `{provider}.{stream}.changed` for each stream they
//! changed and the rules' emitted events. Every event id derives from the connection, the
//! delivery id and the event, so a redelivery or a re-processed event publishes nothing twice.

use async_trait::async_trait;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_connectors::store::{PageWrite, RecordUpsert};
use switchyard_connectors::{CallContext, ConnectorError, WebhookEvent, WebhookOutcome};
use switchyard_core::{ConnectionId, RunId};
use switchyard_inbound::events::InboundEvent;
use switchyard_inbound::process::EventSink;
use switchyard_jobs::runs::{RunStore, RunTrigger};
use switchyard_outbound::{NewEvent, OutboundError};
use switchyard_store::Database;
use switchyard_vault::AuditedVault;

use super::ConnectorService;
use super::sync_job::enqueue_sync;

pub struct ConnectorWebhooks {
    pub service: ConnectorService,
    pub database: Database,
    pub runs: RunStore,
    /// Seals the events webhooks publish.
    pub vault: AuditedVault,
}

/// The event type as the connector names it.
fn local_type(event_type: &str) -> &str {
    event_type
        .split_once('.')
        .map_or(event_type, |(_, rest)| rest)
}

/// The request headers a connector may read, names in lower case.
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// An outbound event id for `what` of one delivery to one connection: the same delivery
/// always gives the same id, which publishing deduplicates.
fn derived_id(connection: &ConnectionId, delivery_id: &str, what: &str) -> String {
    let digest = Sha256::digest(format!("{connection}\n{delivery_id}\n{what}").as_bytes());
    format!("webhook_{}", hex::encode(&digest[..16]))
}

#[async_trait]
impl EventSink for ConnectorWebhooks {
    async fn accept(
        &self,
        event: &InboundEvent,
        linked_connection: Option<&str>,
        canonical: &Value,
        headers: &HeaderMap,
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
        let webhook = WebhookEvent {
            event_type: canonical
                .get("type")
                .and_then(Value::as_str)
                .map(|t| local_type(t).to_owned()),
            headers: header_pairs(headers),
            body: canonical.get("data").cloned().unwrap_or(Value::Null),
        };
        if let Some(manifest) = self
            .service
            .catalogue
            .registry()
            .manifest(&connection.provider)
            && let Some(routing) = manifest.webhooks.as_ref().and_then(|w| w.routing.as_ref())
            && !routes_to(routing, &webhook, &connection.config)
        {
            tracing::info!(inbound_event = %event.id, connection = %id, "webhook is for another account than the linked connection; not routed");
            return Ok(());
        }
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
        if outcome.acknowledged_only {
            return Ok(());
        }
        for refused in &outcome.refused {
            metrics::counter!("switchyard_webhook_records_refused_total").increment(1);
            tracing::warn!(
                inbound_event = %event.id,
                connection = %id,
                stream = %refused.stream,
                primary_key = refused.primary_key.as_deref().unwrap_or("(none)"),
                problems = %refused.problems.join("; "),
                "a webhook's record was refused; the stream is synced instead"
            );
        }
        self.store_and_announce(event, &connection.provider, id, &outcome)
            .await?;
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

impl ConnectorWebhooks {
    /// Writes the outcome's records and publishes what they changed and the emitted events,
    /// all in one transaction.
    async fn store_and_announce(
        &self,
        event: &InboundEvent,
        provider: &str,
        connection: ConnectionId,
        outcome: &WebhookOutcome,
    ) -> Result<(), String> {
        if outcome.records.is_empty() && outcome.emit.is_empty() {
            return Ok(());
        }
        let tenant = event.tenant_id;
        // Load the tenant's data key before the transaction: publishing seals with it, and
        // creating it inside would, on SQLite, wait on this transaction's own write lock.
        self.vault
            .encrypt_blob(tenant, b"connector_webhook", b"")
            .await
            .map_err(|e| format!("vault: {e}"))?;
        // Newer than any read under way, so a running full read does not sweep these records.
        let stamp = RunId::generate();
        let pages: Vec<PageWrite<'_>> = outcome
            .records
            .iter()
            .map(|records| PageWrite {
                tenant: &tenant,
                connection: &connection,
                stream: &records.stream,
                run: None,
                seen_by: Some(&stamp),
                upserts: records
                    .upserts
                    .iter()
                    .map(|r| RecordUpsert {
                        primary_key: r.primary_key.clone(),
                        data: r.data.clone(),
                    })
                    .collect(),
                deletions: records.deletions.clone(),
                seen: Vec::new(),
                checkpoint: None,
            })
            .collect();
        let store = &self.service.records;
        let mut tx = self.database.begin().await.map_err(|e| e.to_string())?;
        let counts = store
            .write_pages_in(&mut tx, pages)
            .await
            .map_err(|e| format!("record store: {}", e.code()))?;
        let mut announcements = Vec::new();
        for (records, counts) in outcome.records.iter().zip(counts) {
            if counts.changes() == 0 {
                continue;
            }
            let cursor = store
                .last_seq_in(&mut tx, &tenant, &connection, &records.stream)
                .await
                .map_err(|e| format!("record store: {}", e.code()))?;
            let data = json!({
                "connection_id": connection.to_string(),
                "stream": records.stream,
                "run_id": null,
                "inbound_event_id": event.id.to_string(),
                "added": counts.added,
                "updated": counts.updated,
                "deleted": counts.deleted,
                "cursor": crate::routes::records::cursor_after(cursor),
            });
            let what = format!("changed:{}", records.stream);
            announcements.push(
                NewEvent::new(format!("{provider}.{}.changed", records.stream), data)
                    .id(derived_id(&connection, &event.delivery_id, &what)),
            );
        }
        for (i, emitted) in outcome.emit.iter().enumerate() {
            let data = json!({
                "connection_id": connection.to_string(),
                "inbound_event_id": event.id.to_string(),
                "data": emitted.data,
            });
            let what = format!("emit:{i}:{}", emitted.event_type);
            announcements.push(
                NewEvent::new(emitted.event_type.clone(), data).id(derived_id(
                    &connection,
                    &event.delivery_id,
                    &what,
                )),
            );
        }
        for announcement in announcements {
            let event_type = announcement.event_type.clone();
            match switchyard_outbound::publish_in(&mut tx, &self.vault, tenant, announcement).await
            {
                Ok(_) => {}
                // A type that is not a valid outbound type cannot be subscribed to; the
                // records still stand.
                Err(OutboundError::Invalid { field, reason }) => {
                    tracing::warn!(inbound_event = %event.id, event_type, field, reason, "a webhook's event was not published");
                }
                Err(error) => {
                    return Err(format!("publishing a webhook's event: {}", error.code()));
                }
            }
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Whether an event concerns the connection: judged by the first routing rule whose config
/// field the connection has set; a connection with none of them set is not the one.
fn routes_to(
    routing: &switchyard_connectors::manifest::Routing,
    event: &WebhookEvent,
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
    let found = match &rule.source {
        ValueSource::Header { header, .. } => event.header(header).map(str::to_owned),
        ValueSource::Body { path, .. } => {
            let Ok(path) = serde_json_path::JsonPath::parse(path) else {
                return false;
            };
            path.query(&event.body)
                .all()
                .into_iter()
                .next()
                .and_then(text)
        }
    };
    let found = match (found, rule.source.strip_prefix()) {
        (Some(found), Some(prefix)) => {
            Some(found.strip_prefix(prefix).unwrap_or(&found).to_owned())
        }
        (found, _) => found,
    };
    found.is_some_and(|found| found == expected)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_connectors::manifest::Routing;

    use switchyard_connectors::WebhookEvent;

    use super::{local_type, routes_to};

    fn body(body: serde_json::Value) -> WebhookEvent {
        WebhookEvent {
            body,
            ..WebhookEvent::default()
        }
    }

    #[test]
    fn the_first_rule_the_connection_has_a_value_for_decides() {
        let routing: Routing = serde_json::from_value(json!([
            {"source": {"path": "$.installation.id"}, "config_field": "installation_id"},
            {"source": {"path": "$.organization.login"}, "config_field": "organization"},
        ]))
        .unwrap();
        let app = json!({"organization": "acme", "installation_id": "42"});
        let token = json!({"organization": "acme"});
        let from_app = body(json!({"installation": {"id": 42}, "organization": {"login": "acme"}}));
        let from_org = body(json!({"organization": {"login": "acme"}}));
        let other_app = body(json!({"installation": {"id": 7}, "organization": {"login": "acme"}}));
        assert!(routes_to(&routing, &from_app, &app));
        assert!(!routes_to(&routing, &other_app, &app));
        // An App connection is judged by its installation, even for its own organization.
        assert!(!routes_to(&routing, &from_org, &app));
        assert!(routes_to(&routing, &from_org, &token));
        assert!(routes_to(&routing, &from_app, &token));
        assert!(!routes_to(
            &routing,
            &body(json!({"organization": {"login": "other"}})),
            &token
        ));
        assert!(!routes_to(&routing, &from_org, &json!({})));
    }

    #[test]
    fn a_header_can_route() {
        let routing: Routing = serde_json::from_value(
            json!({"source": {"header": "X-Account"}, "config_field": "account"}),
        )
        .unwrap();
        let mut event = body(json!({}));
        event.headers = vec![("x-account".into(), "7".into())];
        assert!(routes_to(&routing, &event, &json!({"account": "7"})));
        assert!(!routes_to(&routing, &event, &json!({"account": "8"})));
        assert!(!routes_to(
            &routing,
            &body(json!({})),
            &json!({"account": "7"})
        ));
    }

    #[test]
    fn event_ids_derive_from_the_delivery() {
        let connection = switchyard_core::ConnectionId::generate();
        let id = super::derived_id(&connection, "Ev1", "emit:0:slack.user.updated");
        assert_eq!(
            id,
            super::derived_id(&connection, "Ev1", "emit:0:slack.user.updated")
        );
        assert_ne!(
            id,
            super::derived_id(&connection, "Ev2", "emit:0:slack.user.updated")
        );
        assert_ne!(id, super::derived_id(&connection, "Ev1", "changed:users"));
        let other = switchyard_core::ConnectionId::generate();
        assert_ne!(
            id,
            super::derived_id(&other, "Ev1", "emit:0:slack.user.updated")
        );
    }

    #[test]
    fn the_provider_namespace_goes() {
        assert_eq!(local_type("github.member.added"), "member.added");
        assert_eq!(local_type("ping"), "ping");
    }
}
