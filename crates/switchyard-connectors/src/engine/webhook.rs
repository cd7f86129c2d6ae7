//! What a manifest's `webhooks` make of a verified delivery: its event name (from the
//! manifest's own `event_type` parts), the streams to sync, the records to store or delete
//! and the events to emit.
//!
//! Records are checked here, where the stream's key and schema are known: a record without a
//! primary key, or not valid against the stream's `schema`, is refused (reported with JSON
//! pointers and schema keywords, never its values) and its stream is synced instead, so the
//! store still catches up with the provider. The delivery's other records and events go on.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use serde_json_path::JsonPath;

use super::compile::CompiledStream;
use super::select;
use crate::connector::{
    ConnectorError, EmittedEvent, Record, RefusedRecord, WebhookEvent, WebhookOutcome,
    WebhookRecords,
};
use crate::manifest::{EmitRule, RecordsRule, StreamSpec, ValueSource, WebhookSpec};
use crate::template;

/// A manifest's webhook rules with their paths parsed and record schemas compiled once.
pub(super) struct CompiledWebhooks {
    event_type: Vec<Part>,
    listed: Option<JsonPath>,
    rules: Vec<EventRule>,
    /// The `schema` of each stream a rule stores records into.
    schemas: BTreeMap<String, jsonschema::Validator>,
}

/// One part of the event name.
struct Part {
    header: Option<String>,
    path: Option<JsonPath>,
    strip_prefix: Option<String>,
}

struct EventRule {
    /// An event type, or a prefix ending in `*`.
    pattern: String,
    sync: Vec<String>,
    acknowledge_only: bool,
    upsert: Option<Target>,
    delete: Option<Target>,
    emit: Option<Emit>,
}

struct Target {
    stream: String,
    records: JsonPath,
}

struct Emit {
    event_type: String,
    data: Option<JsonPath>,
}

impl CompiledWebhooks {
    pub(super) fn new(spec: &WebhookSpec, streams: &[StreamSpec]) -> Result<Self, ConnectorError> {
        let event_type = spec
            .event_type
            .iter()
            .map(|source| {
                Ok(Part {
                    header: match source {
                        ValueSource::Header { header, .. } => Some(header.clone()),
                        ValueSource::Body { .. } => None,
                    },
                    path: match source {
                        ValueSource::Body { path, .. } => Some(select::path(path)?),
                        ValueSource::Header { .. } => None,
                    },
                    strip_prefix: source.strip_prefix().map(str::to_owned),
                })
            })
            .collect::<Result<_, ConnectorError>>()?;
        let listed = spec
            .event_types_path
            .as_deref()
            .map(select::path)
            .transpose()?;
        let target = |rule: &Option<RecordsRule>| {
            rule.as_ref()
                .map(|r| {
                    Ok::<_, ConnectorError>(Target {
                        stream: r.stream.clone(),
                        records: select::path(&r.records)?,
                    })
                })
                .transpose()
        };
        let emit = |rule: &Option<EmitRule>| {
            rule.as_ref()
                .map(|e| {
                    Ok::<_, ConnectorError>(Emit {
                        event_type: e.event_type.clone(),
                        data: e.data.as_deref().map(select::path).transpose()?,
                    })
                })
                .transpose()
        };
        let mut rules = Vec::with_capacity(spec.events.len());
        let mut schemas = BTreeMap::new();
        for rule in &spec.events {
            for stream in [&rule.upsert, &rule.delete].into_iter().flatten() {
                let schema = streams
                    .iter()
                    .find(|s| s.name == stream.stream)
                    .and_then(|s| s.schema.as_ref());
                if let Some(schema) = schema
                    && !schemas.contains_key(&stream.stream)
                {
                    let validator = jsonschema::validator_for(schema)
                        .map_err(|e| ConnectorError::InvalidConfig(vec![e.to_string()]))?;
                    schemas.insert(stream.stream.clone(), validator);
                }
            }
            rules.push(EventRule {
                pattern: rule.event_type.clone(),
                sync: rule.sync.clone(),
                acknowledge_only: rule.acknowledge_only,
                upsert: target(&rule.upsert)?,
                delete: target(&rule.delete)?,
                emit: emit(&rule.emit)?,
            });
        }
        Ok(Self {
            event_type,
            listed,
            rules,
            schemas,
        })
    }

    /// The event's name as the manifest defines it: its `event_type` parts joined with `.`.
    /// The first part names the event and later ones refine it (GitHub's `action`), left out
    /// when the delivery lacks them. A delivery without the first part (or a manifest without
    /// parts) keeps the gateway's type.
    pub(super) fn name(&self, event: &WebhookEvent) -> Option<String> {
        let mut parts = self.event_type.iter().map(|part| part.read(event));
        match parts.next() {
            Some(Some(first)) => Some(
                std::iter::once(first)
                    .chain(parts.flatten())
                    .collect::<Vec<_>>()
                    .join("."),
            ),
            _ => event.event_type.clone(),
        }
    }

    pub(super) fn handle(
        &self,
        streams: &BTreeMap<String, CompiledStream>,
        config: &Value,
        event: &WebhookEvent,
    ) -> Result<WebhookOutcome, ConnectorError> {
        let name = self.name(event);
        // The delivery's own type, and every type a batching provider lists in the body.
        let listed = match &self.listed {
            Some(path) => select::all(&event.body, path),
            None => Vec::new(),
        };
        let event_types: Vec<&str> = name
            .as_deref()
            .into_iter()
            .chain(listed.into_iter().filter_map(Value::as_str))
            .collect();
        let mut outcome = WebhookOutcome::default();
        for rule in &self.rules {
            if !event_types.iter().any(|t| rule.matches(t)) {
                continue;
            }
            outcome.acknowledged_only |= rule.acknowledge_only;
            for stream in &rule.sync {
                add_sync(&mut outcome, stream);
            }
            if let Some(target) = &rule.upsert {
                self.upsert(streams, target, &event.body, &mut outcome)?;
            }
            if let Some(target) = &rule.delete {
                delete(streams, target, &event.body, &mut outcome)?;
            }
            if let Some(emit) = &rule.emit {
                outcome
                    .emit
                    .extend(emit.render(name.as_deref(), config, &event.body)?);
            }
        }
        Ok(outcome)
    }

    fn upsert(
        &self,
        streams: &BTreeMap<String, CompiledStream>,
        target: &Target,
        body: &Value,
        outcome: &mut WebhookOutcome,
    ) -> Result<(), ConnectorError> {
        let stream = compiled(streams, &target.stream)?;
        let mut upserts = Vec::new();
        for record in select::all(body, &target.records) {
            let primary_key = match select::primary_key(record, &stream.primary_key) {
                Ok(key) => key,
                Err(error) => {
                    refuse(outcome, &target.stream, None, vec![error.to_string()]);
                    continue;
                }
            };
            if let Some(schema) = self.schemas.get(&target.stream) {
                let problems = violations(schema, record);
                if !problems.is_empty() {
                    refuse(outcome, &target.stream, Some(primary_key), problems);
                    continue;
                }
            }
            upserts.push(Record {
                primary_key,
                data: record.clone(),
            });
        }
        records_of(outcome, &target.stream).upserts.extend(upserts);
        Ok(())
    }
}

impl Part {
    fn read(&self, event: &WebhookEvent) -> Option<String> {
        let value = match (&self.header, &self.path) {
            (Some(name), _) => event.header(name).map(str::to_owned),
            (None, Some(path)) => select::first(&event.body, path).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
            (None, None) => None,
        }?;
        let value = match &self.strip_prefix {
            Some(prefix) => value.strip_prefix(prefix.as_str()).unwrap_or(&value),
            None => &value,
        }
        .trim();
        (!value.is_empty()).then(|| value.to_owned())
    }
}

impl EventRule {
    fn matches(&self, event_type: &str) -> bool {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => self.pattern == event_type,
        }
    }
}

impl Emit {
    /// The event, or nothing when `data` selects nothing in this payload.
    fn render(
        &self,
        name: Option<&str>,
        config: &Value,
        body: &Value,
    ) -> Result<Option<EmittedEvent>, ConnectorError> {
        let data = match &self.data {
            Some(path) => match select::first(body, path) {
                Some(data) => data.clone(),
                None => return Ok(None),
            },
            None => body.clone(),
        };
        let context = json!({"event": {"type": name}, "config": config});
        Ok(Some(EmittedEvent {
            event_type: template::render(&self.event_type, &context)?,
            data,
        }))
    }
}

fn compiled<'a>(
    streams: &'a BTreeMap<String, CompiledStream>,
    name: &str,
) -> Result<&'a CompiledStream, ConnectorError> {
    streams
        .get(name)
        .ok_or_else(|| ConnectorError::UnknownStream(name.to_owned()))
}

fn delete(
    streams: &BTreeMap<String, CompiledStream>,
    target: &Target,
    body: &Value,
    outcome: &mut WebhookOutcome,
) -> Result<(), ConnectorError> {
    let stream = compiled(streams, &target.stream)?;
    let mut keys = Vec::new();
    for record in select::all(body, &target.records) {
        match select::primary_key(record, &stream.primary_key) {
            Ok(key) => keys.push(key),
            Err(error) => refuse(outcome, &target.stream, None, vec![error.to_string()]),
        }
    }
    records_of(outcome, &target.stream).deletions.extend(keys);
    Ok(())
}

fn add_sync(outcome: &mut WebhookOutcome, stream: &str) {
    if !outcome.sync.iter().any(|s| s == stream) {
        outcome.sync.push(stream.to_owned());
    }
}

/// Notes a refused record; its stream is synced instead.
fn refuse(
    outcome: &mut WebhookOutcome,
    stream: &str,
    primary_key: Option<String>,
    problems: Vec<String>,
) {
    outcome.refused.push(RefusedRecord {
        stream: stream.to_owned(),
        primary_key,
        problems,
    });
    add_sync(outcome, stream);
}

/// The outcome's entry for `stream`, added when missing.
fn records_of<'a>(outcome: &'a mut WebhookOutcome, stream: &str) -> &'a mut WebhookRecords {
    let index = match outcome.records.iter().position(|r| r.stream == stream) {
        Some(index) => index,
        None => {
            outcome.records.push(WebhookRecords {
                stream: stream.to_owned(),
                ..WebhookRecords::default()
            });
            outcome.records.len() - 1
        }
    };
    &mut outcome.records[index]
}

/// Where and by which schema keyword a record breaks its schema (`/id: /properties/id/pattern`);
/// never the values, which the record store may hold but logs must not.
fn violations(validator: &jsonschema::Validator, record: &Value) -> Vec<String> {
    validator
        .iter_errors(record)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/" } else { &at };
            format!("{at}: breaks {}", e.schema_path())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::manifest::WebhookSpec;

    fn spec(yaml: &str) -> WebhookSpec {
        serde_norway::from_str(yaml).unwrap()
    }

    fn event(event_type: Option<&str>, headers: &[(&str, &str)], body: Value) -> WebhookEvent {
        WebhookEvent {
            event_type: event_type.map(str::to_owned),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        }
    }

    #[test]
    fn the_manifest_parts_name_the_event() {
        let github = CompiledWebhooks::new(
            &spec("{scheme: github, event_type: [{header: X-GitHub-Event}, {path: '$.action'}]}"),
            &[],
        )
        .unwrap();
        let added = event(
            Some("ignored"),
            &[("x-github-event", "member")],
            json!({"action": "added"}),
        );
        assert_eq!(github.name(&added).as_deref(), Some("member.added"));
        // A refinement the delivery lacks is left out.
        let ping = event(None, &[("X-GitHub-Event", "ping")], json!({"zen": "hi"}));
        assert_eq!(github.name(&ping).as_deref(), Some("ping"));
        // Without the first part, the gateway's type stands.
        let bare = event(Some("member.added"), &[], json!({"action": "added"}));
        assert_eq!(github.name(&bare).as_deref(), Some("member.added"));

        let jira = CompiledWebhooks::new(
            &spec("{scheme: jira, event_type: [{path: '$.webhookEvent', strip_prefix: 'jira:'}]}"),
            &[],
        )
        .unwrap();
        let updated = event(None, &[], json!({"webhookEvent": "jira:issue_updated"}));
        assert_eq!(jira.name(&updated).as_deref(), Some("issue_updated"));
        let user = event(None, &[], json!({"webhookEvent": "user_created"}));
        assert_eq!(jira.name(&user).as_deref(), Some("user_created"));
    }

    #[test]
    fn a_template_emit_type_reads_the_event_and_the_config() {
        let emit = Emit {
            event_type: "{{ config.prefix }}.{{ event.type }}".into(),
            data: Some(JsonPath::parse("$.event.user").unwrap()),
        };
        let config = json!({"prefix": "acme"});
        let body = json!({"event": {"user": {"id": "U1"}}});
        let emitted = emit
            .render(Some("user_change"), &config, &body)
            .unwrap()
            .unwrap();
        assert_eq!(emitted.event_type, "acme.user_change");
        assert_eq!(emitted.data, json!({"id": "U1"}));
        // Nothing at the data path: nothing to emit.
        assert!(
            emit.render(Some("x"), &config, &json!({}))
                .unwrap()
                .is_none()
        );
    }
}
