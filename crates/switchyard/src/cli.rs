//! The command-line grammar. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use switchyard_config::ProcessRole;

/// Switchyard: connect a SaaS product to its customers' systems, and keep those connections
/// safe and healthy.
///
/// Start the server with `switchyard serve` (SQLite in ./switchyard-data, listening on
/// 127.0.0.1:8080, no setup needed); manage it with the other commands.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: applies migrations, then serves the API until SIGTERM or Ctrl-C.
    Serve(ServerArgs),
    /// Apply database migrations and exit.
    Migrate(ServerArgs),
    /// Print or check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the OpenAPI 3.1 document of the API.
    Openapi,
    /// Manage tenants (needs the platform admin token).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage a tenant's API keys (platform admin token or the tenant's admin key).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Delete rows older than their data class's retention period, in small batches (the
    /// server also does this hourly). Works directly on the database, with the server's
    /// configuration.
    Purge {
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Credential vault: data keys and key-encryption keys.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Runs: the record of work (key rotations, syncs, …) with their attempts.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// The job queue, directly on the database with the server's configuration.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Connector manifests: check them, print their JSON Schema.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Syncs of a connection's streams: run one now and watch it, list them, schedule them.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Print a connection stream's stored changes as JSONL, one change object
    /// (`{"seq", "change", "primary_key", "record", "mapping_error", "run_id", "at"}`) per
    /// line, in the order they were stored.
    ///
    /// Reads page after page until no more changes are stored, then prints the cursor after
    /// the last change on stderr (`cursor: …`): pass it to `--cursor` later to get only what
    /// syncs stored since.
    Records(RecordsArgs),
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Sync a stream now, from where its last sync stopped, and wait for the run to finish.
    ///
    /// While it runs, shows its progress on stderr: a live line on a terminal (pages,
    /// records changed, records per second, elapsed time), otherwise a plain line every few
    /// seconds. Then prints a summary (records added, updated, deleted and unchanged, pages,
    /// pages answered 304 Not Modified, duration, run id), or the run with `--json`. Exits
    /// non-zero, with the run's error, when the run fails or is cancelled, or when it is
    /// still going at `--timeout` (it goes on: follow it with `switchyard runs show`).
    Run {
        /// The connection id (`conn_…`).
        connection: String,
        /// The stream, such as `users` (`switchyard sync list` shows them).
        stream: String,
        /// Platform admin: the connection's tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Print the run id and return at once instead of waiting.
        #[arg(long)]
        no_wait: bool,
        /// Stop waiting after this long.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the connection's streams with their schedule, next scheduled run and when their
    /// checkpoint was last saved.
    List {
        /// The connection id (`conn_…`).
        connection: String,
        /// Platform admin: the connection's tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set a stream's schedule (replacing any it had): every fixed interval or by a cron
    /// expression.
    #[command(group(clap::ArgGroup::new("when").required(true).args(["every", "cron"])))]
    Schedule {
        /// The connection id (`conn_…`).
        connection: String,
        /// The stream, such as `users`.
        stream: String,
        /// Sync this often, in whole seconds: `90s`, `15m`, `1h`, `1day`.
        #[arg(long, value_parser = humantime::parse_duration)]
        every: Option<std::time::Duration>,
        /// Sync at the times of a five-field cron expression (minute hour day-of-month month
        /// day-of-week), such as `0 * * * *` for every hour on the hour.
        #[arg(long, value_name = "EXPRESSION")]
        cron: Option<String>,
        /// The IANA time zone the cron expression's times are in, such as `Europe/Berlin`
        /// [default: UTC].
        #[arg(long, conflicts_with = "every", value_name = "ZONE")]
        time_zone: Option<String>,
        /// Keep the schedule but do not run it (run it again by scheduling without this).
        #[arg(long)]
        disable: bool,
        /// Platform admin: the connection's tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct RecordsArgs {
    /// The connection id (`conn_…`).
    pub connection: String,
    /// The stream, such as `users`.
    pub stream: String,
    /// Platform admin: the connection's tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// A unified model the stream maps to (`identity`, `group`, …): each `record` is then in
    /// that model's form, or `null` with `mapping_error` saying why.
    #[arg(long)]
    pub model: Option<String>,
    /// Start after this cursor (printed by an earlier call) instead of at the first change.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Print at most this many changes; the printed cursor continues after them.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Write the lines to this file (created or truncated) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With `--output`: append to the file instead of truncating it.
    #[arg(long, requires = "output")]
    pub append: bool,
    /// Once every stored change is printed, keep asking for new ones every `--interval`
    /// until Ctrl-C (then the cursor is printed).
    #[arg(long)]
    pub follow: bool,
    /// With `--follow`: how long to wait between asks.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, requires = "follow")]
    pub interval: std::time::Duration,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum ConnectorCommand {
    /// Check manifests against the manifest schema and its rules; prints each problem as
    /// `FILE:LINE:COLUMN: FIELD: MESSAGE` and exits non-zero if there is one.
    Validate {
        /// Manifest files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the manifest JSON Schema (for editors; `docs/specs/manifest.schema.json`).
    Schema,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Enqueue a batch of no-op probe jobs and wait until the workers have run them all:
    /// shows that workers are running and how fast they drain a batch.
    Probe {
        /// Probe jobs to enqueue.
        #[arg(long, default_value_t = 100)]
        count: u32,
        /// Give up waiting after this long (the jobs stay queued).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// Only this status: queued, running, succeeded, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only this subject.
        #[arg(long)]
        subject: Option<String>,
        /// Platform admin: a tenant's runs (default: the platform's own).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a run with its attempts.
    Show {
        /// The run id (`run_…`).
        run_id: String,
        /// Platform admin: the run's tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Retry a failed or cancelled run as a new run.
    Retry {
        /// The run id (`run_…`).
        run_id: String,
        /// Platform admin: the run's tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// List a tenant's data keys (versions and states, never the keys).
    DataKeys {
        /// The tenant id (`ten_…`).
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Rotate a tenant's data key: new writes use a new key at once; the server moves the
    /// tenant's data onto it and retires the old key once the key cache TTL has passed.
    RotateDek {
        /// The tenant id (`ten_…`).
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Re-seal a tenant's stored data and re-encrypt its secrets onto its active data key, then
    /// retire rotated-out keys, now (allowed once the key cache TTL has passed since the
    /// rotation).
    CompleteDekRotation {
        /// The tenant id (`ten_…`).
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Re-wrap every tenant data key under a key-encryption key, online: no secret is
    /// re-encrypted and servers keep serving. Works directly on the database, with the
    /// server's configuration. Without --to, re-wraps under the configured [vault.kek]
    /// (after a rolling restart with the old KEK as [vault.secondary_kek]; see
    /// docs/security.md). With --to, re-wraps under that KEK instead.
    RotateKek {
        /// The new KEK: `file:PATH`, `env` (base64 key in SWITCHYARD_VAULT_NEW_KEK_BASE64)
        /// or `aws-kms:KEY_ID` (region and endpoint from the AWS SDK's environment).
        #[arg(long, value_name = "PROVIDER")]
        to: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events of a tenant (newest last).
    List {
        /// The tenant id; required with the platform admin token, implied by a tenant key.
        #[arg(long)]
        tenant: Option<String>,
        /// Only this action, such as `api_key.create`.
        #[arg(long)]
        action: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Recompute every audit chain from the database and report the first broken link of
    /// each. Exits 1 if any chain is broken.
    Verify {
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Where the server's configuration comes from. Flags win over the environment, which wins
/// over the file, which wins over the built-in defaults (`switchyard config defaults`).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// TOML configuration file.
    #[arg(long, env = "SWITCHYARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080; env: SWITCHYARD_LISTEN].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory for SQLite and the generated admin token [default: ./switchyard-data;
    /// env: SWITCHYARD_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, `sqlite://…` or `postgres://…` [default: SQLite in the data directory;
    /// env: SWITCHYARD_DATABASE_URL].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// What this process runs, comma-separated: `api`, `worker`, `scheduler` [default: all;
    /// env: SWITCHYARD_ROLES].
    #[arg(long = "role", value_name = "ROLES", value_delimiter = ',', value_parser = parse_role)]
    pub roles: Option<Vec<ProcessRole>>,
}

fn parse_role(value: &str) -> Result<ProcessRole, String> {
    value.parse()
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the built-in default configuration, with every setting explained.
    Defaults,
    /// Validate configuration without starting: the file (if given) over the defaults, with
    /// SWITCHYARD_* environment variables applied.
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// TOML configuration file to check.
    #[arg(value_name = "FILE", env = "SWITCHYARD_CONFIG")]
    pub file: Option<PathBuf>,
}

/// How the CLI reaches a running server.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Base URL of the server.
    #[arg(
        long,
        env = "SWITCHYARD_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// Bearer token: the platform admin token or an API key. When absent, the admin token
    /// file in the data directory is used if it exists.
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Data directory holding a generated `admin-token`, used when no token is given.
    #[arg(
        long,
        env = "SWITCHYARD_DATA_DIR",
        default_value = "./switchyard-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print it.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Optional label such as `live` or `sandbox`.
        #[arg(long)]
        environment: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List tenants (every page).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a tenant: its data keys are destroyed at once (its secrets become unreadable),
    /// its API keys stop working, and its data is purged after the retention window.
    Delete {
        /// The tenant id (`ten_…`).
        tenant: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; its secret is printed once.
    Create {
        /// The tenant id (`ten_…`).
        #[arg(long)]
        tenant: String,
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// What the key may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List a tenant's API keys (never their secrets).
    List {
        /// The tenant id (`ten_…`).
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke an API key; it stops working at once.
    Revoke {
        /// The tenant id (`ten_…`).
        #[arg(long)]
        tenant: String,
        /// The key id (`key_…`).
        key_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// The role of a new API key.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Read resources.
    Read,
    /// Read, create and change resources.
    Write,
    /// Everything, including the tenant's API keys.
    Admin,
}

impl RoleArg {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleArg::Read => "read",
            RoleArg::Write => "write",
            RoleArg::Admin => "admin",
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}
