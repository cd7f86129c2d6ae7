//! Loading a manifest: YAML into the typed model (serde reports unknown fields and wrong
//! types with their line and column), then the checks serde cannot make.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde_json::Value;
use serde_json_path::JsonPath;

use super::locate::{locate, parse_path};
use super::{
    AuthMode, CursorLocation, ErrorAction, ErrorRule, Incremental, Manifest, Pagination,
    PartitionSpec, RequestSpec, TokenExchange,
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
                            ..
                        } => {
                            problems
                                .json_path(&format!("auth[{i}].exchange.token_path"), token_path);
                            if let Some(path) = expires_at_path {
                                problems.json_path(
                                    &format!("auth[{i}].exchange.expires_at_path"),
                                    path,
                                );
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
            _ => {}
        }
    }
    if let Some(check) = &manifest.check {
        problems.request("check.request", &check.request);
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
        for (i, rule) in webhooks.events.iter().enumerate() {
            for stream in &rule.sync {
                if manifest.stream(stream).is_none() {
                    problems.add(
                        format!("webhooks.events[{i}].sync"),
                        format!("no stream `{stream}` (streams: {names:?})"),
                    );
                }
            }
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
