//! The `switchyard` binary as a user runs it: help, configuration commands, and `serve`
//! driven by the CLI's own tenant and key commands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::{Command, Output},
};

use serde_json::Value;
use switchyard_test_support::{ServerProcess, process::clean_command};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");

/// A command with no SWITCHYARD_* variables from the caller's environment.
fn switchyard(args: &[&str]) -> Command {
    clean_command(Path::new(BINARY), args)
}

fn run(args: &[&str]) -> Output {
    switchyard(args).output().expect("run switchyard")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_command_has_help() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["migrate"],
        &["config"],
        &["config", "defaults"],
        &["config", "check"],
        &["openapi"],
        &["tenant"],
        &["tenant", "create"],
        &["tenant", "list"],
        &["key"],
        &["key", "create"],
        &["key", "list"],
        &["key", "revoke"],
        &["tenant", "delete"],
        &["vault"],
        &["vault", "data-keys"],
        &["vault", "rotate-dek"],
        &["vault", "complete-dek-rotation"],
        &["vault", "rotate-kek"],
        &["audit"],
        &["audit", "list"],
        &["audit", "verify"],
        &["purge"],
        &["runs"],
        &["runs", "list"],
        &["runs", "show"],
        &["runs", "retry"],
        &["sync"],
        &["sync", "run"],
        &["sync", "list"],
        &["sync", "schedule"],
        &["records"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let output = run(&args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        let text = stdout(&output);
        assert!(text.contains("Usage: switchyard"), "{args:?}: {text}");
    }
    let help = stdout(&run(&["key", "create", "--help"]));
    for option in [
        "--tenant",
        "--name",
        "--role",
        "--url",
        "--token",
        "--json",
        "SWITCHYARD_URL",
        "SWITCHYARD_TOKEN",
    ] {
        assert!(
            help.contains(option),
            "{option} missing from key create --help"
        );
    }
}

#[test]
fn config_defaults_prints_the_commented_embedded_file() {
    let output = run(&["config", "defaults"]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert_eq!(text, switchyard_config::DEFAULTS_TOML);
    let parsed: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(parsed["listen"].as_str(), Some("127.0.0.1:8080"));
    assert!(text.contains("# env: SWITCHYARD_DATABASE_URL"));
}

#[test]
fn config_check_validates_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "listen = \"0.0.0.0:9090\"\n[api]\nmax_page_limit = 100\n",
    )
    .unwrap();
    let output = run(&["config", "check", good.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("0.0.0.0:9090"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"nowhere\"\n[api]\ndefault_page_limit = 500\n",
    )
    .unwrap();
    let output = run(&["config", "check", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains("listen") && error.contains("default_page_limit"),
        "{error}"
    );

    let output = switchyard(&["config", "check"])
        .env("SWITCHYARD_API__BODY_LIMIT_BYTES", "lots")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).to_lowercase().contains("body_limit_bytes"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn openapi_command_prints_the_committed_document() {
    let output = run(&["openapi"]);
    assert!(output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(printed, committed);
}

#[test]
fn migrate_creates_the_schema_and_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    for _ in 0..2 {
        let output = run(&["migrate", "--data-dir", data_dir.to_str().unwrap()]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stderr(&output).contains("migrations applied"));
    }
    assert!(data_dir.join("switchyard.db").is_file());
}

#[test]
fn serve_refuses_invalid_configuration_clearly() {
    let output = run(&["serve", "--listen", "not-an-address"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("listen"), "{}", stderr(&output));
}

fn cli(server: &ServerProcess, data_dir: &Path, args: &[&str]) -> Output {
    let mut full: Vec<&str> = args.to_vec();
    let url = server.url();
    full.extend_from_slice(&["--url", &url, "--data-dir", data_dir.to_str().unwrap()]);
    let output = run(&full);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    output
}

#[test]
fn serve_with_no_configuration_and_manage_it_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = ServerProcess::start(Path::new(BINARY), &data_dir, &[], "trace");

    let admin_token = std::fs::read_to_string(data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data_dir.join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The token comes from the data directory's admin-token file: no flags needed.
    let tenant: Value = serde_json::from_slice(
        &cli(
            &server,
            &data_dir,
            &[
                "tenant",
                "create",
                "--name",
                "Acme",
                "--environment",
                "live",
                "--json",
            ],
        )
        .stdout,
    )
    .unwrap();
    let tenant_id = tenant["id"].as_str().unwrap();
    let table = stdout(&cli(&server, &data_dir, &["tenant", "list"]));
    assert!(
        table.starts_with("ID") && table.contains(tenant_id) && table.contains("live"),
        "{table}"
    );

    let key: Value = serde_json::from_slice(
        &cli(
            &server,
            &data_dir,
            &[
                "key", "create", "--tenant", tenant_id, "--name", "ci", "--role", "admin", "--json",
            ],
        )
        .stdout,
    )
    .unwrap();
    let secret = key["key"].as_str().unwrap().to_owned();
    let key_id = key["id"].as_str().unwrap();

    // The new admin key works with --token, and lists keys without secrets.
    let listed = stdout(&cli(
        &server,
        &data_dir,
        &["key", "list", "--tenant", tenant_id, "--token", &secret],
    ));
    assert!(
        listed.contains(key_id) && listed.contains("admin") && !listed.contains(&secret),
        "{listed}"
    );

    let human = stdout(&cli(
        &server,
        &data_dir,
        &[
            "key", "create", "--tenant", tenant_id, "--name", "other", "--role", "read",
        ],
    ));
    assert!(
        human.contains("KEY") && human.contains("sy_") && human.contains("shown only now"),
        "{human}"
    );

    let revoked = stdout(&cli(
        &server,
        &data_dir,
        &["key", "revoke", "--tenant", tenant_id, key_id],
    ));
    assert!(revoked.contains(key_id));
    let refused = run(&[
        "key",
        "list",
        "--tenant",
        tenant_id,
        "--token",
        &secret,
        "--url",
        &server.url(),
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("unauthenticated"),
        "{}",
        stderr(&refused)
    );

    // The audit log records what the CLI did, and its chains verify.
    let audit = stdout(&cli(
        &server,
        &data_dir,
        &["audit", "list", "--tenant", tenant_id],
    ));
    assert!(
        audit.contains("tenant.create") && audit.contains("api_key.revoke"),
        "{audit}"
    );
    // A data-key rotation is a run the CLI can list and show.
    let rotated: Value = serde_json::from_slice(
        &cli(
            &server,
            &data_dir,
            &["vault", "rotate-dek", "--tenant", tenant_id, "--json"],
        )
        .stdout,
    )
    .unwrap();
    let run_id = rotated["run_id"].as_str().unwrap();
    let runs = stdout(&cli(
        &server,
        &data_dir,
        &["runs", "list", "--tenant", tenant_id],
    ));
    assert!(
        runs.contains(run_id) && runs.contains("vault:data-key:1"),
        "{runs}"
    );
    let shown = stdout(&cli(
        &server,
        &data_dir,
        &["runs", "show", run_id, "--tenant", tenant_id],
    ));
    assert!(
        shown.contains("ATTEMPTS") && shown.contains("vault.complete_dek_rotation"),
        "{shown}"
    );
    let deleted = stdout(&cli(&server, &data_dir, &["tenant", "delete", tenant_id]));
    assert!(
        deleted.contains("deleted") && deleted.contains(tenant_id),
        "{deleted}"
    );

    let logs = server.terminate();
    let verified = run(&["audit", "verify", "--data-dir", data_dir.to_str().unwrap()]);
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(stdout(&verified).contains("ok"), "{}", stdout(&verified));
    let all = logs.join("\n");
    assert!(
        all.contains("received SIGTERM") && all.contains("stopped"),
        "{all}"
    );
    assert!(
        !all.contains(&admin_token),
        "the admin token must never be logged"
    );
    assert!(
        !all.contains(&secret[3..]),
        "an API key must never be logged"
    );
}

#[test]
fn serve_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(switchyard_test_support::TestDatabase::postgres()) else {
        return;
    };
    let data_dir = database.path("data");
    let server = ServerProcess::start(
        Path::new(BINARY),
        &data_dir,
        &["--database-url", database.url()],
        "info",
    );
    assert!(
        !data_dir.join("switchyard.db").try_exists().unwrap(),
        "no SQLite file when PostgreSQL is configured"
    );
    let output = cli(
        &server,
        &data_dir,
        &["tenant", "create", "--name", "On Postgres", "--json"],
    );
    let tenant: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(tenant["id"].as_str().unwrap().starts_with("ten_"));
    server.terminate();
}

#[test]
fn audit_verify_fails_on_a_tampered_chain() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = ServerProcess::start(Path::new(BINARY), &data_dir, &[], "info");
    cli(&server, &data_dir, &["tenant", "create", "--name", "Acme"]);
    cli(
        &server,
        &data_dir,
        &["tenant", "create", "--name", "Globex"],
    );
    server.terminate();
    let data_dir_text = data_dir.to_str().unwrap();
    let verified = run(&["audit", "verify", "--data-dir", data_dir_text]);
    assert!(verified.status.success(), "{}", stderr(&verified));

    // Edit an entry the way only someone with raw database access could.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}", data_dir.join("switchyard.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("DROP TRIGGER audit_events_no_update").execute(&pool).await.unwrap();
        sqlx::query("UPDATE audit_events SET target = 'tenant:someone-else' WHERE seq = 1 AND chain_id = (SELECT MIN(chain_id) FROM audit_events)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let verified = run(&["audit", "verify", "--data-dir", data_dir_text]);
    assert!(
        !verified.status.success(),
        "a broken chain must fail: {}",
        stdout(&verified)
    );
    assert!(
        stderr(&verified).contains("1 audit chain(s) broken"),
        "{}",
        stderr(&verified)
    );
    assert!(
        stdout(&verified).contains("ok"),
        "the other tenant's chain still verifies: {}",
        stdout(&verified)
    );
}

#[test]
fn purge_dry_run_counts_and_purge_deletes_expired_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = ServerProcess::start(Path::new(BINARY), &data_dir, &[], "info");
    let tenant: Value = serde_json::from_slice(
        &cli(
            &server,
            &data_dir,
            &["tenant", "create", "--name", "Gone", "--json"],
        )
        .stdout,
    )
    .unwrap();
    cli(
        &server,
        &data_dir,
        &["tenant", "delete", tenant["id"].as_str().unwrap()],
    );
    server.terminate();
    let data_dir_text = data_dir.to_str().unwrap();

    let kept = stdout(&run(&["purge", "--dry-run", "--data-dir", data_dir_text]));
    assert!(
        kept.contains("WOULD DELETE") && kept.contains("deleted_tenants") && kept.contains("30d"),
        "{kept}"
    );
    // With a zero retention period the deleted tenant is due at once.
    let due = switchyard(&["purge", "--dry-run", "--data-dir", data_dir_text])
        .env("SWITCHYARD_RETENTION__DELETED_TENANTS", "0s")
        .output()
        .unwrap();
    let due_text = stdout(&due);
    let deleted_row = due_text
        .lines()
        .find(|line| line.starts_with("deleted_tenants"))
        .unwrap()
        .to_owned();
    assert!(deleted_row.trim_end().ends_with('1'), "{due_text}");
    let purged = switchyard(&["purge", "--data-dir", data_dir_text])
        .env("SWITCHYARD_RETENTION__DELETED_TENANTS", "0s")
        .output()
        .unwrap();
    assert!(purged.status.success(), "{}", stderr(&purged));
    assert!(stdout(&purged).contains("DELETED"), "{}", stdout(&purged));
    let after = switchyard(&["purge", "--dry-run", "--data-dir", data_dir_text])
        .env("SWITCHYARD_RETENTION__DELETED_TENANTS", "0s")
        .output()
        .unwrap();
    let row = stdout(&after)
        .lines()
        .find(|line| line.starts_with("deleted_tenants"))
        .unwrap()
        .to_owned();
    assert!(row.trim_end().ends_with('0'), "{}", stdout(&after));
}
