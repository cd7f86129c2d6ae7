//! The conformance kit against the stand-in: every stand-in manifest conforms, a broken
//! connector fails with every problem named, and the manifests of `docs/connectors.md` load
//! and conform.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_connectors::conformance::{
    ActionSample, Conformance, ConformanceFailure, Problem, ProblemKind, ReadKind, Records,
    WebhookSample,
};
use switchyard_connectors::{
    CallContext, CheckReport, ConnectionContext, Connector, ConnectorError, ConnectorMetadata,
    ManifestConnector, Page, manifest,
};
use switchyard_core::{ConnectionId, TenantId};
use switchyard_http::{InMemoryBackend, ProviderClient};
use switchyard_test_support::standin::{
    BearerToken, Item, ItemChange, StandIn, StandInOptions, github_webhook, provider_client,
};

const TOKEN: &str = "conformance-test-token";
const ITEMS: u64 = 250;

type Calls = ProviderClient<InMemoryBackend, BearerToken>;

fn calls() -> Calls {
    provider_client(BearerToken(TOKEN.to_owned()))
}

/// A stand-in with `ITEMS` items, the call stack that reaches it, and a connection to it.
struct Provider {
    standin: StandIn,
    calls: Calls,
    connection: ConnectionContext,
}

impl Provider {
    async fn start() -> Self {
        let standin = StandIn::start(StandInOptions {
            token: Some(TOKEN.into()),
            rate_limit: None,
            ..Default::default()
        })
        .await
        .unwrap();
        standin.seed(ITEMS);
        Self {
            connection: ConnectionContext {
                tenant: TenantId::generate(),
                connection: ConnectionId::generate(),
                config: json!({"base_url": standin.url(), "installation_id": "42"}),
                base_url: None,
                auth_mode: None,
            },
            standin,
            calls: calls(),
        }
    }

    fn cx(&self) -> CallContext<'_> {
        CallContext {
            calls: &self.calls,
            connection: &self.connection,
        }
    }
}

/// The stand-in's data set as a complete read must hold it.
fn items(standin: &StandIn) -> Records {
    standin
        .items()
        .into_iter()
        .map(|item| (item.id.clone(), serde_json::to_value(&item).unwrap()))
        .collect()
}

/// One item renamed, one added, one deleted; answers the `users` a read must then hold.
fn change(standin: &StandIn) -> BTreeMap<String, Records> {
    standin.advance(Duration::from_secs(60));
    let mut item = standin.get("u00007").unwrap();
    item.name = "Renamed Seven".into();
    standin.upsert(item);
    standin.upsert(Item::new("u90000", "Newcomer", "new@example.test"));
    standin.delete("u00100").unwrap();
    BTreeMap::from([("users".to_owned(), items(standin))])
}

fn load(text: &str, origin: &str) -> ManifestConnector {
    let manifest = manifest::load(text, origin).unwrap_or_else(|e| panic!("{e}"));
    ManifestConnector::new(manifest).unwrap()
}

/// The stand-in manifest `tests/manifests/{name}.yaml`.
fn stand_in(name: &str) -> ManifestConnector {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/manifests/{name}.yaml"));
    load(
        &std::fs::read_to_string(&path).unwrap(),
        &path.display().to_string(),
    )
}

fn stand_in_manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The samples the stand-in's action and webhook routes call for, where a manifest has them.
fn with_samples<'a>(mut kit: Conformance<'a>, connector: &ManifestConnector) -> Conformance<'a> {
    let manifest = connector.manifest();
    if manifest.check.is_none() {
        kit = kit.without_check();
    }
    if manifest.action("create_user").is_some() {
        kit = kit
            .action(
                ActionSample::new(
                    "create_user",
                    json!({"name": "Ada", "email": "ada@example.test"}),
                )
                .with_idempotency_key("conformance-1"),
            )
            .action(
                ActionSample::new("create_user", json!({"name": ""})).failing_with("invalid_input"),
            );
    }
    if manifest.webhooks.is_some() {
        kit = kit
            .webhook(WebhookSample::new("ping", json!({"zen": "hi"})).acknowledged_only())
            .webhook(WebhookSample::new("member.added", json!({})).syncs(["users"]))
            .webhook(WebhookSample::new("push", json!({})));
    }
    kit
}

#[tokio::test]
async fn every_stand_in_manifest_conforms_across_a_change() {
    let files = stand_in_manifests();
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        let origin = file.display().to_string();
        let connector = load(&std::fs::read_to_string(&file).unwrap(), &origin);
        let provider = Provider::start().await;
        let standin = provider.standin.clone();
        let kit = Conformance::for_manifest(&connector, provider.cx())
            .expect_records("users", items(&provider.standin))
            .between_reads(move || change(&standin));
        let report = with_samples(kit, &connector)
            .run()
            .await
            .unwrap_or_else(|failure| panic!("{origin}: {failure}"));

        let users = &report.streams["users"];
        assert!(users.full.pages >= 3, "{origin}: {users:?}");
        assert_eq!(users.full.records, ITEMS, "{origin}");
        assert!(
            users.incremental.records >= 2,
            "{origin}: the change was read"
        );
        let mapped = connector
            .manifest()
            .stream("users")
            .unwrap()
            .unified
            .is_some();
        assert_eq!(users.unified_checked > 0, mapped, "{origin}");
        if connector.manifest().action("create_user").is_some() {
            assert_eq!(report.action_outputs.len(), 1);
            assert_eq!(report.action_outputs[0].1["name"], "Ada");
        }
    }
}

#[tokio::test]
async fn an_unchanged_provider_reads_the_same_again_and_etag_pages_are_304s() {
    let provider = Provider::start().await;
    let connector = stand_in("standin-link");
    let kit = Conformance::for_manifest(&connector, provider.cx());
    let report = with_samples(kit, &connector).run().await.unwrap();
    let users = &report.streams["users"];
    assert_eq!(users.incremental.not_modified, users.full.pages);
    assert_eq!(users.incremental.unchanged, ITEMS);
    assert_eq!(users.records as u64, ITEMS, "nothing lost to the 304s");
    let check = report.check.unwrap();
    assert_eq!(check.permissions_verified, ["items:read", "items:write"]);
}

/// A manifest whose records break its own schema and whose mapping breaks its model.
const BROKEN: &str = r#"
id: standin-broken
name: Stand-in (broken)
version: 1.0.0
base_url: "{{ config.base_url }}"
auth:
  - type: bearer
streams:
  - name: users
    request: { path: /page/items }
    records: "$.items[*]"
    primary_key: ["$.id"]
    pagination: { type: page, page_size_param: page_size, page_size: 100 }
    schema:
      type: object
      required: [id, status]
      properties:
        status: { enum: [active] }
    unified:
      model: identity
      fields:
        id: "$.id"
        name: "$.name"
        email: "$.name"
        status: { path: "$.status", map: { active: active, suspended: suspended } }
"#;

fn has(failure: &ConformanceFailure, wanted: impl Fn(&Problem) -> bool) -> bool {
    failure.problems.iter().any(wanted)
}

#[tokio::test]
async fn records_that_break_the_stream_schema_or_the_unified_model_are_each_named() {
    let provider = Provider::start().await;
    let connector = load(BROKEN, "broken");
    let failure = Conformance::for_manifest(&connector, provider.cx())
        .without_check()
        .run()
        .await
        .unwrap_err();
    assert_eq!(failure.connector, "standin-broken");
    // Every tenth item is suspended, in both reads.
    let schema: Vec<&Problem> = failure
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::RecordSchema)
        .collect();
    assert_eq!(schema.len() as u64, 2 * ITEMS / 10, "{failure}");
    assert!(
        schema
            .iter()
            .all(|p| p.pointer.as_deref() == Some("/status")
                && p.stream.as_deref() == Some("users")
                && p.record.as_deref().is_some_and(|k| k.ends_with('0')))
    );
    // Every item's name is not an email.
    let unified = failure
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Unified && p.pointer.as_deref() == Some("/email"))
        .count();
    assert_eq!(unified as u64, 2 * ITEMS, "{failure}");
    assert!(has(&failure, |p| p.kind == ProblemKind::Unified
        && p.read == Some(ReadKind::Incremental)
        && p.record.as_deref() == Some("u00001")));
    let text = failure.to_string();
    assert!(
        text.contains("record schema, stream `users` (full read), record `u00010` at /status:"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "failed conformance with {} problem(s)",
        failure.problems.len()
    )));
    assert!(text.contains("… and"), "the list is capped: {text}");
    assert!(!text.contains("User 1"), "no record values in the report");
}

/// Passes everything through but the deletions a delta read reports.
struct ForgetsDeletions(ManifestConnector);

#[async_trait]
impl Connector for ForgetsDeletions {
    fn metadata(&self) -> &ConnectorMetadata {
        self.0.metadata()
    }

    fn validate_config(&self, config: &Value) -> Result<(), ConnectorError> {
        self.0.validate_config(config)
    }

    async fn test_connection(&self, cx: CallContext<'_>) -> Result<CheckReport, ConnectorError> {
        self.0.test_connection(cx).await
    }

    async fn collect(
        &self,
        cx: CallContext<'_>,
        stream: &str,
        checkpoint: Option<&Value>,
    ) -> Result<Page, ConnectorError> {
        let mut page = self.0.collect(cx, stream, checkpoint).await?;
        page.deletions.clear();
        Ok(page)
    }
}

#[tokio::test]
async fn an_incremental_read_that_loses_a_deletion_fails() {
    let provider = Provider::start().await;
    let honest = stand_in("standin-delta");
    let mapping = honest.manifest().streams[0].unified.clone().unwrap();
    let connector = ForgetsDeletions(honest);
    let standin = provider.standin.clone();
    let failure = Conformance::new(&connector, provider.cx())
        .without_check()
        .unified_mapping("users", &mapping)
        .expect_records("users", items(&provider.standin))
        .between_reads(move || change(&standin))
        .run()
        .await
        .unwrap_err();
    assert_eq!(failure.problems.len(), 1, "{failure}");
    let problem = &failure.problems[0];
    assert_eq!(problem.kind, ProblemKind::Expected);
    assert_eq!(problem.read, Some(ReadKind::Incremental));
    assert_eq!(problem.record.as_deref(), Some("u00100"));
    assert!(problem.message.contains("not expected"), "{problem}");
}

#[tokio::test]
async fn wrong_expectations_and_missing_samples_are_each_reported() {
    let provider = Provider::start().await;
    let connector = stand_in("standin-link");
    let mut expected = items(&provider.standin);
    expected.remove("u00002");
    expected.get_mut("u00003").unwrap()["name"] = json!("Someone else");
    let failure = Conformance::for_manifest(&connector, provider.cx())
        .expect_records("users", expected)
        .expect_records("groups", Records::new())
        .action(
            ActionSample::new(
                "create_user",
                json!({"name": "Ada", "email": "ada@example.test"}),
            )
            .failing_with("invalid_input"),
        )
        .webhook(WebhookSample::new("member.removed", json!({})))
        .run()
        .await
        .unwrap_err();
    let kinds = |kind: ProblemKind| failure.problems.iter().filter(|p| p.kind == kind).count();
    assert!(has(&failure, |p| p.kind == ProblemKind::Setup
        && p.stream.as_deref() == Some("groups")));
    // Each read holds u00002, unexpected, and a u00003 that differs at /name.
    assert_eq!(kinds(ProblemKind::Expected), 4, "{failure}");
    assert!(has(&failure, |p| p.record.as_deref() == Some("u00003")
        && p.pointer.as_deref() == Some("/name")
        && p.read == Some(ReadKind::Full)));
    assert!(has(&failure, |p| p.kind == ProblemKind::Webhook
        && p.message.contains("member.removed")));
    assert!(has(&failure, |p| p.kind == ProblemKind::Action
        && p.message.contains("succeeded")));
    assert!(has(&failure, |p| p.kind == ProblemKind::Coverage
        && p.message.contains("`ping`")));
}

#[tokio::test]
async fn a_failing_check_and_a_failing_read_are_problems_not_panics() {
    let mut provider = Provider::start().await;
    // Another token: the provider refuses every call.
    provider.standin = StandIn::start(StandInOptions {
        token: Some("another-token".into()),
        rate_limit: None,
        ..Default::default()
    })
    .await
    .unwrap();
    provider.connection.config["base_url"] = json!(provider.standin.url());
    let connector = stand_in("standin-next");
    let failure = Conformance::for_manifest(&connector, provider.cx())
        .run()
        .await
        .unwrap_err();
    assert!(
        has(&failure, |p| p.kind == ProblemKind::Connection
            && p.message.contains("connection checks")),
        "{failure}"
    );
    assert!(
        has(&failure, |p| p.kind == ProblemKind::Read
            && p.read == Some(ReadKind::Full)
            && p.message.contains("auth_failed")),
        "{failure}"
    );
}

/// The ```yaml blocks of `docs/connectors.md`: (info string, first line, text).
fn doc_yaml_blocks() -> Vec<(String, usize, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/connectors.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (number, line) in doc.lines().enumerate() {
        match open.take() {
            None => {
                if let Some(info) = line.trim_start().strip_prefix("```")
                    && info.trim().starts_with("yaml")
                {
                    open = Some((info.trim().to_owned(), number + 2, String::new()));
                }
            }
            Some((info, start, mut text)) => {
                if line.trim_start().starts_with("```") {
                    blocks.push((info, start, text));
                } else {
                    text.push_str(line);
                    text.push('\n');
                    open = Some((info, start, text));
                }
            }
        }
    }
    assert!(
        open.is_none(),
        "an unclosed code block in docs/connectors.md"
    );
    blocks
}

#[test]
fn every_yaml_example_in_the_connectors_doc_is_a_manifest_that_loads() {
    let blocks = doc_yaml_blocks();
    assert!(blocks.len() >= 2, "{} yaml blocks", blocks.len());
    for (info, line, text) in &blocks {
        assert_eq!(
            info, "yaml manifest",
            "docs/connectors.md:{line}: mark YAML examples as manifests"
        );
        let origin = format!("docs/connectors.md:{line}");
        manifest::load(text, &origin).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn the_worked_example_in_the_connectors_doc_conforms() {
    let (_, line, text) = doc_yaml_blocks()
        .into_iter()
        .find(|(_, _, text)| text.contains("id: standin-directory"))
        .expect("the worked example");
    let connector = load(&text, &format!("docs/connectors.md:{line}"));
    let mut provider = Provider::start().await;
    provider.connection.config = json!({"domain": "directory.example", "installation_id": "42"});
    provider.connection.base_url = Some(provider.standin.url().to_owned());
    let standin = provider.standin.clone();
    let created = provider.standin.get("u00001").unwrap();
    let delivery = github_webhook(b"secret", &ItemChange::Created(created));
    let body: Value = serde_json::from_slice(&delivery.body).unwrap();
    let report = Conformance::for_manifest(&connector, provider.cx())
        .expect_records("users", items(&provider.standin))
        .between_reads(move || change(&standin))
        .webhook(WebhookSample::new("item.created", body).syncs(["users"]))
        .webhook(WebhookSample::new("ping", json!({})).acknowledged_only())
        .action(ActionSample::new(
            "create_user",
            json!({"name": "Ada", "email": "ada@example.test"}),
        ))
        .run()
        .await
        .unwrap();
    assert!(report.streams["users"].unified_checked > ITEMS);
    assert_eq!(report.action_outputs[0].1["email"], "ada@example.test");
}
