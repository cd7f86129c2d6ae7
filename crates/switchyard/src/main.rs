//! The `switchyard` binary: the server (`serve`, `migrate`) and a CLI for the management API.
//!
//! # Layout
//! - [`cli`]: the command-line grammar (clap), which is also `--help`.
//! - [`serve`]: configuration loading, logging, signals, and running the server.
//! - [`client`]: the HTTP client the management commands use.
//! - [`commands`]: one module per command group.
//! - [`output`]: human tables and `--json`.
//! - [`progress`]: a sync run's progress while the CLI waits for it.

mod cli;
mod client;
mod commands;
mod output;
mod progress;
mod serve;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output::print_error(&error);
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::serve(args)),
        Command::Migrate(args) => runtime.block_on(serve::migrate(args)),
        Command::Config(ConfigCommand::Defaults) => {
            output::print_text(switchyard_config::DEFAULTS_TOML)
        }
        Command::Config(ConfigCommand::Check(args)) => commands::config::check(&args),
        Command::Openapi => commands::openapi::print(),
        Command::Tenant(command) => runtime.block_on(commands::tenant::run(command)),
        Command::Key(command) => runtime.block_on(commands::key::run(command)),
        Command::Purge { dry_run, server } => {
            runtime.block_on(commands::purge::run(dry_run, server))
        }
        Command::Vault(command) => runtime.block_on(commands::vault::run(command)),
        Command::Audit(command) => runtime.block_on(commands::audit::run(command)),
        Command::Runs(command) => runtime.block_on(commands::runs::run(command)),
        Command::Jobs(command) => runtime.block_on(commands::jobs::run(command)),
        Command::Connector(command) => commands::connector::run(command),
        Command::Sync(command) => runtime.block_on(commands::sync::run(command)),
        Command::Records(args) => runtime.block_on(commands::records::run(args)),
    }
}
