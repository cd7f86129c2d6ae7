//! The manifest engine: one generic [`Connector`] that does what a manifest declares.
//!
//! A stream is read one page per [`Connector::collect`] call. The checkpoint returned with
//! each page says exactly where the read is ([`checkpoint::Progress`]), so the caller saves
//! it with the page's records and a read killed at any point resumes at the next page.
//!
//! # Layout
//! - `mod.rs`: [`ManifestConnector`] and its [`Connector`] methods.
//! - `compile`: streams with their paths parsed once; the catalogue entry.
//! - `request`: a manifest request and a page position made an HTTP request.
//! - `paginate`, `link`: where the next page is.
//! - `progress`, `checkpoint`: where a read is, and what the next read starts from.
//! - `parent`: a partitioned stream's parent list, revalidated with ETags.
//! - `rules`: what error rules make of an answer.
//! - `select`: JSONPath reads of bodies and records; `scopes`: granted scopes.

mod checkpoint;
mod compile;
mod link;
mod paginate;
mod parent;
mod progress;
mod request;
mod rules;
mod scopes;
mod select;
mod webhook;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_http::{CallScope, ProviderPolicy, ProviderRequest, ProviderResponse};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

pub use checkpoint::{
    PageMemo, PageState, ParentListing, ParentPage, ParentSource, Progress, StreamCheckpoint,
};
use compile::{CompiledStream, compile, metadata};
use paginate::next_state;
use progress::{Contents, advance, finish, later, restarted, timestamp};
use rules::{Answer, CompiledRule, Verdict, excerpt};
use scopes::{covers, granted_scopes};

use crate::connector::{
    CallContext, CheckReport, Connector, ConnectorError, ConnectorMetadata, DEFAULT_CALL_DEADLINE,
    Page, Record, WebhookEvent, WebhookOutcome,
};
use crate::manifest::check::ScopeSource;
use crate::manifest::{
    EndpointClass, Incremental, Manifest, Pagination, PartitionSpec, StreamSpec,
};

/// Retries an `errors: [{action: retry}]` rule allows, on top of the call stack's own.
const RULE_RETRIES: u32 = 3;
/// The longest a rule's retry waits for a provider's `Retry-After`.
const RULE_RETRY_CAP: Duration = Duration::from_secs(30);

/// A manifest made runnable: paths parsed and schemas compiled once.
pub struct ManifestConnector {
    manifest: Manifest,
    policy: ProviderPolicy,
    metadata: ConnectorMetadata,
    config_validator: jsonschema::Validator,
    streams: BTreeMap<String, CompiledStream>,
    action_inputs: BTreeMap<String, jsonschema::Validator>,
    /// The manifest-wide error rules (the check's and the actions').
    errors: Vec<CompiledRule>,
    webhooks: Option<webhook::CompiledWebhooks>,
}

/// The endpoint class a call counts under, its key rendered for this call.
struct Endpoint<'a> {
    class: &'a str,
    key: Option<String>,
}

impl<'a> Endpoint<'a> {
    fn of(
        class: Option<&'a EndpointClass>,
        context: &Value,
    ) -> Result<Option<Self>, ConnectorError> {
        let Some(class) = class else {
            return Ok(None);
        };
        let key = class
            .key()
            .map(|template| crate::template::render(template, context))
            .transpose()?;
        Ok(Some(Self {
            class: class.name(),
            key,
        }))
    }
}

/// An answer the error rules let through.
struct Judged {
    response: ProviderResponse,
    /// An `ignore` rule matched it.
    ignored: bool,
    /// The JSON body, if a rule already parsed it.
    json: Option<Value>,
}

impl Judged {
    fn json(&mut self) -> Result<Value, ConnectorError> {
        match self.json.take() {
            Some(json) => Ok(json),
            None => json_body(&self.response),
        }
    }
}

impl std::fmt::Debug for ManifestConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestConnector")
            .field("id", &self.manifest.id)
            .finish_non_exhaustive()
    }
}

fn invalid(what: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::InvalidResponse(what.to_string())
}

impl ManifestConnector {
    /// Makes a loaded (hence checked) manifest runnable.
    pub fn new(manifest: Manifest) -> Result<Self, ConnectorError> {
        let policy = match &manifest.limits {
            Some(limits) => ProviderPolicy::from_manifest(limits)
                .map_err(|e| ConnectorError::InvalidConfig(vec![e.to_string()]))?,
            None => ProviderPolicy::default(),
        };
        let config_validator = jsonschema::validator_for(&manifest.config)
            .map_err(|e| ConnectorError::InvalidConfig(vec![e.to_string()]))?;
        let mut streams = BTreeMap::new();
        for stream in &manifest.streams {
            streams.insert(stream.name.clone(), compile(stream, &manifest.errors)?);
        }
        let mut action_inputs = BTreeMap::new();
        for action in &manifest.actions {
            let validator = jsonschema::validator_for(&action.input)
                .map_err(|e| ConnectorError::InvalidConfig(vec![e.to_string()]))?;
            action_inputs.insert(action.name.clone(), validator);
        }
        let metadata = metadata(&manifest);
        let errors = rules::compile(&manifest.errors)?;
        let webhooks = manifest
            .webhooks
            .as_ref()
            .map(|spec| webhook::CompiledWebhooks::new(spec, &manifest.streams))
            .transpose()?;
        Ok(Self {
            manifest,
            policy,
            metadata,
            config_validator,
            streams,
            action_inputs,
            errors,
            webhooks,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn policy(&self) -> &ProviderPolicy {
        &self.policy
    }

    fn stream(&self, name: &str) -> Result<(&StreamSpec, &CompiledStream), ConnectorError> {
        let spec = self
            .manifest
            .stream(name)
            .ok_or_else(|| ConnectorError::UnknownStream(name.to_owned()))?;
        let compiled = self
            .streams
            .get(name)
            .ok_or_else(|| ConnectorError::UnknownStream(name.to_owned()))?;
        Ok((spec, compiled))
    }

    fn base(&self, cx: CallContext<'_>) -> Result<Url, ConnectorError> {
        request::base_url(
            &self.manifest.base_url,
            cx.connection.base_url.as_deref(),
            &json!({"config": cx.connection.config}),
        )
    }

    /// Who a call is for: its rate budget, breaker and credential.
    fn scope(&self, cx: CallContext<'_>) -> CallScope {
        CallScope {
            tenant: cx.connection.tenant.to_string(),
            provider: self.manifest.id.clone(),
            connection: Some(cx.connection.connection.to_string()),
        }
    }

    async fn send(
        &self,
        cx: CallContext<'_>,
        built: request::Built,
        endpoint: Option<&Endpoint<'_>>,
        configure: impl FnOnce(ProviderRequest) -> ProviderRequest,
    ) -> Result<ProviderResponse, ConnectorError> {
        let mut call = ProviderRequest::new(self.scope(cx), built.request, built.route)
            .deadline_in(DEFAULT_CALL_DEADLINE);
        if let Some(endpoint) = endpoint {
            call = call.with_endpoint_class(endpoint.class);
            if let Some(key) = &endpoint.key {
                call = call.with_endpoint_key(key.as_str());
            }
        }
        Ok(cx.calls.call(&self.policy, configure(call)).await?)
    }

    /// Sends a request (`first`, then `make()` for each retry) and applies error rules:
    /// a `fail` rule, or a `retry` one out of retries, is the error; any other answer is
    /// returned, marked when an `ignore` rule matched it.
    async fn send_judged(
        &self,
        cx: CallContext<'_>,
        rules: &[CompiledRule],
        endpoint: Option<&Endpoint<'_>>,
        first: request::Built,
        make: impl Fn() -> Result<request::Built, ConnectorError>,
        configure: impl Fn(ProviderRequest) -> ProviderRequest,
    ) -> Result<Judged, ConnectorError> {
        let mut tries = 0;
        let mut built = first;
        loop {
            let response = self.send(cx, built, endpoint, &configure).await?;
            let mut answer = Answer::new(&response);
            let verdict = rules::judge(rules, &self.manifest.id, &mut answer);
            let json = answer.into_json();
            match verdict {
                Verdict::Unmatched | Verdict::Ignore => {
                    return Ok(Judged {
                        ignored: matches!(verdict, Verdict::Ignore),
                        response,
                        json,
                    });
                }
                Verdict::Retry { .. } if tries < RULE_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(retry_delay(&response, tries)).await;
                    built = make()?;
                }
                Verdict::Retry { failure } | Verdict::Fail(failure) => return Err(failure),
            }
        }
    }

    /// Starts a read: resolves partitions (revalidating the parent list `saved` kept), and
    /// chooses between following the delta link and listing everything.
    async fn start_read(
        &self,
        cx: CallContext<'_>,
        spec: &StreamSpec,
        saved: &mut StreamCheckpoint,
    ) -> Result<Progress, ConnectorError> {
        // The kept parent list moves into this read's progress, renewed; the read's end
        // keeps it again.
        let previous_parent = saved.parent.take();
        let mut parent = None;
        let partitions = match &spec.partitions {
            None => None,
            Some(PartitionSpec::Config { config, .. }) => {
                let path = config.strip_prefix("config.").unwrap_or(config);
                let list = path
                    .split('.')
                    .try_fold(&cx.connection.config, |value, key| value.get(key))
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        ConnectorError::InvalidConfig(vec![format!(
                            "`{config}` is not a list in the connection config"
                        )])
                    })?;
                Some(list.iter().map(|value| json!({"value": value})).collect())
            }
            Some(PartitionSpec::Stream { stream, value, .. }) => {
                let source = ParentSource {
                    stream: stream.clone(),
                    value: value.clone(),
                    record_fields: parent::record_fields(&self.manifest.headers, &spec.request),
                };
                let (values, listing) =
                    Box::pin(self.read_parent(cx, source, previous_parent)).await?;
                parent = listing;
                Some(values)
            }
        };
        let (page, delta) = match (&spec.incremental, &saved.delta_link) {
            (Incremental::DeltaToken { .. }, Some(link)) => {
                (PageState::Url { url: link.clone() }, true)
            }
            _ => (PageState::First, false),
        };
        Ok(Progress {
            read: switchyard_core::RunId::generate().to_string(),
            partitions,
            partition: 0,
            page,
            high_water: None,
            delta,
            pages: Vec::new(),
            parent,
        })
    }

    /// The partition values a parent stream gives, listed from the start, and its pages to
    /// keep for the next read (when it sent ETags). The pages `previous` kept are asked with
    /// `If-None-Match`: a `304` page gives the values it gave then, a changed one is read.
    async fn read_parent(
        &self,
        cx: CallContext<'_>,
        source: ParentSource,
        previous: Option<ParentListing>,
    ) -> Result<(Vec<Value>, Option<ParentListing>), ConnectorError> {
        let value_path = select::path(&source.value)?;
        let known = parent::Known::new(previous, &source);
        let mut listing = parent::Listing::new(source);
        // Only the position and the kept ETags matter: nothing else of the parent's own
        // checkpoint is used.
        let mut checkpoint = known.checkpoint();
        loop {
            let state = parent::asked(checkpoint.as_ref())?;
            let page = self
                .collect(cx, &listing.source().stream, checkpoint.as_ref())
                .await?;
            let values = if page.not_modified {
                known.values(&state)?
            } else {
                let fields = listing.source().record_fields.as_deref();
                page.records
                    .into_iter()
                    .filter_map(|record| parent::partition(record.data, &value_path, fields))
                    .collect()
            };
            listing.push(state, values);
            if page.done {
                return listing.finish(&page.checkpoint);
            }
            checkpoint = Some(page.checkpoint);
        }
    }
}

/// Every way `value` breaks a schema, each with where (a JSON pointer) when not the root.
fn violations(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect()
}

/// A stream page or a check only reads, whatever its method (Jira's search is a `POST`): the
/// call stack may repeat it after a 429 or a 5xx.
fn read_only(mut call: ProviderRequest) -> ProviderRequest {
    call.repeatability.idempotent = true;
    call
}

/// Sets `record[field]` to the partition's value. A scalar record (Slack's
/// `conversations.members` lists bare user ids) is first wrapped as `{"value": <scalar>}`, so
/// it can carry the field and be keyed by both; a null or an array cannot.
fn stamp_partition(record: &mut Value, field: &str, value: &Value) -> Result<(), ConnectorError> {
    if matches!(record, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
        let scalar = record.take();
        *record = Value::Object(serde_json::Map::from_iter([(
            SCALAR_RECORD_FIELD.to_owned(),
            scalar,
        )]));
    }
    let object = record.as_object_mut().ok_or_else(|| {
        invalid(format!(
            "a record is null or an array, so it cannot carry the partition field `{field}`"
        ))
    })?;
    object.insert(field.to_owned(), value.clone());
    Ok(())
}

/// Where a scalar record's value goes when a partition field wraps it in an object.
const SCALAR_RECORD_FIELD: &str = "value";

fn status_error(response: &ProviderResponse) -> ConnectorError {
    ConnectorError::ProviderStatus {
        status: response.status.as_u16(),
        message: excerpt(&String::from_utf8_lossy(&response.body)),
    }
}

/// How long a rule's retry waits: the provider's `Retry-After` seconds when it sends them
/// (Slack's `ratelimited`), capped; else a short growing pause.
fn retry_delay(response: &ProviderResponse, tries: u32) -> Duration {
    response
        .headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_millis(250 * u64::from(tries)), |seconds| {
            Duration::from_secs(seconds).min(RULE_RETRY_CAP)
        })
}

fn json_body(response: &ProviderResponse) -> Result<Value, ConnectorError> {
    if response.body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| invalid(format!("the body is not JSON: {e}")))
}

#[async_trait]
impl Connector for ManifestConnector {
    fn metadata(&self) -> &ConnectorMetadata {
        &self.metadata
    }

    fn validate_config(&self, config: &Value) -> Result<(), ConnectorError> {
        let problems = violations(&self.config_validator, config);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConnectorError::InvalidConfig(problems))
        }
    }

    async fn test_connection(&self, cx: CallContext<'_>) -> Result<CheckReport, ConnectorError> {
        let check = self
            .manifest
            .check
            .as_ref()
            .ok_or_else(|| ConnectorError::Unsupported {
                connector: self.manifest.id.clone(),
                what: "connection checks",
            })?;
        let base = self.base(cx)?;
        let context = json!({"config": cx.connection.config});
        let make = || {
            request::build(request::Parts {
                base: &base,
                spec: &check.request,
                headers: &self.manifest.headers,
                context: &context,
                pagination: &Pagination::None,
                state: &PageState::First,
                extra_query: Vec::new(),
            })
        };
        let first = make()?;
        let started = Instant::now();
        let outcome = self
            .send_judged(cx, &self.errors, None, first, make, read_only)
            .await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let scoping = check.scoping(cx.connection.auth_mode.as_deref());
        let failed = |code: &str, message: String| CheckReport {
            success: false,
            latency_ms,
            permissions_verified: Vec::new(),
            permissions_missing: scoping.required.to_vec(),
            error_code: Some(code.to_owned()),
            error_message: Some(message),
        };
        let Judged {
            response, ignored, ..
        } = match outcome {
            Ok(judged) => judged,
            Err(error) => return Ok(failed(error.code(), error.to_string())),
        };
        if !ignored && !response.status.is_success() {
            let error = status_error(&response);
            return Ok(failed(error.code(), error.to_string()));
        }
        let granted = match scoping.source {
            // The token the check was just sent with is the one whose grants are asked for.
            Some(ScopeSource::Token(_)) => cx.calls.granted_scopes(&self.scope(cx)).await,
            source => granted_scopes(source, &response),
        };
        let (verified, missing) = match granted {
            Some(granted) => scoping
                .required
                .iter()
                .cloned()
                .partition(|s| covers(&granted, scoping.implied, s)),
            // The provider does not say: a working credential is all we know.
            None => (Vec::new(), Vec::new()),
        };
        Ok(CheckReport {
            success: true,
            latency_ms,
            permissions_verified: verified,
            permissions_missing: missing,
            error_code: None,
            error_message: None,
        })
    }

    async fn collect(
        &self,
        cx: CallContext<'_>,
        stream: &str,
        checkpoint: Option<&Value>,
    ) -> Result<Page, ConnectorError> {
        let (spec, compiled) = self.stream(stream)?;
        let mut saved = StreamCheckpoint::parse(checkpoint)?;
        let mut progress = match saved.progress.take() {
            Some(progress) => progress,
            None => self.start_read(cx, spec, &mut saved).await?,
        };
        let full_read = match spec.incremental {
            Incremental::FullRefresh | Incremental::Etag => true,
            Incremental::DeltaToken { .. } => !progress.delta,
            Incremental::UpdatedSince { .. } => false,
        };
        let partition = match &progress.partitions {
            Some(values) => match values.get(progress.partition) {
                Some(value) => value.clone(),
                // Past the last partition (or none at all): the read is complete.
                None => {
                    return Ok(finish(
                        saved,
                        progress,
                        spec,
                        full_read,
                        Contents::default(),
                    ));
                }
            },
            None => Value::Null,
        };
        let base = self.base(cx)?;
        let (since_param, since_text) = match &spec.incremental {
            Incremental::UpdatedSince {
                param,
                lookback,
                start,
                ..
            } => {
                let since = saved.since.clone().or_else(|| start.clone());
                let asked = since
                    .as_deref()
                    .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
                    .map(|t| {
                        let back = lookback.map_or(Duration::ZERO, |l| l.0);
                        (t - back).format(&Rfc3339).unwrap_or_default()
                    });
                (param.clone(), asked.unwrap_or_default())
            }
            _ => (None, String::new()),
        };
        let context = json!({
            "config": cx.connection.config,
            "partition": partition,
            "checkpoint": {"since": since_text},
        });
        let mut extra_query = Vec::new();
        if let Some(param) = since_param
            && !since_text.is_empty()
        {
            extra_query.push((param, since_text.clone()));
        }
        let memo = saved
            .pages
            .iter()
            .find(|m| m.partition == progress.partition && m.state == progress.page)
            .cloned();
        let state = progress.page.clone();
        let make = || {
            let mut built = request::build(request::Parts {
                base: &base,
                spec: &spec.request,
                headers: &self.manifest.headers,
                context: &context,
                pagination: &spec.pagination,
                state: &state,
                extra_query: extra_query.clone(),
            })?;
            if let Some(memo) = &memo
                && let Ok(value) = reqwest::header::HeaderValue::from_str(&memo.etag)
            {
                built
                    .request
                    .headers_mut()
                    .insert(reqwest::header::IF_NONE_MATCH, value);
            }
            Ok(built)
        };
        let endpoint = Endpoint::of(spec.endpoint_class.as_ref(), &context)?;
        let mut judged = self
            .send_judged(
                cx,
                &compiled.errors,
                endpoint.as_ref(),
                make()?,
                make,
                read_only,
            )
            .await?;
        if judged.ignored {
            // Ignored by a rule: this partition has nothing.
            return Ok(advance(
                saved,
                progress,
                spec,
                full_read,
                None,
                Contents::default(),
            ));
        }
        let delta_gone = judged.response.status == StatusCode::GONE
            && matches!(spec.incremental, Incremental::DeltaToken { .. });
        if !(judged.response.status.is_success()
            || judged.response.status == StatusCode::NOT_MODIFIED
            || delta_gone)
        {
            return Err(status_error(&judged.response));
        }
        if delta_gone {
            // The delta token expired: list everything again, and let deletion detection
            // catch what went away meanwhile.
            saved.delta_link = None;
            let fresh = self.start_read(cx, spec, &mut saved).await?;
            saved.progress = Some(fresh);
            return Ok(restarted(&saved));
        }
        if judged.response.status == StatusCode::NOT_MODIFIED {
            let Some(memo) = memo else {
                return Err(invalid(
                    "304 Not Modified to a request without If-None-Match",
                ));
            };
            progress.pages.push(memo.clone());
            let contents = Contents {
                unchanged: memo.keys,
                not_modified: true,
                ..Contents::default()
            };
            return Ok(advance(
                saved, progress, spec, full_read, memo.next, contents,
            ));
        }

        let mut body = judged.json()?;
        let response = judged.response;
        // `partitions.field`: every record carries its partition's value, primary key
        // included.
        let stamp = spec
            .partitions
            .as_ref()
            .and_then(PartitionSpec::field)
            .zip(partition.get("value"));
        // The records' keys and positions in the selection: the records themselves are moved
        // out of the body once nothing else reads it, which saves a copy of each.
        let mut keys = Vec::new();
        let mut positions = Vec::new();
        let mut deletions = Vec::new();
        for (position, item) in select::all(&body, &compiled.records)
            .into_iter()
            .enumerate()
        {
            let stamped;
            let item = match stamp {
                Some((field, value)) => {
                    let mut copy = item.clone();
                    stamp_partition(&mut copy, field, value)?;
                    stamped = copy;
                    &stamped
                }
                None => item,
            };
            let key = select::primary_key(item, &compiled.primary_key)?;
            if compiled
                .removed
                .as_ref()
                .is_some_and(|removed| select::first(item, removed).is_some())
            {
                deletions.push(key);
                continue;
            }
            if let Some(field) = &compiled.cursor_field
                && let Some(at) = select::first(item, field).and_then(timestamp)
            {
                let at = at.format(&Rfc3339).unwrap_or_default();
                progress.high_water = later(progress.high_water.as_deref(), Some(&at));
            }
            keys.push(key);
            positions.push(position);
        }
        let next = next_state(
            spec,
            compiled,
            &progress.page,
            &response,
            &body,
            keys.len() + deletions.len(),
            &base,
        )?;
        if let Some(etag) = response
            .headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            && matches!(spec.incremental, Incremental::Etag)
        {
            progress.pages.push(PageMemo {
                partition: progress.partition,
                state: progress.page.clone(),
                etag: etag.to_owned(),
                next: next.clone(),
                keys: keys.clone(),
            });
        }
        if let Some(path) = &compiled.delta_link
            && let Some(link) = select::first(&body, path).and_then(Value::as_str)
        {
            request::same_origin(&base, link)?;
            saved.delta_link = Some(link.to_owned());
        }
        let mut records = Vec::with_capacity(keys.len());
        for (primary_key, mut data) in
            keys.into_iter()
                .zip(select::take(&mut body, &compiled.records, &positions))
        {
            if let Some((field, value)) = stamp {
                stamp_partition(&mut data, field, value)?;
            }
            records.push(Record { primary_key, data });
        }
        let contents = Contents {
            records,
            deletions,
            ..Contents::default()
        };
        Ok(advance(saved, progress, spec, full_read, next, contents))
    }

    async fn handle_webhook(
        &self,
        cx: CallContext<'_>,
        event: &WebhookEvent,
    ) -> Result<WebhookOutcome, ConnectorError> {
        let webhooks = self
            .webhooks
            .as_ref()
            .ok_or_else(|| ConnectorError::Unsupported {
                connector: self.manifest.id.clone(),
                what: "webhooks",
            })?;
        webhooks.handle(&self.streams, &cx.connection.config, event)
    }

    async fn execute_action(
        &self,
        cx: CallContext<'_>,
        action: &str,
        input: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        let spec = self
            .manifest
            .action(action)
            .ok_or_else(|| ConnectorError::UnknownAction(action.to_owned()))?;
        if let Some(validator) = self.action_inputs.get(action) {
            let problems = violations(validator, input);
            if !problems.is_empty() {
                return Err(ConnectorError::InvalidInput(problems));
            }
        }
        let base = self.base(cx)?;
        let context = json!({"config": cx.connection.config, "input": input});
        let keyed = spec.idempotency_header.is_some() && idempotency_key.is_some();
        let make = || {
            let mut built = request::build(request::Parts {
                base: &base,
                spec: &spec.request,
                headers: &self.manifest.headers,
                context: &context,
                pagination: &Pagination::None,
                state: &PageState::First,
                extra_query: Vec::new(),
            })?;
            if let (Some(header), Some(key)) = (&spec.idempotency_header, idempotency_key) {
                let name =
                    reqwest::header::HeaderName::from_bytes(header.as_bytes()).map_err(invalid)?;
                let value = reqwest::header::HeaderValue::from_str(key).map_err(invalid)?;
                built.request.headers_mut().insert(name, value);
            }
            Ok(built)
        };
        let idempotent = spec.idempotent;
        let endpoint = Endpoint::of(spec.endpoint_class.as_ref(), &context)?;
        let mut judged = self
            .send_judged(
                cx,
                &self.errors,
                endpoint.as_ref(),
                make()?,
                make,
                |mut call| {
                    call.repeatability.idempotent |= idempotent;
                    if keyed {
                        call.with_idempotency_key()
                    } else {
                        call
                    }
                },
            )
            .await?;
        let body = if judged.ignored {
            // An accepted refusal: its body is the output when it is JSON at all.
            judged.json().unwrap_or(Value::Null)
        } else if judged.response.status.is_success() {
            judged.json()?
        } else {
            return Err(status_error(&judged.response));
        };
        Ok(match &spec.output {
            Some(path) => select::first(&body, &select::path(path)?)
                .cloned()
                .unwrap_or(Value::Null),
            None => body,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_partition_field_is_added_to_an_object_record() {
        let mut record = json!({"id": "U1"});
        stamp_partition(&mut record, "channel_id", &json!("C1")).unwrap();
        assert_eq!(record, json!({"id": "U1", "channel_id": "C1"}));
    }

    #[test]
    fn a_scalar_record_is_wrapped_to_carry_its_partition() {
        for scalar in [json!("U1"), json!(7), json!(true)] {
            let mut record = scalar.clone();
            stamp_partition(&mut record, "channel_id", &json!("C1")).unwrap();
            assert_eq!(record, json!({"value": scalar, "channel_id": "C1"}));
        }
    }

    #[test]
    fn null_and_array_records_cannot_carry_a_partition() {
        for mut record in [Value::Null, json!(["U1"])] {
            let err = stamp_partition(&mut record, "channel_id", &json!("C1")).unwrap_err();
            assert!(matches!(err, ConnectorError::InvalidResponse(_)), "{err:?}");
        }
    }
}
