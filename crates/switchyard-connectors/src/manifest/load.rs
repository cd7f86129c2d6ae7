//! Loading a manifest: YAML into the typed model (serde reports unknown fields and wrong
//! types with their line and column), then the checks serde cannot make.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde_json::Value;
use serde_json_path::JsonPath;

use super::check::{CheckSpec, ScopeSource};
use super::locate::{locate, parse_path};
use super::{
    AuthMode, CursorLocation, EndpointClass, ErrorAction, ErrorRule, Incremental, Manifest,
    Pagination, PartitionSpec, RequestSpec, TokenExchange,
};
use crate::template;

/// Everything wrong with one manifest.
#[derive(Debug, thiserror::Error)]
pub struct ManifestError {
    /// Where it came from (a file path, or `builtin:github`).
    pub origin: String,
    pub problems: Vec<ManifestProblem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{problem}", self.origin)?;
        }
        Ok(())
    }
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestProblem {
    /// The field (`streams[1].pagination.cursor_path`); `None` for a YAML syntax error.
    pub path: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ManifestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: ")?,
            (Some(line), None) => write!(f, "{line}: ")?,
            _ => write!(f, " ")?,
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Parses and checks a manifest.
///
/// # Errors
/// Every problem found, each with its line and column where the text has them.
pub fn load(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
    let manifest: Manifest = serde_norway::from_str(text).map_err(|error| {
        let location = error.location();
        ManifestError {
            origin: origin.to_owned(),
            problems: vec![ManifestProblem {
                path: None,
                line: location.as_ref().map(|l| l.line()),
                column: location.as_ref().map(|l| l.column()),
                message: error
                    .to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            }],
        }
    })?;
    let mut problems = Problems::default();
    check(&manifest, &mut problems);
    if problems.0.is_empty() {
        return Ok(manifest);
    }
    Err(ManifestError {
        origin: origin.to_owned(),
        problems: problems
            .0
            .into_iter()
            .map(|(path, message)| {
                let location = locate(text, &parse_path(&path));
                ManifestProblem {
                    line: location.map(|l| l.0),
                    column: location.map(|l| l.1),
                    path: Some(path),
                    message,
                }
            })
            .collect(),
    })
}

/// The manifest's JSON Schema (2020-12), generated from the types the loader reads.
pub fn json_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Manifest)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "$id".into(),
            Value::String("https://switchyard.dev/schemas/manifest.schema.json".into()),
        );
    }
    schema
}

/// The credential fields a template reads (`{{ secrets.key }}` → `key`).
pub(super) fn secret_names(template: &str) -> Vec<String> {
    template::variables(template)
        .into_iter()
        .filter_map(|name| name.strip_prefix("secrets.").map(str::to_owned))
        .collect()
}

#[derive(Default)]
struct Problems(Vec<(String, String)>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push((path.into(), message.into()));
    }

    fn template(&mut self, path: &str, text: &str) {
        if let Err(error) = template::check(text) {
            self.add(path, error.reason);
        }
    }

    fn json_path(&mut self, path: &str, text: &str) {
        if let Err(error) = JsonPath::parse(text) {
            self.add(
                path,
                format!("`{text}` is not a JSONPath (RFC 9535): {error}"),
            );
        }
    }

    fn request(&mut self, path: &str, request: &RequestSpec) {
        const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
        if !METHODS.contains(&request.method.as_str()) {
            self.add(
                format!("{path}.method"),
                format!("`{}` is not one of {METHODS:?}", request.method),
            );
        }
        if !request.path.starts_with('/') {
            self.add(format!("{path}.path"), "must start with `/`");
        }
        self.template(&format!("{path}.path"), &request.path);
        for (name, value) in &request.query {
            self.template(&format!("{path}.query.{name}"), value);
        }
        for (name, value) in &request.headers {
            self.template(&format!("{path}.headers.{name}"), value);
        }
        if let Some(body) = &request.body {
            self.body_templates(&format!("{path}.body"), body);
        }
    }

    /// A keyed class needs a rate of its own (else every key would share `rate`'s budget
    /// in name only), and its key may read only what each call has: `roots`.
    fn endpoint_class(
        &mut self,
        path: &str,
        class: &EndpointClass,
        roots: &[&str],
        manifest: &Manifest,
    ) {
        let Some(key) = class.key() else {
            return;
        };
        let rated = manifest
            .limits
            .as_ref()
            .and_then(|limits| limits.get("endpoint_rates"))
            .and_then(Value::as_object)
            .is_some_and(|rates| rates.contains_key(class.name()));
        if !rated {
            self.add(
                format!("{path}.name"),
                format!(
                    "a keyed class needs its rate: `limits.endpoint_rates.{}`",
                    class.name()
                ),
            );
        }
        let key_path = format!("{path}.key");
        if let Err(error) = template::check(key) {
            self.add(key_path, error.reason);
            return;
        }
        let reads = |name: &str, root: &str| {
            name == root
                || name
                    .strip_prefix(root)
                    .is_some_and(|rest| rest.starts_with('.'))
        };
        for name in template::variables(key) {
            if !roots.iter().any(|root| reads(&name, root)) {
                self.add(
                    key_path.clone(),
                    format!("reads `{name}`; a key reads only {roots:?}"),
                );
            }
        }
    }

    fn errors(&mut self, path: &str, rules: &[ErrorRule]) {
        for (i, rule) in rules.iter().enumerate() {
            if let Some(when) = &rule.when {
                self.json_path(&format!("{path}[{i}].when.path"), &when.path);
            }
            if let Some(message_path) = &rule.message_path {
                self.json_path(&format!("{path}[{i}].message_path"), message_path);
            }
            if rule.action == ErrorAction::Ignore && rule.error.is_some() {
                self.add(
                    format!("{path}[{i}].error"),
                    "an ignored answer reports no error: `error` needs `action: fail` or `retry`",
                );
            }
        }
    }

    fn body_templates(&mut self, path: &str, body: &Value) {
        match body {
            Value::String(text) => self.template(path, text),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.body_templates(&format!("{path}[{i}]"), item);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    self.body_templates(&format!("{path}.{key}"), item);
                }
            }
            _ => {}
        }
    }
}

/// A check's `modes` name declared auth modes, and `scopes: token_answer` is used only for
/// modes whose token answer says what it grants.
/// An `aws_sigv4` mode's scope: a signing name as AWS writes them, and a region that is one
/// or a template over the connection config (never over the secrets).
fn aws_sigv4_problems(i: usize, spec: &super::AwsSigV4Spec, problems: &mut Problems) {
    let is_name = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !is_name(&spec.service) {
        problems.add(
            format!("auth[{i}].service"),
            "a signing name (`iam`, `sts`, `s3`): lowercase letters, digits and `-`",
        );
    }
    let at = format!("auth[{i}].region");
    if spec.region.contains("{{") || spec.region.contains("{%") {
        problems.template(&at, &spec.region);
        if template::variables(&spec.region)
            .iter()
            .any(|name| name == "secrets" || name.starts_with("secrets."))
        {
            problems.add(at, "reads the connection config only, never `secrets`");
        }
    } else if !is_name(&spec.region) {
        problems.add(
            at,
            "a region (`us-east-1`) or a template over the config (`{{ config.region }}`)",
        );
    }
}

fn check_scoping(manifest: &Manifest, check: &CheckSpec, problems: &mut Problems) {
    for (kind, own) in &check.modes {
        let at = format!("check.modes.{kind}");
        let modes: Vec<&AuthMode> = manifest.auth.iter().filter(|m| m.kind() == kind).collect();
        if modes.is_empty() {
            problems.add(
                at.clone(),
                format!("the manifest has no auth mode of type `{kind}`"),
            );
        } else if matches!(own.scopes, Some(ScopeSource::Token(_)))
            && modes.iter().any(|m| !m.token_answer_grants())
        {
            problems.add(format!("{at}.scopes"), TOKEN_ANSWER_UNSUPPORTED);
        }
    }
    let uses_own = |mode: &&AuthMode| !check.modes.contains_key(mode.kind());
    if matches!(check.scopes, Some(ScopeSource::Token(_)))
        && manifest
            .auth
            .iter()
            .filter(uses_own)
            .any(|m| !m.token_answer_grants())
    {
        problems.add("check.scopes", TOKEN_ANSWER_UNSUPPORTED);
    }
}

const TOKEN_ANSWER_UNSUPPORTED: &str = "`token_answer` needs a mode that mints its token and \
     reads what it grants: OAuth client credentials, a `jwt_bearer` assertion grant, or a \
     bearer exchange with `granted_path`";

fn check(manifest: &Manifest, problems: &mut Problems) {
    let id_ok = manifest.id.len() <= 63
        && manifest.id.starts_with(|c: char| c.is_ascii_lowercase())
        && manifest
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        problems.add(
            "id",
            "lowercase letters, digits and dashes, starting with a letter, at most 63",
        );
    }
    if let Err(error) = semver::Version::parse(&manifest.version) {
        problems.add(
            "version",
            format!("`{}` is not a semantic version: {error}", manifest.version),
        );
    }
    problems.template("base_url", &manifest.base_url);
    for (name, value) in &manifest.headers {
        problems.template(&format!("headers.{name}"), value);
    }
    if manifest.config.get("type").and_then(Value::as_str) != Some("object") {
        problems.add("config", "must be a JSON Schema with `type: object`");
    } else if let Err(error) = jsonschema::validator_for(&manifest.config) {
        problems.add("config", format!("not a valid JSON Schema: {error}"));
    }
    if manifest.auth.is_empty() {
        problems.add(
            "auth",
            "at least one auth mode (`type: bearer`, `api_key`…)",
        );
    }
    let mut kinds = HashSet::new();
    for (i, mode) in manifest.auth.iter().enumerate() {
        if !kinds.insert(mode.kind()) {
            problems.add(
                format!("auth[{i}]"),
                format!("a second `{}` mode", mode.kind()),
            );
        }
        match mode {
            AuthMode::CustomHeaders { headers } => {
                for (name, value) in headers {
                    problems.template(&format!("auth[{i}].headers.{name}"), value);
                }
            }
            AuthMode::OAuth2(spec) => {
                problems.template(&format!("auth[{i}].token_url"), &spec.token_url);
                for (name, path) in &spec.config_from_token {
                    let field = format!("auth[{i}].config_from_token.{name}");
                    problems.json_path(&field, path);
                    if ["access_token", "refresh_token", "id_token"]
                        .iter()
                        .any(|secret| path.contains(secret))
                    {
                        problems.add(field, "must not read a token into the config");
                    }
                }
            }
            AuthMode::JwtBearer(spec) => {
                for (name, value) in &spec.claims {
                    problems.template(&format!("auth[{i}].claims.{name}"), value);
                }
                if spec.lifetime.0.is_zero() {
                    problems.add(format!("auth[{i}].lifetime"), "must be longer than zero");
                }
                if let Some(exchange) = &spec.exchange {
                    problems.template(&format!("auth[{i}].exchange.url"), exchange.url());
                    match exchange {
                        TokenExchange::Bearer {
                            token_path,
                            expires_at_path,
                            granted_path,
                            ..
                        } => {
                            problems
                                .json_path(&format!("auth[{i}].exchange.token_path"), token_path);
                            let optional = [
                                ("expires_at_path", expires_at_path),
                                ("granted_path", granted_path),
                            ];
                            for (name, path) in optional {
                                if let Some(path) = path {
                                    problems.json_path(&format!("auth[{i}].exchange.{name}"), path);
                                }
                            }
                        }
                        // RFC 7523 §3: the token endpoint checks who issued the assertion
                        // and that it is meant for it.
                        TokenExchange::Assertion { .. } => {
                            for claim in ["iss", "aud"] {
                                if !spec.claims.contains_key(claim) {
                                    problems.add(
                                        format!("auth[{i}].claims"),
                                        format!(
                                            "`style: assertion` needs an `{claim}` claim (RFC 7523 §3)"
                                        ),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            AuthMode::AwsSigV4(spec) => aws_sigv4_problems(i, spec, problems),
            _ => {}
        }
    }
    if let Some(check) = &manifest.check {
        problems.request("check.request", &check.request);
        check_scoping(manifest, check, problems);
    }
    problems.errors("errors", &manifest.errors);
    if let Some(limits) = &manifest.limits
        && let Err(error) = switchyard_http::ProviderPolicy::from_manifest(limits)
    {
        problems.add("limits", error.to_string());
    }

    let names: Vec<&str> = manifest.streams.iter().map(|s| s.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    for (i, stream) in manifest.streams.iter().enumerate() {
        let at = format!("streams[{i}]");
        if !seen.insert(stream.name.as_str()) {
            problems.add(
                format!("{at}.name"),
                format!("a second stream `{}`", stream.name),
            );
        }
        problems.request(&format!("{at}.request"), &stream.request);
        if let Some(class) = &stream.endpoint_class {
            let roots: &[&str] = match stream.partitions {
                Some(_) => &["config", "partition.value"],
                None => &["config"],
            };
            problems.endpoint_class(&format!("{at}.endpoint_class"), class, roots, manifest);
        }
        problems.json_path(&format!("{at}.records"), &stream.records);
        if stream.primary_key.is_empty() {
            problems.add(format!("{at}.primary_key"), "at least one JSONPath");
        }
        for (k, key) in stream.primary_key.iter().enumerate() {
            problems.json_path(&format!("{at}.primary_key[{k}]"), key);
        }
        match &stream.pagination {
            Pagination::Cursor { cursor_path, .. } => {
                problems.json_path(&format!("{at}.pagination.cursor_path"), cursor_path);
            }
            Pagination::NextUrl { next_url_path } => {
                problems.json_path(&format!("{at}.pagination.next_url_path"), next_url_path);
            }
            Pagination::Offset {
                total_path: Some(p),
                ..
            } => {
                problems.json_path(&format!("{at}.pagination.total_path"), p);
            }
            Pagination::Page {
                total_pages_path: Some(p),
                ..
            } => {
                problems.json_path(&format!("{at}.pagination.total_pages_path"), p);
            }
            Pagination::GraphqlRelay { page_info_path, .. } => {
                problems.json_path(&format!("{at}.pagination.page_info_path"), page_info_path);
                if stream.request.body.is_none() {
                    problems.add(
                        format!("{at}.request.body"),
                        "a GraphQL stream needs a body with `query`",
                    );
                }
            }
            _ => {}
        }
        match &stream.incremental {
            Incremental::UpdatedSince {
                cursor_field,
                start,
                ..
            } => {
                problems.json_path(&format!("{at}.incremental.cursor_field"), cursor_field);
                if let Some(start) = start
                    && time::OffsetDateTime::parse(
                        start,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .is_err()
                {
                    problems.add(
                        format!("{at}.incremental.start"),
                        format!("`{start}` is not an RFC 3339 time"),
                    );
                }
            }
            Incremental::DeltaToken {
                delta_link_path,
                removed_path,
            } => {
                problems.json_path(
                    &format!("{at}.incremental.delta_link_path"),
                    delta_link_path,
                );
                if let Some(p) = removed_path {
                    problems.json_path(&format!("{at}.incremental.removed_path"), p);
                }
            }
            _ => {}
        }
        if let Pagination::Cursor {
            stop_path: Some(p), ..
        }
        | Pagination::Offset {
            stop_path: Some(p), ..
        }
        | Pagination::Page {
            stop_path: Some(p), ..
        } = &stream.pagination
        {
            problems.json_path(&format!("{at}.pagination.stop_path"), p);
        }
        if let Pagination::Cursor {
            location: CursorLocation::Body,
            ..
        } = &stream.pagination
        {
            if stream.request.method == "GET" {
                problems.add(
                    format!("{at}.pagination.location"),
                    "a body cursor needs a request method with a body (`POST`)",
                );
            }
            if stream.request.body.as_ref().is_some_and(|b| !b.is_object()) {
                problems.add(
                    format!("{at}.request.body"),
                    "a body cursor needs a JSON object as the body",
                );
            }
        }
        problems.errors(&format!("{at}.errors"), &stream.errors);
        if let Some(field) = stream.partitions.as_ref().and_then(PartitionSpec::field)
            && field.trim().is_empty()
        {
            problems.add(format!("{at}.partitions.field"), "an empty record key");
        }
        if let Some(PartitionSpec::Stream {
            stream: parent,
            value,
            ..
        }) = &stream.partitions
        {
            problems.json_path(&format!("{at}.partitions.value"), value);
            match manifest.stream(parent) {
                None => problems.add(format!("{at}.partitions.stream"), format!("no stream `{parent}` (streams: {names:?})")),
                Some(p) if p.name == stream.name || p.partitions.is_some() => problems.add(
                    format!("{at}.partitions.stream"),
                    format!("`{parent}` is itself partitioned or is this stream: one level of partitions"),
                ),
                Some(_) => {}
            }
        }
        if let Some(schema) = &stream.schema
            && let Err(error) = jsonschema::validator_for(schema)
        {
            problems.add(
                format!("{at}.schema"),
                format!("not a valid JSON Schema: {error}"),
            );
        }
        if let Some(mapping) = &stream.unified {
            if let Err(error) = crate::unified::check(mapping) {
                problems.add(format!("{at}.unified"), error.to_string());
            }
            for (field, related) in related_fields(mapping) {
                if manifest.stream(&related.stream).is_none() {
                    problems.add(
                        format!("{at}.unified.fields.{field}.related.stream"),
                        format!("no stream `{}` (streams: {names:?})", related.stream),
                    );
                }
            }
        }
    }

    let mut seen = BTreeSet::new();
    for (i, action) in manifest.actions.iter().enumerate() {
        let at = format!("actions[{i}]");
        if !seen.insert(action.name.as_str()) {
            problems.add(
                format!("{at}.name"),
                format!("a second action `{}`", action.name),
            );
        }
        problems.request(&format!("{at}.request"), &action.request);
        if let Some(class) = &action.endpoint_class {
            let roots = ["input", "config"];
            problems.endpoint_class(&format!("{at}.endpoint_class"), class, &roots, manifest);
        }
        if let Err(error) = jsonschema::validator_for(&action.input) {
            problems.add(
                format!("{at}.input"),
                format!("not a valid JSON Schema: {error}"),
            );
        }
        if let Some(output) = &action.output {
            problems.json_path(&format!("{at}.output"), output);
        }
        if let Some(mapping) = &action.unified {
            if let Err(error) = crate::unified::CompiledActionMapping::new(mapping) {
                problems.add(format!("{at}.unified"), error.to_string());
            }
            for (field, _) in related_fields(&mapping.spec) {
                problems.add(
                    format!("{at}.unified.fields.{field}"),
                    "`related` reads a connection's stored records; an action's output maps without them",
                );
            }
        }
    }

    if let Some(webhooks) = &manifest.webhooks {
        if !switchyard_webhooks_scheme_known(&webhooks.scheme) {
            problems.add(
                "webhooks.scheme",
                format!(
                    "`{}` is not a verification scheme of the inbound gateway",
                    webhooks.scheme
                ),
            );
        }
        if let Some(path) = &webhooks.event_types_path {
            problems.json_path("webhooks.event_types_path", path);
        }
        check_webhook_sources(problems, webhooks);
        for (i, rule) in webhooks.events.iter().enumerate() {
            let at = format!("webhooks.events[{i}]");
            for stream in &rule.sync {
                if manifest.stream(stream).is_none() {
                    problems.add(
                        format!("{at}.sync"),
                        format!("no stream `{stream}` (streams: {names:?})"),
                    );
                }
            }
            check_webhook_rule(problems, manifest, &at, rule, &names);
        }
    }
}

/// The paths of a webhook spec's value sources parse.
fn check_webhook_sources(problems: &mut Problems, webhooks: &super::WebhookSpec) {
    let mut check = |at: String, source: &super::ValueSource| {
        if let super::ValueSource::Body { path, .. } = source {
            problems.json_path(&at, path);
        }
    };
    for (i, part) in webhooks.event_type.iter().enumerate() {
        check(format!("webhooks.event_type[{i}].path"), part);
    }
    if let Some(source) = &webhooks.delivery_id {
        check("webhooks.delivery_id.path".to_owned(), source);
    }
    if let Some(routing) = &webhooks.routing {
        for (i, rule) in routing.rules().iter().enumerate() {
            check(format!("webhooks.routing[{i}].source.path"), &rule.source);
        }
    }
}

/// A rule's `upsert`, `delete` and `emit`: streams exist, paths parse, templates use only
/// what the webhook context has.
fn check_webhook_rule(
    problems: &mut Problems,
    manifest: &Manifest,
    at: &str,
    rule: &super::WebhookEventRule,
    names: &[&str],
) {
    let acts = rule.upsert.is_some() || rule.delete.is_some() || rule.emit.is_some();
    if rule.acknowledge_only && (acts || !rule.sync.is_empty()) {
        problems.add(
            format!("{at}.acknowledge_only"),
            "an acknowledged-only event does nothing else: drop `sync`, `upsert`, `delete` and `emit`",
        );
    }
    for (field, records) in [("upsert", &rule.upsert), ("delete", &rule.delete)] {
        let Some(records) = records else { continue };
        if manifest.stream(&records.stream).is_none() {
            problems.add(
                format!("{at}.{field}.stream"),
                format!("no stream `{}` (streams: {names:?})", records.stream),
            );
        }
        problems.json_path(&format!("{at}.{field}.records"), &records.records);
    }
    if let Some(emit) = &rule.emit {
        problems.template(&format!("{at}.emit.type"), &emit.event_type);
        for variable in template::variables(&emit.event_type) {
            let root = variable.split('.').next().unwrap_or_default();
            if root != "event" && root != "config" {
                problems.add(
                    format!("{at}.emit.type"),
                    format!("`{variable}` is not in a webhook's context (`event`, `config`)"),
                );
            }
        }
        if let Some(data) = &emit.data {
            problems.json_path(&format!("{at}.emit.data"), data);
        }
    }
}

/// The `related` fields of a unified mapping.
fn related_fields(
    mapping: &crate::unified::MappingSpec,
) -> impl Iterator<Item = (&String, &crate::unified::Related)> {
    mapping
        .fields
        .iter()
        .filter_map(|(field, form)| match form {
            crate::unified::FieldMapping::Related(related) => Some((field, related)),
            _ => None,
        })
}

fn switchyard_webhooks_scheme_known(scheme: &str) -> bool {
    switchyard_webhooks::Scheme::ALL
        .iter()
        .any(|known| known.as_str() == scheme)
}

#[cfg(test)]
mod endpoint_class_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A manifest with a `post` class rated, a partitioned stream and an action; `stream`
    /// and `action` are their `endpoint_class` lines.
    fn manifest(stream: &str, action: &str) -> String {
        format!(
            "\
id: example
name: Example
version: 1.0.0
base_url: https://api.example.test
auth:
  - type: bearer
limits:
  endpoint_rates:
    post: {{ per_second: 1, burst: 1 }}
streams:
  - name: channels
    request: {{ path: /channels }}
    records: $.channels[*]
    primary_key: [$.id]
    endpoint_class: channels
  - name: members
    request: {{ path: /members }}
    records: $.members[*]
    primary_key: [$.id]
    partitions: {{ stream: channels, value: $.id }}
    endpoint_class: {stream}
actions:
  - name: post
    request: {{ method: POST, path: /post }}
    endpoint_class: {action}
"
        )
    }

    fn problems(stream: &str, action: &str) -> Vec<(String, String)> {
        match load(&manifest(stream, action), "test.yaml") {
            Ok(_) => Vec::new(),
            Err(error) => error
                .problems
                .into_iter()
                .map(|p| (p.path.unwrap_or_default(), p.message))
                .collect(),
        }
    }

    #[test]
    fn plain_and_keyed_classes_load() {
        let text = manifest(
            r#"{ name: post, key: "{{ config.team }}-{{ partition.value }}" }"#,
            r#"{ name: post, key: "{{ input.channel }}" }"#,
        );
        let loaded = load(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            loaded.streams[0].endpoint_class,
            Some(EndpointClass::Name("channels".into()))
        );
        let keyed = loaded.actions[0].endpoint_class.as_ref().unwrap();
        assert_eq!(
            (keyed.name(), keyed.key()),
            ("post", Some("{{ input.channel }}"))
        );
        assert!(problems("members", "post").is_empty());
    }

    #[test]
    fn a_keyed_class_needs_a_rate_and_a_key_over_what_each_call_has() {
        let found = problems(
            r#"{ name: unrated, key: "{{ input.channel }}" }"#,
            r#"{ name: post, key: "{{ secrets.token }}{{ checkpoint.since }}" }"#,
        );
        let at = |path: &str| -> Vec<&str> {
            found
                .iter()
                .filter(|(p, _)| p == path)
                .map(|(_, m)| m.as_str())
                .collect()
        };
        let unrated = at("streams[1].endpoint_class.name");
        assert!(
            unrated[0].contains("limits.endpoint_rates.unrated"),
            "{found:?}"
        );
        assert!(
            at("streams[1].endpoint_class.key")[0].contains("`input.channel`"),
            "{found:?}"
        );
        let action_key = at("actions[0].endpoint_class.key");
        assert_eq!(action_key.len(), 2, "{found:?}");
        assert!(action_key.iter().any(|m| m.contains("`secrets.token`")));
        assert!(action_key.iter().any(|m| m.contains("`checkpoint.since`")));
        assert_eq!(found.len(), 4, "{found:?}");
        // A template that does not parse; the partition's record is not the key's to read.
        let found = problems(
            r#"{ name: post, key: "{{ partition.record.name }}" }"#,
            r#"{ name: post, key: "{{ input.channel" }"#,
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, "streams[1].endpoint_class.key");
        assert_eq!(found[1].0, "actions[0].endpoint_class.key");
    }

    #[test]
    fn a_stream_without_partitions_keys_by_config_only() {
        let text = manifest("post", "post").replace(
            "    endpoint_class: channels",
            "    endpoint_class: { name: post, key: \"{{ partition.value }}\" }",
        );
        let error = load(&text, "test.yaml").unwrap_err();
        assert_eq!(
            error.problems[0].path.as_deref(),
            Some("streams[0].endpoint_class.key"),
            "{error}"
        );
    }
}
