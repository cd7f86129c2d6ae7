//! The connector conformance kit: the test helper every connector's tests call with the
//! connector and a call context that reaches its stand-in provider.
//!
//! [`Conformance::run`] checks, in this order:
//! 1. the connection config satisfies the connector's config form;
//! 2. `test_connection` succeeds and reports no missing permission;
//! 3. every stream of the connector's metadata reads from no checkpoint to the end; every
//!    record has a primary key, satisfies the stream's record schema and, when the stream
//!    has a unified mapping, maps onto a valid record of its model; the records the read leads
//!    to equal [`expect_records`](Conformance::expect_records) where given;
//! 4. [`between_reads`](Conformance::between_reads), if set, changes the provider's data;
//! 5. every stream reads again from the first read's final checkpoint (incremental), with
//!    the same record checks, and the first read's records with the second's applied equal
//!    what the change said to expect, else the expected records, else the first read's
//!    records: nothing is lost and nothing stale stays. A stream read by update time cannot
//!    see deletions, so extra records there are allowed;
//! 6. every webhook sample asks for exactly the streams it expects, carries no record its
//!    stream refuses, and stores and emits what it expects (when it says);
//! 7. every action sample succeeds, or fails with the code it expects. Actions run last, as
//!    they may change the provider's data.
//!
//! It also fails a connector whose declared actions, webhook event types or unified models
//! no sample or mapping exercises. Reads are kept in memory, the way the sync loop keeps the
//! record store; no database is needed.
//!
//! ```ignore
//! let report = Conformance::for_manifest(&connector, cx)
//!     .expect_records("users", standin_items)
//!     .action(ActionSample::new("create_user", json!({"name": "Ada", "email": "ada@example.test"})))
//!     .webhook(WebhookSample::new("member.added", json!({})).syncs(["users"]))
//!     .run()
//!     .await?; // ConformanceFailure lists every problem
//! ```

mod problem;
mod replica;
mod samples;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

pub use problem::{ConformanceFailure, Problem, ProblemKind, ReadKind};
pub use replica::Records;
pub use samples::{ActionSample, WebhookSample};

use replica::{Difference, Replica, compare};

use crate::connector::{
    CallContext, CheckReport, Connector, ConnectorError, StreamInfo, WebhookEvent,
};
use crate::engine::ManifestConnector;
use crate::unified::{CompiledMapping, MappingError, MappingSpec};

/// Pages one read may take before the kit calls it endless.
const DEFAULT_MAX_PAGES: u64 = 10_000;

/// Changes the provider's data between the two reads and answers the records each named
/// stream must then hold.
type Change<'a> = Box<dyn FnOnce() -> BTreeMap<String, Records> + Send + 'a>;

/// One conformance run, set up with builder methods and started with [`run`](Self::run).
pub struct Conformance<'a> {
    connector: &'a dyn Connector,
    cx: CallContext<'a>,
    contracts: BTreeMap<String, StreamContract>,
    setup_problems: Vec<Problem>,
    expected: BTreeMap<String, Records>,
    between_reads: Option<Change<'a>>,
    actions: Vec<ActionSample>,
    webhooks: Vec<WebhookSample>,
    require_check: bool,
    max_pages: u64,
}

/// What a stream's records must satisfy besides being read.
#[derive(Default)]
struct StreamContract {
    schema: Option<jsonschema::Validator>,
    unified: Option<CompiledMapping>,
}

/// What a passing run did.
#[derive(Debug, Clone)]
pub struct ConformanceReport {
    /// `None` when the run was set up [`without_check`](Conformance::without_check) and the
    /// connector has none.
    pub check: Option<CheckReport>,
    pub streams: BTreeMap<String, StreamReport>,
    /// Each successful action's output, in sample order.
    pub action_outputs: Vec<(String, Value)>,
    pub webhooks: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamReport {
    pub full: ReadSummary,
    pub incremental: ReadSummary,
    /// Records held after the incremental read.
    pub records: usize,
    /// Records mapped onto the unified model and validated, over both reads.
    pub unified_checked: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub pages: u64,
    pub records: u64,
    pub deletions: u64,
    pub unchanged: u64,
    /// Pages answered `304 Not Modified`.
    pub not_modified: u64,
}

impl<'a> Conformance<'a> {
    /// A run for any connector. Record schemas and unified mappings are the caller's to add
    /// ([`record_schema`](Self::record_schema), [`unified_mapping`](Self::unified_mapping)).
    pub fn new(connector: &'a dyn Connector, cx: CallContext<'a>) -> Self {
        Self {
            connector,
            cx,
            contracts: BTreeMap::new(),
            setup_problems: Vec::new(),
            expected: BTreeMap::new(),
            between_reads: None,
            actions: Vec::new(),
            webhooks: Vec::new(),
            require_check: true,
            max_pages: DEFAULT_MAX_PAGES,
        }
    }

    /// A run for a manifest connector, with every stream's `schema` and `unified` mapping
    /// taken from its manifest.
    pub fn for_manifest(connector: &'a ManifestConnector, cx: CallContext<'a>) -> Self {
        let mut run = Self::new(connector, cx);
        for stream in &connector.manifest().streams {
            if let Some(schema) = &stream.schema {
                run = run.record_schema(&stream.name, schema);
            }
            if let Some(mapping) = &stream.unified {
                run = run.unified_mapping(&stream.name, mapping);
            }
        }
        run
    }

    /// Every record of `stream` must satisfy `schema` (formats included).
    pub fn record_schema(mut self, stream: &str, schema: &Value) -> Self {
        match jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
        {
            Ok(validator) => self.contract(stream).schema = Some(validator),
            Err(error) => self.setup_problems.push(
                Problem::new(
                    ProblemKind::Setup,
                    format!("the record schema does not compile: {error}"),
                )
                .in_stream(stream, None),
            ),
        }
        self
    }

    /// Every record of `stream` must map onto a valid record of the mapping's model.
    pub fn unified_mapping(mut self, stream: &str, mapping: &MappingSpec) -> Self {
        match CompiledMapping::new(mapping) {
            Ok(compiled) => {
                let config = self.cx.connection.config.clone();
                self.contract(stream).unified = Some(compiled.with_config(config));
            }
            Err(error) => self.setup_problems.push(
                Problem::new(
                    ProblemKind::Setup,
                    format!("the unified mapping is unusable: {error}"),
                )
                .in_stream(stream, None),
            ),
        }
        self
    }

    /// The records a full read of `stream` must lead to, by primary key.
    pub fn expect_records(mut self, stream: &str, records: Records) -> Self {
        self.expected.insert(stream.to_owned(), records);
        self
    }

    /// Runs `change` after the full reads and before the incremental ones: it changes the
    /// provider's data and answers the records each stream it names must then hold.
    pub fn between_reads(
        mut self,
        change: impl FnOnce() -> BTreeMap<String, Records> + Send + 'a,
    ) -> Self {
        self.between_reads = Some(Box::new(change));
        self
    }

    pub fn action(mut self, sample: ActionSample) -> Self {
        self.actions.push(sample);
        self
    }

    pub fn webhook(mut self, sample: WebhookSample) -> Self {
        self.webhooks.push(sample);
        self
    }

    /// Accept a connector that has no connection check (`unsupported`).
    pub fn without_check(mut self) -> Self {
        self.require_check = false;
        self
    }

    /// Pages one read may take before it counts as endless (default 10,000).
    pub fn max_pages(mut self, pages: u64) -> Self {
        self.max_pages = pages;
        self
    }

    fn contract(&mut self, stream: &str) -> &mut StreamContract {
        self.contracts.entry(stream.to_owned()).or_default()
    }

    /// Runs every check; the error lists every problem found.
    pub async fn run(mut self) -> Result<ConformanceReport, ConformanceFailure> {
        let mut problems = std::mem::take(&mut self.setup_problems);
        let metadata = self.connector.metadata();
        self.check_declarations(&mut problems);

        if let Err(error) = self.connector.validate_config(&self.cx.connection.config) {
            problems.push(Problem::new(ProblemKind::Config, error.to_string()));
        }
        let check = self.check_connection(&mut problems).await;

        let mut streams = BTreeMap::new();
        let mut replicas = BTreeMap::new();
        for info in &metadata.streams {
            let mut report = StreamReport::default();
            let mut replica = Replica::default();
            let end = self
                .read(
                    info,
                    ReadKind::Full,
                    None,
                    &mut replica,
                    &mut report,
                    &mut problems,
                )
                .await;
            if let Some(expected) = self.expected.get(&info.name) {
                differences(
                    &mut problems,
                    info,
                    ReadKind::Full,
                    expected,
                    &replica.records,
                    false,
                );
            }
            streams.insert(info.name.clone(), report);
            replicas.insert(info.name.clone(), (replica, end));
        }

        let changed = self.between_reads.take().map(|change| change());
        for info in &metadata.streams {
            let (Some(report), Some((mut replica, Some(end)))) =
                (streams.get_mut(&info.name), replicas.remove(&info.name))
            else {
                // The full read failed: its problem is reported, there is nothing to go on from.
                continue;
            };
            // With nothing else to expect, the second read must keep what the first held.
            let unchanged = (changed.is_none() && !self.expected.contains_key(&info.name))
                .then(|| replica.records.clone());
            self.read(
                info,
                ReadKind::Incremental,
                Some(end),
                &mut replica,
                report,
                &mut problems,
            )
            .await;
            report.records = replica.records.len();
            let expected = match &changed {
                Some(changed) => changed.get(&info.name),
                None => self.expected.get(&info.name).or(unchanged.as_ref()),
            };
            if let Some(expected) = expected {
                // A read by update time cannot see deletions.
                let extra_allowed = info.incremental == "updated_since";
                differences(
                    &mut problems,
                    info,
                    ReadKind::Incremental,
                    expected,
                    &replica.records,
                    extra_allowed,
                );
            }
        }

        self.deliver_webhooks(&mut problems).await;
        let action_outputs = self.run_actions(&mut problems).await;

        if problems.is_empty() {
            Ok(ConformanceReport {
                check,
                streams,
                action_outputs,
                webhooks: self.webhooks.len(),
            })
        } else {
            Err(ConformanceFailure {
                connector: metadata.id.clone(),
                problems,
            })
        }
    }

    /// What the connector declares against what the kit was given to exercise it.
    fn check_declarations(&self, problems: &mut Vec<Problem>) {
        let metadata = self.connector.metadata();
        let declared: BTreeMap<&str, &StreamInfo> = metadata
            .streams
            .iter()
            .map(|s| (s.name.as_str(), s))
            .collect();
        for stream in self.contracts.keys().chain(self.expected.keys()) {
            if !declared.contains_key(stream.as_str()) {
                problems.push(
                    Problem::new(ProblemKind::Setup, "the connector has no such stream")
                        .in_stream(stream, None),
                );
            }
        }
        for info in &metadata.streams {
            let mapped = self
                .contracts
                .get(&info.name)
                .and_then(|c| c.unified.as_ref())
                .map(|m| m.model().name());
            match (info.unified_model.as_deref(), mapped) {
                (Some(model), None) => problems.push(
                    Problem::new(
                        ProblemKind::Coverage,
                        format!("declares the unified model `{model}` but no mapping checks it"),
                    )
                    .in_stream(&info.name, None),
                ),
                (declared, Some(mapped)) if declared != Some(mapped) => problems.push(
                    Problem::new(
                        ProblemKind::Setup,
                        format!(
                            "the mapping is onto `{mapped}`, the connector declares {}",
                            declared.map_or("no model".to_owned(), |d| format!("`{d}`"))
                        ),
                    )
                    .in_stream(&info.name, None),
                ),
                _ => {}
            }
        }
        for action in &metadata.actions {
            if !self.actions.iter().any(|s| s.action == action.name) {
                problems.push(Problem::new(
                    ProblemKind::Coverage,
                    format!("action `{}` has no sample", action.name),
                ));
            }
        }
        for event in &metadata.webhook_events {
            if !self.webhooks.iter().any(|s| s.covers(event)) {
                problems.push(Problem::new(
                    ProblemKind::Coverage,
                    format!("webhook event type `{event}` has no sample"),
                ));
            }
        }
    }

    async fn check_connection(&self, problems: &mut Vec<Problem>) -> Option<CheckReport> {
        match self.connector.test_connection(self.cx).await {
            Ok(report) => {
                if !report.success {
                    problems.push(Problem::new(
                        ProblemKind::Connection,
                        format!(
                            "the check failed: {} ({})",
                            report.error_message.as_deref().unwrap_or("no message"),
                            report.error_code.as_deref().unwrap_or("no code")
                        ),
                    ));
                } else if !report.permissions_missing.is_empty() {
                    problems.push(Problem::new(
                        ProblemKind::Connection,
                        format!(
                            "the check reports missing permissions: {}",
                            report.permissions_missing.join(", ")
                        ),
                    ));
                }
                Some(report)
            }
            Err(ConnectorError::Unsupported { .. }) if !self.require_check => None,
            Err(error) => {
                problems.push(Problem::new(
                    ProblemKind::Connection,
                    format!("the check could not run: {error}"),
                ));
                None
            }
        }
    }

    /// Reads `info` to the end from `from`, checking every record; answers the final
    /// checkpoint, or `None` when the read failed.
    async fn read(
        &self,
        info: &StreamInfo,
        kind: ReadKind,
        from: Option<Value>,
        replica: &mut Replica,
        report: &mut StreamReport,
        problems: &mut Vec<Problem>,
    ) -> Option<Value> {
        let stream = info.name.as_str();
        let problem = |kind_of: ProblemKind, message: String| {
            Problem::new(kind_of, message).in_stream(stream, Some(kind))
        };
        let contract = self.contracts.get(stream);
        let mut summary = ReadSummary::default();
        let mut checkpoint = from;
        replica.begin_read();
        loop {
            if summary.pages >= self.max_pages {
                problems.push(problem(
                    ProblemKind::Read,
                    format!("did not end within {} pages", self.max_pages),
                ));
                break None;
            }
            let page = match self
                .connector
                .collect(self.cx, stream, checkpoint.as_ref())
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    problems.push(problem(
                        ProblemKind::Read,
                        format!(
                            "page {} failed ({}): {error}",
                            summary.pages + 1,
                            error.code()
                        ),
                    ));
                    break None;
                }
            };
            summary.pages += 1;
            summary.records += page.records.len() as u64;
            summary.deletions += page.deletions.len() as u64;
            summary.unchanged += page.unchanged.len() as u64;
            summary.not_modified += u64::from(page.not_modified);
            for record in &page.records {
                let at = |kind_of, pointer, message| {
                    problem(kind_of, message).at_record(&record.primary_key, pointer)
                };
                if record.primary_key.is_empty() {
                    problems.push(problem(
                        ProblemKind::Read,
                        "a record without a primary key".into(),
                    ));
                }
                if let Some(validator) = contract.and_then(|c| c.schema.as_ref()) {
                    for error in validator.iter_errors(&record.data) {
                        problems.push(at(
                            ProblemKind::RecordSchema,
                            Some(error.instance_path().to_string()),
                            error.masked().to_string(),
                        ));
                    }
                }
                if let Some(mapping) = contract.and_then(|c| c.unified.as_ref()) {
                    report.unified_checked += 1;
                    if let Err(error) = mapping.apply(&self.connector.metadata().id, &record.data) {
                        for (pointer, message) in mapping_problems(error) {
                            problems.push(at(ProblemKind::Unified, pointer, message));
                        }
                    }
                }
            }
            for key in replica.apply(&page) {
                problems.push(
                    problem(
                        ProblemKind::Read,
                        "a 304 page calls this record unchanged, but no read delivered it".into(),
                    )
                    .at_record(&key, None),
                );
            }
            if page.done {
                match kind {
                    ReadKind::Full => report.full = summary,
                    ReadKind::Incremental => report.incremental = summary,
                }
                break Some(page.checkpoint);
            }
            checkpoint = Some(page.checkpoint);
        }
    }

    async fn deliver_webhooks(&self, problems: &mut Vec<Problem>) {
        let known: BTreeSet<&str> = self
            .connector
            .metadata()
            .streams
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        for sample in &self.webhooks {
            let name = sample.event_type.as_deref().unwrap_or("(no type)");
            let event = WebhookEvent {
                event_type: sample.event_type.clone(),
                headers: sample.headers.clone(),
                body: sample.body.clone(),
            };
            let outcome = match self.connector.handle_webhook(self.cx, &event).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    problems.push(Problem::new(
                        ProblemKind::Webhook,
                        format!("`{name}` failed: {error}"),
                    ));
                    continue;
                }
            };
            let asked: BTreeSet<&String> = outcome.sync.iter().collect();
            let wanted: BTreeSet<&String> = sample.expect_sync.iter().collect();
            if asked != wanted {
                problems.push(Problem::new(
                    ProblemKind::Webhook,
                    format!("`{name}` asks to sync {asked:?}, expected {wanted:?}"),
                ));
            }
            if outcome.acknowledged_only != sample.expect_acknowledged_only {
                problems.push(Problem::new(
                    ProblemKind::Webhook,
                    format!(
                        "`{name}` is {}acknowledged only, expected {}",
                        if outcome.acknowledged_only {
                            ""
                        } else {
                            "not "
                        },
                        sample.expect_acknowledged_only
                    ),
                ));
            }
            webhook_records(name, sample, &outcome, problems);
            for stream in asked.iter().filter(|s| !known.contains(s.as_str())) {
                problems.push(Problem::new(
                    ProblemKind::Webhook,
                    format!("`{name}` asks to sync `{stream}`, which the connector does not have"),
                ));
            }
        }
    }

    async fn run_actions(&self, problems: &mut Vec<Problem>) -> Vec<(String, Value)> {
        let mut outputs = Vec::new();
        for sample in &self.actions {
            let result = self
                .connector
                .execute_action(
                    self.cx,
                    &sample.action,
                    &sample.input,
                    sample.idempotency_key.as_deref(),
                )
                .await;
            let name = &sample.action;
            match (result, &sample.expect_error) {
                (Ok(output), None) => outputs.push((name.clone(), output)),
                (Ok(_), Some(code)) => problems.push(Problem::new(
                    ProblemKind::Action,
                    format!("`{name}` succeeded, expected it to fail with `{code}`"),
                )),
                (Err(error), Some(code)) if error.code() == code => {}
                (Err(error), expected) => problems.push(Problem::new(
                    ProblemKind::Action,
                    format!(
                        "`{name}` failed ({}): {error}{}",
                        error.code(),
                        expected
                            .as_ref()
                            .map(|code| format!("; expected `{code}`"))
                            .unwrap_or_default()
                    ),
                )),
            }
        }
        outputs
    }
}

/// A mapping error as (JSON pointer into the unified record, message) pairs: one per schema
/// violation, else one naming the field.
fn mapping_problems(error: MappingError) -> Vec<(Option<String>, String)> {
    match error {
        MappingError::Invalid { model, violations } => violations
            .into_iter()
            .map(|v| (Some(v.path), format!("not a valid {model}: {}", v.message)))
            .collect(),
        other => vec![(other.field().map(|f| format!("/{f}")), other.to_string())],
    }
}

fn differences(
    problems: &mut Vec<Problem>,
    info: &StreamInfo,
    read: ReadKind,
    expected: &Records,
    actual: &Records,
    extra_allowed: bool,
) {
    for difference in compare(expected, actual, extra_allowed) {
        let (key, pointer, message) = match difference {
            Difference::Missing { key } => (key, None, "expected, but not held after the read"),
            Difference::Unexpected { key } => (key, None, "held after the read, but not expected"),
            Difference::Changed { key, pointer } => {
                (key, Some(pointer), "differs from the expected record")
            }
        };
        problems.push(
            Problem::new(ProblemKind::Expected, message)
                .in_stream(&info.name, Some(read))
                .at_record(&key, pointer),
        );
    }
}

/// A sample's stored records and emitted events: a refused record is a problem (a real
/// payload should fit its stream's schema), and what the sample expects must be what it did.
fn webhook_records(
    name: &str,
    sample: &WebhookSample,
    outcome: &crate::WebhookOutcome,
    problems: &mut Vec<Problem>,
) {
    for refused in &outcome.refused {
        problems.push(Problem::new(
            ProblemKind::Webhook,
            format!(
                "`{name}` carries a record of `{}` ({}) that is refused: {}",
                refused.stream,
                refused.primary_key.as_deref().unwrap_or("no key"),
                refused.problems.join("; ")
            ),
        ));
    }
    if let Some(expected) = &sample.expect_stored {
        let stored: BTreeSet<(&str, &str)> = outcome
            .records
            .iter()
            .flat_map(|r| {
                r.upserts
                    .iter()
                    .map(|u| (r.stream.as_str(), u.primary_key.as_str()))
            })
            .collect();
        let wanted: BTreeSet<(&str, &str)> = expected
            .iter()
            .flat_map(|(stream, keys)| keys.iter().map(|k| (stream.as_str(), k.as_str())))
            .collect();
        if stored != wanted {
            problems.push(Problem::new(
                ProblemKind::Webhook,
                format!("`{name}` stores {stored:?}, expected {wanted:?}"),
            ));
        }
    }
    if let Some(expected) = &sample.expect_emitted {
        let emitted: Vec<&str> = outcome.emit.iter().map(|e| e.event_type.as_str()).collect();
        if emitted != *expected {
            problems.push(Problem::new(
                ProblemKind::Webhook,
                format!("`{name}` emits {emitted:?}, expected {expected:?}"),
            ));
        }
    }
}
