//! `switchyard serve` and `switchyard migrate`.

use anyhow::Context;
use secrecy::ExposeSecret;
use switchyard_config::{CliOverrides, Config, ConfigLoader};
use switchyard_server::App;
use switchyard_store::{Database, DatabaseOptions};
use tokio_util::sync::CancellationToken;

use crate::{cli::ServerArgs, telemetry};

pub fn load_config(args: &ServerArgs) -> anyhow::Result<Config> {
    let overrides = CliOverrides {
        data_dir: args.data_dir.clone(),
        listen: args.listen.clone(),
        database_url: args.database_url.clone(),
        roles: args.roles.clone(),
    };
    Ok(ConfigLoader::new()
        .file(args.config.as_deref())
        .overrides(overrides)
        .load()?)
}

pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let traces = telemetry::init_with_traces(config.log_format, &config.telemetry)?;
    let served = async {
        let app = App::build(&config).await?;
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        app.run_until_stopped(shutdown)
            .await
            .context("the server failed")
    }
    .await;
    // After the drain, so the last requests' spans go out too.
    traces.shutdown().await;
    served
}

pub async fn migrate(args: ServerArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    telemetry::init(config.log_format);
    let database = open_database(&config).await?;
    tracing::info!(
        backend = ?database.backend(),
        schema_version = database.latest_known_migration(),
        "migrations applied"
    );
    database.close().await;
    Ok(())
}

/// Connects to the configured database and applies migrations (for the admin commands that
/// work on the database directly).
pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create `{}`", config.data_dir.display()))?;
    let options = DatabaseOptions {
        max_connections: 2,
        acquire_timeout: config.database.acquire_timeout,
    };
    let database = Database::connect(config.effective_database_url().expose_secret(), &options)
        .await
        .context("cannot open the database")?;
    database.migrate().await?;
    Ok(database)
}

/// Cancels `shutdown` on SIGTERM or SIGINT (Ctrl-C).
async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = interrupt => tracing::info!("received SIGINT"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
        tracing::info!("received Ctrl-C");
    }
    shutdown.cancel();
}
