//! A real browser for end-to-end tests: headless Debian Chromium driven by
//! `scripts/peers/browser.mjs` (npm playwright-core).
//!
//! Needs `SWITCHYARD_TEST_BROWSER` (the `.peers/browser` directory; see
//! `scripts/peers/browser.sh env`). Unset locally, [`run`] returns `None` (skip); unset in CI
//! it panics.
//!
//! Steps (a JSON list, or `{"steps": [...], "timeout_ms": N}` for a per-step timeout):
//! `{"goto": url}`, `{"fill": {"label": …, "value": …}}`, `{"press": "Tab"|"Enter"|"Space"}`,
//! `{"click": {"role": …, "name": …}}`, `{"wait_for_url": substring}`,
//! `{"screenshot": "/abs/path.png"}`, `{"expect_focus": {"role": …, "name": …}}`,
//! `{"a11y": true}` (fails when a form control has no accessible name).
//!
//! The result: `{"ok": true, "url", "title", "text", "steps": [...], "console_errors": [...]}`
//! or `{"ok": false, "error", "failed_step", "url", "title", "text", "steps": [...]}`.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::required_test_server;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/peers/browser.mjs"
);
const BROWSER_VARIABLE: &str = "SWITCHYARD_TEST_BROWSER";
/// A whole run: browser start plus every step at its own timeout (10 s by default).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `steps` in a fresh headless Chromium and returns the driver's result, whether the
/// steps passed or not (check `result["ok"]`). `None`: skipped locally. Panics when the
/// driver itself cannot run.
pub async fn run(steps: Value) -> Option<Value> {
    let browser_dir = required_test_server(BROWSER_VARIABLE)?;
    let mut steps_file = tempfile::NamedTempFile::new().expect("temporary steps file");
    steps_file
        .write_all(steps.to_string().as_bytes())
        .expect("write the steps file");
    let child = Command::new("node")
        .arg(SCRIPT)
        .arg(steps_file.path())
        .env(BROWSER_VARIABLE, &browser_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node scripts/peers/browser.mjs (is node installed?)");
    let output = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .expect("the browser run did not finish within 180 s")
        .expect("wait for scripts/peers/browser.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last_line = stdout.lines().rev().find(|line| !line.trim().is_empty());
    match last_line.map(serde_json::from_str::<Value>) {
        Some(Ok(result)) => Some(result),
        _ => panic!(
            "browser.mjs gave no JSON result ({}):\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// Like [`run`], but panics with the driver's error unless every step passed.
pub async fn run_ok(steps: Value) -> Option<Value> {
    let result = run(steps).await?;
    assert_eq!(
        result["ok"], true,
        "browser steps failed: {}",
        result["error"]
    );
    Some(result)
}
