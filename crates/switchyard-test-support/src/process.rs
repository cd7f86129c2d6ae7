//! The `switchyard` binary as a separate process, with its log lines captured.
//!
//! A separate process keeps the server's logs apart from the test's own HTTP client, which
//! matters when a test searches the server's TRACE logs for secrets.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

/// A running `switchyard serve`. Killed on drop if still running.
pub struct ServerProcess {
    child: Child,
    address: String,
    logs: Arc<Mutex<Vec<String>>>,
}

/// A `switchyard` command with no `SWITCHYARD_*` variables inherited from the caller.
pub fn clean_command(binary: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("SWITCHYARD_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "info");
    command
}

impl ServerProcess {
    /// Starts `binary serve --listen 127.0.0.1:0 --data-dir DIR EXTRA…` with JSON logs at
    /// `log_level` and waits until it listens.
    pub fn start(binary: &Path, data_dir: &Path, extra: &[&str], log_level: &str) -> ServerProcess {
        Self::start_with_env(binary, data_dir, extra, log_level, &[])
    }

    /// [`ServerProcess::start`] with extra environment variables (for example a KEK setting).
    pub fn start_with_env(
        binary: &Path,
        data_dir: &Path,
        extra: &[&str],
        log_level: &str,
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let data_dir = data_dir.to_str().expect("utf-8 path");
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir];
        args.extend_from_slice(extra);
        let mut command = clean_command(binary, &args);
        command.envs(env.iter().copied());
        let mut child = command
            .env("SWITCHYARD_LOG_FORMAT", "json")
            .env("RUST_LOG", log_level)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn switchyard serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log buffer").push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = loop {
            let found = logs.lock().expect("log buffer").iter().find_map(|line| {
                let event: Value = serde_json::from_str(line).ok()?;
                (event["message"] == "switchyard is listening")
                    .then(|| event["address"].as_str().map(str::to_owned))
                    .flatten()
            });
            if let Some(address) = found {
                break address;
            }
            if let Some(status) = child.try_wait().expect("poll child") {
                panic!(
                    "server exited with {status}; logs: {:#?}",
                    logs.lock().expect("log buffer")
                );
            }
            assert!(
                Instant::now() < deadline,
                "server did not start; logs: {:#?}",
                logs.lock().expect("log buffer")
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        ServerProcess {
            child,
            address,
            logs,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("log buffer").clone()
    }

    /// Kills the process with SIGKILL (no chance to release anything) and waits for it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the killed server");
    }

    /// Sends SIGTERM, asserts a clean exit within 15 s, and returns every log line.
    pub fn terminate(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        let exit = loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "server exited with {exit}");
        // The reader thread drains the pipe after exit; give it a moment to finish.
        std::thread::sleep(Duration::from_millis(50));
        self.logs()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
