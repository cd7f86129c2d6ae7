//! Switchyard's configuration.
//!
//! The defaults are a commented TOML file embedded in the binary ([`DEFAULTS_TOML`], printed
//! by `switchyard config defaults`), so the documentation of every setting ships with it.
//! [`ConfigLoader`] layers: defaults, then an optional file, then `SWITCHYARD_*` environment
//! variables (nested keys joined by `__`), then command-line overrides; [`Config::validate`]
//! checks what serde cannot.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine;
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The commented default configuration, embedded in the binary.
pub const DEFAULTS_TOML: &str = include_str!("default.toml");

/// Environment variables with the `SWITCHYARD_` prefix that are not settings of the server:
/// the CLI's server URL and token, the config file path, the new key of
/// `vault rotate-kek --to env`, and the test suite's variables.
const NON_SETTING_VARIABLES: &[&str] = &["url", "token", "config", "vault_new_kek_base64"];

/// Shortest admin token accepted, so a configured token is not guessable.
const MIN_ADMIN_TOKEN_LEN: usize = 32;
/// The prefix of tenant API keys, which an admin token must not share.
const TENANT_KEY_PREFIX: &str = "sy_";

/// The whole configuration of a Switchyard process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    /// May hold a password, hence secret.
    pub database_url: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    #[serde(deserialize_with = "deserialize_roles")]
    pub roles: BTreeSet<ProcessRole>,
    pub log_format: LogFormat,
    pub database: DatabaseConfig,
    pub api: ApiConfig,
    pub shutdown: ShutdownConfig,
    pub retention: RetentionConfig,
    pub vault: VaultConfig,
    pub worker: WorkerConfig,
    /// Where raw payloads and bodies are stored (`docs/blob-storage.md`).
    #[serde(default)]
    pub blob: switchyard_blob::BlobConfig,
    pub inbound: InboundConfig,
    pub outbound: OutboundConfig,
    pub connectors: ConnectorsConfig,
    pub oauth: OAuthConfig,
    /// OpenTelemetry trace export (`docs/configuration.md`); off unless an endpoint is set.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// OpenTelemetry trace export over OTLP/HTTP. The standard `OTEL_*` variables configure it as
/// well; a setting here wins over its variable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`); spans go to
    /// `{otlp_endpoint}/v1/traces`. Unset: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, and with neither, no export.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute. Unset: `OTEL_SERVICE_NAME`, else `switchyard`.
    #[serde(default)]
    pub service_name: Option<String>,
}

/// Connectors: where manifests come from beyond the built-in ones, and provider calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorsConfig {
    /// A directory of manifests (`*.yaml`) loaded after the built-in ones; one with a
    /// built-in's id replaces it.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// How often the directory is checked for changed manifests (a change that does not load
    /// keeps the previous set and is logged).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Largest action output returned in a response; a larger one fails the action with
    /// `output_too_large` (the provider call happened: its run says so).
    pub max_action_output_bytes: usize,
    /// Where provider rate budgets are kept: unset, in this process's memory; a Redis URL
    /// (`redis://host:6379/0`, `rediss://…`), in Redis, shared by every process using it.
    #[serde(default)]
    pub rate_limit_redis_url: Option<SecretString>,
    /// Prefix of the Redis keys of those budgets (processes sharing budgets use the same).
    pub rate_limit_key_prefix: String,
}

/// OAuth connect flows and token refresh (`docs/oauth.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The redirect URI registered at providers. Unset: `{inbound.public_url}/oauth/callback`.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// An access token is refreshed this long before it expires, on use and by the scheduled
    /// refresh.
    #[serde(with = "humantime_serde")]
    pub refresh_margin: Duration,
    /// A token not refreshed for this long is refreshed by the scheduled job even if unused,
    /// so providers that revoke idle refresh tokens do not.
    #[serde(with = "humantime_serde")]
    pub idle_refresh_after: Duration,
    /// How often the scheduled job looks for tokens to refresh.
    #[serde(with = "humantime_serde")]
    pub refresh_check_interval: Duration,
    /// Lifetime of a connect session unless its request says otherwise.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// How long an authorization request may take, from the redirect to the callback.
    #[serde(with = "humantime_serde")]
    pub state_ttl: Duration,
    /// How long one token endpoint request may take, answer included (code exchange,
    /// refresh, client credentials, JWT exchanges); a timeout counts as a transient failure.
    #[serde(with = "humantime_serde")]
    pub token_timeout: Duration,
}

/// The inbound webhook gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// The URL providers reach this server at (scheme, host, optional path prefix), used for
    /// `ingest_url` and for schemes that sign the URL (Twilio). Unset: `http://{listen}`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The largest body a source accepts unless its `options.body_limit_bytes` says otherwise.
    pub body_limit_bytes: usize,
    /// How long a delivery id is remembered for dedup unless a source says otherwise; longer
    /// than every provider's retry horizon.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// How long a process keeps a source (and its secrets) in memory between reads.
    #[serde(with = "humantime_serde")]
    pub source_cache_ttl: Duration,
}

/// Calls Switchyard makes to other hosts (webhook deliveries, SNS confirmations, key fetches).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// CIDRs exempt from the SSRF guard's deny list, e.g. `10.1.0.0/16` for an internal
    /// receiver. A list, or a comma-separated string from the environment.
    #[serde(deserialize_with = "deserialize_list")]
    pub allow_cidrs: Vec<String>,
    /// Allow `http://` targets (default: https only).
    pub allow_http: bool,
    /// Per delivery request, connect to the end of the kept response body.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Deliveries one process holds at once.
    pub concurrency: usize,
    /// Requests in flight to one endpoint at most.
    pub per_endpoint_concurrency: usize,
    /// Waits before each attempt; the first is the wait before the first attempt.
    #[serde(deserialize_with = "deserialize_durations")]
    pub retry_schedule: Vec<Duration>,
    /// Each wait varies by up to this fraction either way (0 to 1).
    pub retry_jitter: f64,
    /// An endpoint failing without a success for this long is disabled.
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    /// Default grace period of a signing secret rotation.
    #[serde(with = "humantime_serde")]
    pub rotation_grace: Duration,
    /// A claimed delivery stays with its process for two timeouts, a rate-limit wait and this
    /// margin; after a crash its deliveries are sent again once that has passed.
    #[serde(with = "humantime_serde")]
    pub lease_margin: Duration,
}

/// Durations as a list or a comma-separated string, each in humantime form (`5s`, `2h`).
fn deserialize_durations<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Duration>, D::Error> {
    deserialize_list(deserializer)?
        .iter()
        .map(|text| {
            humantime_serde::re::humantime::parse_duration(text).map_err(serde::de::Error::custom)
        })
        .collect()
}

/// A list as TOML or a comma-separated string (how lists arrive from the environment).
fn deserialize_list<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Items(Vec<String>),
        Text(String),
    }
    Ok(match List::deserialize(deserializer)? {
        List::Items(items) => items,
        List::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// How a process with the `worker` role claims and runs jobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Jobs running at once in this process.
    pub concurrency: usize,
    /// Most jobs one claim query takes.
    pub claim_batch: u32,
    /// Most running jobs of one tenant in this process; 0: no cap.
    pub tenant_share: usize,
    /// How long a claim lasts without a heartbeat: a dead process's jobs wait this long.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Most running jobs of a kind in this process, by kind name.
    #[serde(default)]
    pub kind_concurrency: std::collections::BTreeMap<String, usize>,
}

/// How long data classes are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(with = "humantime_serde")]
    pub deleted_tenants: Duration,
    /// Finished runs and their attempts.
    #[serde(with = "humantime_serde")]
    pub runs: Duration,
    /// Jobs that succeeded (the run, if any, keeps the user-visible record).
    #[serde(with = "humantime_serde")]
    pub jobs_succeeded: Duration,
    /// Jobs that exhausted their attempts, kept for inspection and re-queueing.
    #[serde(with = "humantime_serde")]
    pub jobs_dead: Duration,
    /// Inbound event metadata.
    #[serde(with = "humantime_serde")]
    pub inbound_events: Duration,
    /// Inbound raw payloads (encrypted request segments in the blob store), by day.
    #[serde(with = "humantime_serde")]
    pub inbound_payloads: Duration,
    /// Finished outbound deliveries, their attempts and response bodies, finished events.
    #[serde(with = "humantime_serde")]
    pub webhook_deliveries: Duration,
    /// Provider call captures (redacted, encrypted, in the blob store), by day.
    #[serde(with = "humantime_serde")]
    pub provider_captures: Duration,
}

/// A part of Switchyard a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessRole {
    /// The HTTP management API.
    Api,
    /// Claims and runs jobs.
    Worker,
    /// Enqueues the jobs of recurring schedules.
    Scheduler,
}

impl std::str::FromStr for ProcessRole {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "api" => Ok(ProcessRole::Api),
            "worker" => Ok(ProcessRole::Worker),
            "scheduler" => Ok(ProcessRole::Scheduler),
            other => Err(format!(
                "unknown role `{other}`: expected `api`, `worker` or `scheduler`"
            )),
        }
    }
}

/// Roles as a TOML list or a comma-separated string (how they arrive from the environment).
fn deserialize_roles<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeSet<ProcessRole>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Roles {
        List(Vec<String>),
        Text(String),
    }
    let names = match Roles::deserialize(deserializer)? {
        Roles::List(names) => names,
        Roles::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    names
        .iter()
        .filter(|name| !name.trim().is_empty())
        .map(|name| name.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub body_limit_bytes: usize,
    pub default_page_limit: u32,
    pub max_page_limit: u32,
    #[serde(with = "humantime_serde")]
    pub idempotency_ttl: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
}

/// The credential vault.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    #[serde(with = "humantime_serde")]
    pub key_cache_ttl: Duration,
    pub kek: KekSettings,
    /// During a KEK rotation: a KEK that unwraps but never wraps (the one being replaced or
    /// the one being introduced).
    pub secondary_kek: Option<KekSettings>,
}

/// Where a key-encryption key comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum KekSettings {
    /// A local key file; unset `path` means `<data_dir>/master.key`.
    File { path: Option<PathBuf> },
    /// Base64 of 32 random bytes.
    Env { key_base64: SecretString },
    /// A key in AWS KMS.
    AwsKms {
        key_id: String,
        region: Option<String>,
        endpoint_url: Option<String>,
    },
}

/// Settings given on the command line; they win over every other layer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CliOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<ProcessRole>>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer does not parse or holds an unknown key or a value of the wrong type. Figment's
    /// message names the key and where it came from (file or environment variable).
    #[error("invalid configuration: {0}")]
    Parse(Box<figment::Error>),

    /// The values parse but do not make sense together.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        ConfigError::Parse(Box::new(error))
    }
}

/// Builds a [`Config`] from its layers.
#[derive(Debug, Default)]
pub struct ConfigLoader {
    file: Option<PathBuf>,
    environment: bool,
    overrides: CliOverrides,
}

impl ConfigLoader {
    /// Defaults, environment and nothing else; add a file or overrides with the builders.
    pub fn new() -> Self {
        Self {
            environment: true,
            ..Self::default()
        }
    }

    /// Merges this TOML file over the defaults.
    pub fn file(mut self, path: Option<&Path>) -> Self {
        self.file = path.map(Path::to_path_buf);
        self
    }

    /// Leaves the `SWITCHYARD_*` environment out (for tests that build a config in code).
    pub fn without_environment(mut self) -> Self {
        self.environment = false;
        self
    }

    pub fn overrides(mut self, overrides: CliOverrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// The layered figment, for callers that add layers of their own (tests).
    pub fn figment(&self) -> Figment {
        let mut figment = Figment::from(Toml::string(DEFAULTS_TOML));
        if let Some(path) = &self.file {
            // `file_exact` fails on a missing file instead of silently skipping it.
            figment = figment.merge(Toml::file_exact(path));
        }
        if self.environment {
            figment = figment.merge(
                Env::prefixed("SWITCHYARD_")
                    .map(|key| {
                        // The issue-documented single-underscore names of two outbound
                        // settings, accepted beside the nested `OUTBOUND__…` forms.
                        match key.as_str().to_ascii_lowercase().as_str() {
                            "outbound_allow_cidrs" => "outbound__allow_cidrs".into(),
                            "outbound_allow_http" => "outbound__allow_http".into(),
                            _ => key.into(),
                        }
                    })
                    .split("__")
                    .ignore(NON_SETTING_VARIABLES)
                    .filter(|key| !key.as_str().to_ascii_lowercase().starts_with("test_")),
            );
        }
        figment.merge(Serialized::defaults(&self.overrides))
    }

    /// Loads and validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming every problem found.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::from_figment(&self.figment())
    }
}

impl Config {
    /// Extracts and validates a config from a prepared figment.
    ///
    /// # Errors
    /// [`ConfigError`] naming every problem found.
    pub fn from_figment(figment: &Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: addresses parse, limits are consistent.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] listing every problem, not only the first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "listen: `{}` is not an address and port such as 127.0.0.1:8080",
                self.listen
            ));
        }
        if self.roles.is_empty() {
            problems.push("roles: name at least one of `api`, `worker`, `scheduler`".to_owned());
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push("data_dir: must not be empty".to_owned());
        }
        if let Some(url) = &self.database_url {
            let scheme = url.expose_secret().split_once(':').map(|(s, _)| s);
            if !matches!(scheme, Some("sqlite" | "postgres" | "postgresql")) {
                // The URL may hold a password: name only what is wrong with it.
                problems
                    .push("database_url: must start with `sqlite:` or `postgres://`".to_owned());
            }
        }
        if let Some(url) = &self.connectors.rate_limit_redis_url {
            let scheme = url.expose_secret().split_once("://").map(|(s, _)| s);
            if !matches!(scheme, Some("redis" | "rediss")) {
                // The URL may hold a password: name only what is wrong with it.
                problems.push(
                    "connectors.rate_limit_redis_url: must start with `redis://` or `rediss://`"
                        .to_owned(),
                );
            }
        }
        if let Some(url) = &self.oauth.callback_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            problems.push("oauth.callback_url: must be an http(s) URL".to_owned());
        }
        for (name, value) in [
            ("oauth.session_ttl", self.oauth.session_ttl),
            ("oauth.state_ttl", self.oauth.state_ttl),
            (
                "oauth.refresh_check_interval",
                self.oauth.refresh_check_interval,
            ),
            ("oauth.token_timeout", self.oauth.token_timeout),
        ] {
            if value.is_zero() {
                problems.push(format!("{name}: must be longer than zero"));
            }
        }
        if let Some(token) = &self.admin_token {
            if token.expose_secret().len() < MIN_ADMIN_TOKEN_LEN {
                problems.push(format!(
                    "admin_token: must be at least {MIN_ADMIN_TOKEN_LEN} characters"
                ));
            }
            // `sy_` marks tenant API keys; an admin token that looked like one would never
            // be recognised as the admin token.
            if token.expose_secret().starts_with(TENANT_KEY_PREFIX) {
                problems.push(format!(
                    "admin_token: must not start with `{TENANT_KEY_PREFIX}`"
                ));
            }
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
        {
            problems.push("telemetry.otlp_endpoint: must be an http(s) URL".to_owned());
        }
        if self
            .telemetry
            .service_name
            .as_deref()
            .is_some_and(|name| name.trim().is_empty())
        {
            problems.push("telemetry.service_name: must not be empty".to_owned());
        }
        if self.database.max_connections == 0 {
            problems.push("database.max_connections: must be at least 1".to_owned());
        }
        let outbound = &self.outbound;
        if outbound.concurrency == 0 || outbound.per_endpoint_concurrency == 0 {
            problems.push(
                "outbound.concurrency, outbound.per_endpoint_concurrency: must be at least 1"
                    .to_owned(),
            );
        }
        if outbound.timeout.is_zero() {
            problems.push("outbound.timeout: must be more than 0s".to_owned());
        }
        if outbound.retry_schedule.is_empty() {
            problems.push("outbound.retry_schedule: name at least one wait (\"0s\")".to_owned());
        }
        if !(0.0..=1.0).contains(&outbound.retry_jitter) {
            problems.push("outbound.retry_jitter: must be between 0 and 1".to_owned());
        }
        if self.worker.concurrency == 0 || self.worker.claim_batch == 0 {
            problems
                .push("worker.concurrency and worker.claim_batch: must be at least 1".to_owned());
        }
        if self.worker.heartbeat_interval.is_zero()
            || self.worker.heartbeat_interval >= self.worker.lease
        {
            problems.push(
                "worker.heartbeat_interval: must be above zero and shorter than worker.lease"
                    .to_owned(),
            );
        }
        if self.api.body_limit_bytes == 0 {
            problems.push("api.body_limit_bytes: must be at least 1".to_owned());
        }
        if self.api.default_page_limit == 0 || self.api.max_page_limit == 0 {
            problems.push(
                "api.default_page_limit and api.max_page_limit: must be at least 1".to_owned(),
            );
        }
        if self.api.default_page_limit > self.api.max_page_limit {
            problems.push(format!(
                "api.default_page_limit ({}) must not exceed api.max_page_limit ({})",
                self.api.default_page_limit, self.api.max_page_limit
            ));
        }
        for (field, kek) in std::iter::once(("vault.kek", Some(&self.vault.kek))).chain(
            std::iter::once(("vault.secondary_kek", self.vault.secondary_kek.as_ref())),
        ) {
            if let Some(KekSettings::Env { key_base64 }) = kek {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(key_base64.expose_secret().trim());
                if !matches!(decoded, Ok(bytes) if bytes.len() == 32) {
                    problems.push(format!(
                        "{field}.key_base64: must be base64 of exactly 32 bytes"
                    ));
                }
            }
            if let Some(KekSettings::AwsKms { key_id, .. }) = kek
                && key_id.trim().is_empty()
            {
                problems.push(format!("{field}.key_id: must not be empty"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The database URL in effect: the configured one, or SQLite inside `data_dir`.
    pub fn effective_database_url(&self) -> SecretString {
        match &self.database_url {
            Some(url) => url.clone(),
            None => SecretString::from(format!(
                "sqlite://{}",
                self.data_dir.join("switchyard.db").display()
            )),
        }
    }

    /// The key file of a `file` KEK setting: its `path`, or `master.key` in the data directory.
    pub fn key_file_path(&self, path: Option<&Path>) -> PathBuf {
        path.map_or_else(|| self.data_dir.join("master.key"), Path::to_path_buf)
    }

    /// The listen address. Validated by [`Config::validate`].
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError::Invalid(vec![format!("listen: `{}` is not an address", self.listen)])
        })
    }
}

#[cfg(test)]
mod tests;
