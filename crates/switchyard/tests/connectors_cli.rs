//! The connector commands as a user runs them: `switchyard sync run|list|schedule` and
//! `switchyard records`, against a real server process syncing from the stand-in provider.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::Output,
    time::Duration,
};

use serde_json::{Value, json};
use switchyard_test_support::standin::{Item, StandIn, StandInOptions};
use switchyard_test_support::{ServerProcess, TestBackend, TestDatabase, process::clean_command};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");
const TOKEN: &str = "standin-cli-token";

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../switchyard-connectors/tests/manifests")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A server allowed to call the stand-in on 127.0.0.1, with the stand-in manifests, and a
/// tenant with a connection to it.
struct Setup {
    runtime: tokio::runtime::Runtime,
    standin: StandIn,
    server: ServerProcess,
    data_dir: PathBuf,
    tenant: String,
    key: String,
    connection: String,
    _database: TestDatabase,
}

impl Setup {
    fn start(backend: TestBackend) -> Option<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let database = runtime.block_on(TestDatabase::create(backend))?;
        let standin = runtime
            .block_on(StandIn::start(StandInOptions {
                token: Some(TOKEN.into()),
                rate_limit: None,
                ..Default::default()
            }))
            .unwrap();
        standin.seed(250);
        let data_dir = database.path("data");
        let directory = manifests().display().to_string();
        let server = ServerProcess::start_with_env(
            Path::new(BINARY),
            &data_dir,
            &["--database-url", database.url()],
            "info",
            &[
                ("SWITCHYARD_OUTBOUND__ALLOW_HTTP", "true"),
                ("SWITCHYARD_OUTBOUND__ALLOW_CIDRS", "127.0.0.1/32"),
                ("SWITCHYARD_CONNECTORS__DIRECTORY", &directory),
            ],
        );
        let mut setup = Self {
            runtime,
            standin,
            server,
            data_dir,
            tenant: String::new(),
            key: String::new(),
            connection: String::new(),
            _database: database,
        };
        let admin_token = std::fs::read_to_string(setup.data_dir.join("admin-token")).unwrap();
        let tenant = setup.api(
            "POST",
            "/v1/tenants",
            admin_token.trim(),
            json!({"name": "Acme"}),
        );
        setup.tenant = tenant["id"].as_str().unwrap().to_owned();
        let key = setup.api(
            "POST",
            &format!("/v1/tenants/{}/api-keys", setup.tenant),
            admin_token.trim(),
            json!({"name": "cli", "role": "write"}),
        );
        setup.key = key["key"].as_str().unwrap().to_owned();
        let connection = setup.api(
            "POST",
            "/v1/connections",
            &setup.key.clone(),
            json!({
                "provider": "standin-link",
                "name": "Stand-in",
                "config": {"base_url": setup.standin.url()},
                "credentials": {"token": TOKEN},
            }),
        );
        setup.connection = connection["id"].as_str().unwrap().to_owned();
        Some(setup)
    }

    fn api(&self, method: &str, path: &str, token: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.server.url());
        self.runtime.block_on(async {
            let response = reqwest::Client::new()
                .request(method.parse().unwrap(), &url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert!(status.is_success(), "{method} {path}: {status} {body}");
            body
        })
    }

    /// `switchyard ARGS --url … --data-dir …` (the admin token unless ARGS give `--token`).
    fn run(&self, args: &[&str]) -> Output {
        let url = self.server.url();
        let mut full = args.to_vec();
        full.extend_from_slice(&["--url", &url, "--data-dir", self.data_dir.to_str().unwrap()]);
        clean_command(Path::new(BINARY), &full)
            .output()
            .expect("run switchyard")
    }

    /// [`Setup::run`] with the tenant's key, asserting success.
    fn ok(&self, args: &[&str]) -> Output {
        let mut full = args.to_vec();
        full.extend_from_slice(&["--token", &self.key]);
        let output = self.run(&full);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        output
    }
}

/// The value of a `LABEL  value` line of a summary.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(label)?;
            rest.starts_with("  ").then(|| rest.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {label} in {text}"))
}

/// The cursor `switchyard records` printed on stderr.
fn printed_cursor(output: &Output) -> String {
    stderr(output)
        .lines()
        .find_map(|line| line.strip_prefix("cursor: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("no cursor in {}", stderr(output)))
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn sync_runs_and_records_export(backend: TestBackend) {
    let Some(setup) = Setup::start(backend) else {
        return;
    };
    let connection = setup.connection.as_str();

    // The first sync reads everything: a summary on stdout, progress on stderr.
    let first = setup.ok(&["sync", "run", connection, "users"]);
    let summary = stdout(&first);
    assert_eq!(field(&summary, "STATUS"), "succeeded", "{summary}");
    assert_eq!(field(&summary, "ADDED"), "250", "{summary}");
    assert_eq!(field(&summary, "UPDATED"), "0", "{summary}");
    assert_eq!(field(&summary, "DELETED"), "0", "{summary}");
    assert_eq!(field(&summary, "PAGES"), "3", "{summary}");
    assert_eq!(field(&summary, "304 PAGES"), "0", "{summary}");
    let run_id = field(&summary, "RUN");
    assert!(run_id.starts_with("run_"), "{summary}");
    assert!(
        stderr(&first).contains(&format!("{run_id}: started")),
        "{}",
        stderr(&first)
    );

    // The change stream to a file: one change per line, the stand-in's items in order.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.jsonl");
    let file_arg = file.to_str().unwrap();
    let exported = setup.ok(&["records", connection, "users", "--output", file_arg]);
    assert_eq!(stdout(&exported), "", "the lines go to the file");
    assert!(
        stderr(&exported).contains("wrote 250 changes"),
        "{}",
        stderr(&exported)
    );
    let changes = lines(&std::fs::read_to_string(&file).unwrap());
    let items: Vec<Value> = setup
        .standin
        .items()
        .iter()
        .map(|item| serde_json::to_value(item).unwrap())
        .collect();
    let records: Vec<Value> = changes.iter().map(|c| c["record"].clone()).collect();
    assert_eq!(records, items);
    assert!(changes.iter().all(|c| c["change"] == "added"));
    assert_eq!(changes[0]["seq"], 1);
    // (`run_id` is the server's read id, which spans the runs resuming one read, so it is
    // not compared with the sync's run here.)
    assert!(
        changes
            .iter()
            .all(|c| c["run_id"].as_str().is_some_and(|r| r.starts_with("run_")))
    );
    let cursor = printed_cursor(&exported);

    // Changes at the provider; the next sync as JSON stores exactly them.
    setup.standin.advance(Duration::from_secs(60));
    let mut renamed = setup.standin.get("u00002").unwrap();
    renamed.name = "Renamed".into();
    setup.standin.upsert(renamed);
    setup.standin.delete("u00003").unwrap();
    setup
        .standin
        .upsert(Item::new("u99999", "New", "new@example.test"));
    let second: Value = serde_json::from_slice(
        &setup
            .ok(&["sync", "run", connection, "users", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(second["status"], "succeeded", "{second}");
    let counters = &second["counters"];
    assert_eq!(
        (
            &counters["records_added"],
            &counters["records_updated"],
            &counters["records_deleted"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{second}"
    );

    // Continuing from the printed cursor appends exactly the new changes.
    let appended = setup.ok(&[
        "records", connection, "users", "--cursor", &cursor, "--output", file_arg, "--append",
    ]);
    let all = lines(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(all.len(), 253, "{}", stderr(&appended));
    assert_eq!(&all[..250], &changes[..]);
    let mut kinds: Vec<(String, String)> = all[250..]
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_owned(),
                c["primary_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("added", "u99999"),
            ("deleted", "u00003"),
            ("updated", "u00002")
        ]
        .map(|(kind, key)| (kind.to_owned(), key.to_owned()))
    );
    let end = printed_cursor(&appended);

    // To stdout, in steps of --limit; each printed cursor continues after the last line.
    let two = setup.ok(&[
        "records", connection, "users", "--cursor", &cursor, "--limit", "2",
    ]);
    let two_lines = lines(&stdout(&two));
    assert_eq!(two_lines, all[250..252]);
    let rest = setup.ok(&[
        "records",
        connection,
        "users",
        "--cursor",
        &printed_cursor(&two),
        "--model",
        "identity",
    ]);
    let rest_lines = lines(&stdout(&rest));
    assert_eq!(rest_lines.len(), 1, "{}", stdout(&rest));
    assert_eq!(rest_lines[0]["seq"], all[252]["seq"]);
    assert_eq!(
        rest_lines[0]["record"]["source"], "standin-link",
        "the unified form"
    );
    assert_eq!(printed_cursor(&rest), end);
    let nothing = setup.ok(&["records", connection, "users", "--cursor", &end]);
    assert_eq!(stdout(&nothing), "");
    assert_eq!(
        printed_cursor(&nothing),
        end,
        "nothing new: the same cursor"
    );

    // The platform admin acts for the tenant with --tenant (and its token from the data dir).
    let as_admin = setup.run(&[
        "records",
        connection,
        "users",
        "--tenant",
        &setup.tenant,
        "--limit",
        "1",
    ]);
    assert!(as_admin.status.success(), "{}", stderr(&as_admin));
    assert_eq!(lines(&stdout(&as_admin)), all[..1]);
    let without_tenant = setup.run(&["records", connection, "users", "--limit", "1"]);
    assert!(!without_tenant.status.success());

    // A refused credential fails the run: the summary says so, the error says why.
    setup.standin.fail_next("/link/items", 401, 5);
    setup.standin.advance(Duration::from_secs(60));
    setup
        .standin
        .upsert(Item::new("u99998", "Newer", "newer@example.test"));
    let failed = setup.run(&["sync", "run", connection, "users", "--token", &setup.key]);
    assert!(!failed.status.success(), "{}", stdout(&failed));
    assert_eq!(field(&stdout(&failed), "STATUS"), "failed");
    let error = stderr(&failed);
    assert!(
        error.contains("error: run_")
            && error.contains("failed")
            && error.contains("401")
            && error.contains("(auth)"),
        "{error}"
    );
    assert!(!error.contains(TOKEN));

    // --no-wait answers with the run id only.
    let queued = setup.ok(&["sync", "run", connection, "users", "--no-wait"]);
    let queued_id = stdout(&queued).trim().to_owned();
    assert!(
        queued_id.starts_with("run_") && !queued_id.contains(char::is_whitespace),
        "{queued_id}"
    );

    let logs = setup.server.logs().join("\n");
    assert!(!logs.contains(TOKEN), "the provider token is never logged");
}

fn schedules(backend: TestBackend) {
    let Some(setup) = Setup::start(backend) else {
        return;
    };
    let connection = setup.connection.as_str();
    let listed = stdout(&setup.ok(&["sync", "list", connection]));
    let row = listed
        .lines()
        .find(|line| line.starts_with("users"))
        .unwrap();
    assert!(
        listed.starts_with("STREAM")
            && row
                .split_whitespace()
                .all(|cell| cell == "users" || cell == "-"),
        "no schedule, no checkpoint yet: {listed}"
    );

    let hourly = stdout(&setup.ok(&["sync", "schedule", connection, "users", "--every", "1h"]));
    assert_eq!(field(&hourly, "SCHEDULE"), "every 1h", "{hourly}");
    assert_eq!(field(&hourly, "ENABLED"), "true", "{hourly}");
    assert!(field(&hourly, "NEXT RUN").starts_with("20"), "{hourly}");

    let cron: Value = serde_json::from_slice(
        &setup
            .ok(&[
                "sync",
                "schedule",
                connection,
                "users",
                "--cron",
                "0 * * * *",
                "--time-zone",
                "Europe/Berlin",
                "--disable",
                "--json",
            ])
            .stdout,
    )
    .unwrap();
    assert_eq!(
        cron["schedule"],
        json!({"type": "cron", "expression": "0 * * * *", "time_zone": "Europe/Berlin"})
    );
    assert_eq!(cron["enabled"], false);
    assert!(
        cron["next_run_at"].is_null(),
        "a disabled schedule does not run"
    );

    setup.ok(&["sync", "run", connection, "users"]);
    let listed = stdout(&setup.ok(&["sync", "list", connection]));
    assert!(
        listed.contains("cron 0 * * * * (Europe/Berlin)") && listed.contains("false"),
        "{listed}"
    );
    let synced: Value =
        serde_json::from_slice(&setup.ok(&["sync", "list", connection, "--json"]).stdout).unwrap();
    assert!(synced[0]["checkpoint_at"].is_string(), "{synced}");

    let refused = setup.run(&[
        "sync", "schedule", connection, "users", "--cron", "not cron", "--token", &setup.key,
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("schedule") && stderr(&refused).contains("validation_failed"),
        "{}",
        stderr(&refused)
    );
    let unknown = setup.run(&[
        "sync", "schedule", connection, "planets", "--every", "1h", "--token", &setup.key,
    ]);
    assert!(
        stderr(&unknown).contains("not_found"),
        "{}",
        stderr(&unknown)
    );
}

fn records_follow_picks_up_new_syncs(backend: TestBackend) {
    let Some(setup) = Setup::start(backend) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("followed.jsonl");
    let url = setup.server.url();
    let follower = clean_command(
        Path::new(BINARY),
        &[
            "records",
            &setup.connection,
            "users",
            "--follow",
            "--interval",
            "200ms",
            "--output",
            file.to_str().unwrap(),
            "--url",
            &url,
            "--token",
            &setup.key,
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let lines_in_file = || {
        std::fs::read_to_string(&file)
            .map(|text| text.lines().count())
            .unwrap_or(0)
    };
    let wait_for = |count: usize| {
        for _ in 0..200 {
            if lines_in_file() >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the follower wrote {} of {count} lines", lines_in_file());
    };

    // Nothing stored yet; the follower picks up each sync's changes as they are stored.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines_in_file(), 0);
    setup.ok(&["sync", "run", &setup.connection, "users"]);
    wait_for(250);
    setup.standin.advance(Duration::from_secs(60));
    setup
        .standin
        .upsert(Item::new("u99999", "New", "new@example.test"));
    setup.ok(&["sync", "run", &setup.connection, "users"]);
    wait_for(251);

    // Ctrl-C ends it cleanly, with the cursor to continue from.
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &follower.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = follower.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let cursor = printed_cursor(&output);
    let last = lines(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(last.len(), 251);
    assert_eq!(last[250]["primary_key"], "u99999");
    let after = setup.ok(&["records", &setup.connection, "users", "--cursor", &cursor]);
    assert_eq!(
        stdout(&after),
        "",
        "the cursor is after the last line written"
    );
}

mod sqlite {
    use super::*;

    #[test]
    fn sync_runs_and_records_export() {
        super::sync_runs_and_records_export(TestBackend::Sqlite);
    }

    #[test]
    fn schedules() {
        super::schedules(TestBackend::Sqlite);
    }

    #[test]
    fn records_follow_picks_up_new_syncs() {
        super::records_follow_picks_up_new_syncs(TestBackend::Sqlite);
    }
}

mod postgres {
    use super::*;

    #[test]
    fn sync_runs_and_records_export() {
        super::sync_runs_and_records_export(TestBackend::Postgres);
    }

    #[test]
    fn schedules() {
        super::schedules(TestBackend::Postgres);
    }

    #[test]
    fn records_follow_picks_up_new_syncs() {
        super::records_follow_picks_up_new_syncs(TestBackend::Postgres);
    }
}
