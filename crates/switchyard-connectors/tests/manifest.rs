//! The manifest loader: the published JSON Schema matches what the loader accepts, every
//! shipped manifest is valid, and invalid ones get errors that point at the line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value;
use switchyard_connectors::manifest::{self, ManifestProblem};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifests() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        root().join("providers"),
        root().join("tests/manifests"),
        root().join("tests/manifests/partitions"),
        root().join("tests/manifests/related"),
    ] {
        // `providers/` is absent while no manifest is built in.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn yaml_to_json(text: &str) -> Value {
    let value: serde_norway::Value = serde_norway::from_str(text).unwrap();
    serde_json::to_value(value).unwrap()
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let path = root().join("../../docs/specs/manifest.schema.json");
    let generated = serde_json::to_string_pretty(&manifest::json_schema()).unwrap() + "\n";
    if std::env::var_os("SWITCHYARD_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: run `SWITCHYARD_BLESS=1 cargo test -p switchyard-connectors --test manifest`",
        path.display()
    );
}

#[test]
fn every_manifest_loads_and_satisfies_the_schema() {
    let schema = manifest::json_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let files = manifests();
    assert!(files.len() >= 7, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(error) = manifest::load(&text, &path.display().to_string()) {
            panic!("{error}");
        }
        let problems: Vec<String> = validator
            .iter_errors(&yaml_to_json(&text))
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(problems.is_empty(), "{}: {problems:?}", path.display());
    }
}

fn problems(text: &str) -> Vec<ManifestProblem> {
    manifest::load(text, "test.yaml").unwrap_err().problems
}

const VALID: &str = "\
id: example
name: Example
version: 1.0.0
base_url: https://api.example.test
auth:
  - type: bearer
streams:
  - name: users
    request:
      path: /users
    records: $.users[*]
    primary_key: [$.id]
";

#[test]
fn the_minimal_manifest_loads() {
    let manifest = manifest::load(VALID, "test.yaml").unwrap();
    assert_eq!(manifest.streams[0].name, "users");
}

#[test]
fn an_unknown_field_points_at_its_line_and_column() {
    let text = VALID.replace("    records:", "    record_selector: x\n    records:");
    let found = problems(&text);
    assert_eq!(found.len(), 1);
    let problem = &found[0];
    assert!(
        problem.message.contains("unknown field `record_selector`"),
        "{problem}"
    );
    assert_eq!(problem.line, Some(11), "{problem}");
    assert!(problem.column.is_some());
}

#[test]
fn a_wrong_type_points_at_its_line() {
    let text = VALID.replace("primary_key: [$.id]", "primary_key: {a: 1}");
    let problem = &problems(&text)[0];
    assert_eq!(problem.line, Some(12), "{problem}");
}

#[test]
fn semantic_problems_name_the_field_and_its_line() {
    let text = VALID
        .replace("version: 1.0.0", "version: one")
        .replace("records: $.users[*]", "records: $.users[")
        .replace("path: /users", "path: /users/{{ config.org }")
        + "    partitions: { stream: groups, value: $.id }\n";
    let found = problems(&text);
    let by_path = |path: &str| {
        found
            .iter()
            .find(|p| p.path.as_deref() == Some(path))
            .unwrap_or_else(|| panic!("no problem at {path}: {found:?}"))
            .clone()
    };
    assert_eq!(by_path("version").line, Some(3));
    let records = by_path("streams[0].records");
    assert_eq!(records.line, Some(11));
    assert!(records.message.contains("JSONPath"), "{records:?}");
    assert_eq!(by_path("streams[0].request.path").line, Some(10));
    let partition = by_path("streams[0].partitions.stream");
    assert!(
        partition.message.contains("no stream `groups`"),
        "{partition:?}"
    );
    assert_eq!(found.len(), 4, "{found:?}");
    // The rendered error names the file, line and column of each.
    let rendered = manifest::load(&text, "test.yaml").unwrap_err().to_string();
    assert!(
        rendered
            .lines()
            .any(|l| l.starts_with("test.yaml:3:1: version:")),
        "{rendered}"
    );
}

#[test]
fn references_between_parts_are_checked() {
    let text = format!(
        "{VALID}webhooks:\n  scheme: carrier-pigeon\n  event_type: [{{ header: X-Event }}]\n  events:\n    - {{ type: push, sync: [repos] }}\n"
    );
    let found = problems(&text);
    let messages: Vec<&str> = found.iter().map(|p| p.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("`carrier-pigeon` is not a verification scheme")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("no stream `repos`")),
        "{messages:?}"
    );
}

#[test]
fn bad_limits_and_schemas_are_refused() {
    let text = VALID.replace(
        "auth:",
        "limits: { rate: { per_sekond: 5 } }\nconfig: { type: array }\nauth:",
    );
    let found = problems(&text);
    assert!(
        found.iter().any(|p| p.path.as_deref() == Some("limits")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.path.as_deref() == Some("config")),
        "{found:?}"
    );
}

#[test]
fn config_from_token_never_reads_a_token() {
    let text = VALID.replace(
        "  - type: bearer",
        "  - type: oauth2\n    token_url: /token\n    config_from_token: { team_id: \"$.team.id\", leak: \"$.access_token\", bad: \"$[\" }",
    );
    let found = problems(&text);
    let paths: Vec<&str> = found.iter().filter_map(|p| p.path.as_deref()).collect();
    assert!(
        paths.contains(&"auth[0].config_from_token.leak"),
        "{found:?}"
    );
    assert!(
        paths.contains(&"auth[0].config_from_token.bad"),
        "{found:?}"
    );
    assert!(
        !paths.contains(&"auth[0].config_from_token.team_id"),
        "{found:?}"
    );
}

#[test]
fn token_answer_scopes_need_a_mode_that_mints_and_reads_grants() {
    let with = |auth: &str, check: &str| {
        VALID.replace("  - type: bearer", auth).replace(
            "streams:",
            &format!("check:\n  request: {{ path: /me }}\n{check}streams:"),
        )
    };
    let app = "  - type: bearer\n  - type: jwt_bearer\n    algorithm: RS256\n    exchange: { url: /tokens, token_path: $.token, granted_path: $.permissions }";
    let per_mode =
        "  modes:\n    jwt_bearer: { scopes: token_answer, required_scopes: [members:read] }\n";
    if let Err(error) = manifest::load(&with(app, per_mode), "test.yaml") {
        panic!("{error}");
    }

    // The bearer mode would use the check's own `token_answer`: it mints nothing.
    let found = problems(&with(app, "  scopes: token_answer\n"));
    let paths: Vec<&str> = found.iter().filter_map(|p| p.path.as_deref()).collect();
    assert_eq!(paths, ["check.scopes"], "{found:?}");

    // An exchange without `granted_path` reads no grants; a mode that is not declared.
    let no_grants = app.replace(", granted_path: $.permissions", "");
    let undeclared = "    oauth2: { scopes: token_answer }\n";
    let found = problems(&with(&no_grants, &format!("{per_mode}{undeclared}")));
    let paths: Vec<&str> = found.iter().filter_map(|p| p.path.as_deref()).collect();
    assert_eq!(
        paths,
        ["check.modes.jwt_bearer.scopes", "check.modes.oauth2"],
        "{found:?}"
    );
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let problem = &problems("id: [unclosed\nname: x\n")[0];
    assert!(problem.line.is_some(), "{problem}");
    assert_eq!(problem.path, None);
}

fn assert_no_panic(text: &str) {
    let _ = manifest::load(text, "fuzz.yaml");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        assert_no_panic(&text);
    }

    #[test]
    fn mutated_manifests_never_panic(cut in 0usize..VALID.len(), insert in "[-:{}\\[\\]$.* a-z0-9'\"\n]{0,20}") {
        let mut text = VALID.to_owned();
        let at = (0..=cut).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.insert_str(at, &insert);
        assert_no_panic(&text);
    }
}

#[test]
fn webhook_records_and_events_are_checked() {
    let text = format!(
        "{VALID}webhooks:
  scheme: github
  event_type: [{{ header: X-Event }}, {{ path: \"$.action[\" }}]
  routing: {{ source: {{ path: \"$$\" }}, config_field: org }}
  events:
    - {{ type: ping, acknowledge_only: true, emit: {{ type: pinged }} }}
    - type: member.added
      upsert: {{ stream: users, records: \"$.member\" }}
      delete: {{ stream: groups, records: \"$.member[\" }}
      emit: {{ type: \"x.{{{{ secrets.token }}}}\", data: \"$.member[\" }}
    - type: member.removed
      delete: {{ stream: users, records: \"$.member\" }}
      emit: {{ type: \"{{{{ config.org }}}}.{{{{ event.type }}}}\", data: \"$.member\" }}
"
    );
    let found = problems(&text);
    let mut paths: Vec<&str> = found.iter().filter_map(|p| p.path.as_deref()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "webhooks.event_type[1].path",
            "webhooks.events[0].acknowledge_only",
            "webhooks.events[1].delete.records",
            "webhooks.events[1].delete.stream",
            "webhooks.events[1].emit.data",
            "webhooks.events[1].emit.type",
            "webhooks.routing[0].source.path",
        ],
        "{found:?}"
    );
    // The last rule is sound, and so is a manifest without the broken ones.
    let sound = text
        .replace("{ path: \"$.action[\" }", "{ path: \"$.action\" }")
        .replace("path: \"$$\"", "path: \"$.org\"")
        .replace(", emit: { type: pinged }", "")
        .replace(
            "stream: groups, records: \"$.member[\"",
            "stream: users, records: \"$.member\"",
        )
        .replace(
            "x.{{ secrets.token }}\", data: \"$.member[\"",
            "x.added\", data: \"$.member\"",
        );
    if let Err(error) = manifest::load(&sound, "test.yaml") {
        panic!("{error}");
    }
}
