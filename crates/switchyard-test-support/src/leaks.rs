//! The canary leak harness: register secret values, gather every place data can end up
//! (logs, API responses, the database, the data directory), and find any copy of a secret,
//! raw or encoded (base64, base64url, hex).
//!
//! A feature extends the canary test by storing its secrets through its own routes and adding
//! the responses it receives; the scan stays the same.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD},
};

use crate::TestDatabase;

/// Every log line of the process, at TRACE, from every thread: what a canary scans. Install
/// it once per test binary (it becomes the global subscriber), so canaries live in binaries of
/// their own.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Makes the global subscriber write here, new spans included.
    ///
    /// # Panics
    /// When the binary already has a global subscriber.
    pub fn install_global() -> Self {
        use tracing_subscriber::util::SubscriberInitExt as _;
        let captured = Self::default();
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW)
            .finish()
            .try_init()
            .expect("a canary is the only test of its binary");
        captured
    }

    /// What was logged so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// One found copy of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub secret: String,
    pub encoding: &'static str,
    pub place: String,
}

/// Secrets to look for, and the haystacks gathered so far.
#[derive(Debug, Default)]
pub struct LeakScanner {
    secrets: Vec<(String, String)>,
    haystacks: Vec<(String, Vec<u8>)>,
}

impl LeakScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// A unique canary value for `label`, registered for scanning.
    pub fn canary(&mut self, label: &str) -> String {
        let value = format!("canary-{label}-{}", uuid::Uuid::new_v4().simple());
        self.watch(label, &value);
        value
    }

    /// Registers an existing secret (an API key, a token) for scanning.
    pub fn watch(&mut self, label: &str, secret: &str) {
        assert!(
            secret.len() >= 16,
            "{label}: too short to scan for without false positives"
        );
        self.secrets.push((label.to_owned(), secret.to_owned()));
    }

    /// Adds bytes found at `place` (a log, a response…).
    pub fn add(&mut self, place: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.haystacks.push((place.into(), bytes.into()));
    }

    /// Adds every file under `dir`, except those `skip` accepts (the one file meant to hold a
    /// secret, such as `admin-token`).
    pub fn add_dir(&mut self, dir: &Path, skip: impl Fn(&Path) -> bool) {
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in std::fs::read_dir(&current)
                .expect("read dir")
                .map_while(Result::ok)
            {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if !skip(&path) {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    self.add(format!("file {}", path.display()), bytes);
                }
            }
        }
    }

    /// Adds a text dump of every table of the database.
    pub async fn add_database(&mut self, database: &TestDatabase) {
        for (table, rows) in crate::dump::dump_tables(database).await {
            self.add(format!("table {table}"), rows);
        }
    }

    /// Every copy of every secret in every haystack.
    pub fn leaks(&self) -> Vec<Leak> {
        let mut leaks = Vec::new();
        for (label, secret) in &self.secrets {
            for (encoding, needle) in encodings(secret) {
                for (place, haystack) in &self.haystacks {
                    if contains(haystack, needle.as_bytes()) {
                        leaks.push(Leak {
                            secret: label.clone(),
                            encoding,
                            place: place.clone(),
                        });
                    }
                }
            }
        }
        leaks
    }

    /// Panics listing every leak, if any.
    #[track_caller]
    pub fn assert_no_leaks(&self) {
        let leaks = self.leaks();
        assert!(
            leaks.is_empty(),
            "secrets leaked ({} haystacks scanned):\n{leaks:#?}",
            self.haystacks.len()
        );
    }

    pub fn haystack_count(&self) -> usize {
        self.haystacks.len()
    }
}

fn encodings(secret: &str) -> Vec<(&'static str, String)> {
    let bytes = secret.as_bytes();
    vec![
        ("raw", secret.to_owned()),
        ("base64", STANDARD.encode(bytes)),
        ("base64-no-pad", STANDARD_NO_PAD.encode(bytes)),
        ("base64url", URL_SAFE.encode(bytes)),
        ("base64url-no-pad", URL_SAFE_NO_PAD.encode(bytes)),
        ("hex", hex::encode(bytes)),
        ("HEX", hex::encode_upper(bytes)),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_raw_and_encoded_copies_only() {
        let mut scanner = LeakScanner::new();
        let secret = scanner.canary("token");
        scanner.add("clean", b"nothing to see".to_vec());
        scanner.add("raw", format!("x{secret}y"));
        scanner.add("b64", STANDARD.encode(&secret));
        scanner.add("hex", hex::encode(&secret));
        let places: Vec<String> = scanner.leaks().into_iter().map(|leak| leak.place).collect();
        assert!(places.contains(&"raw".to_owned()));
        assert!(places.contains(&"b64".to_owned()));
        assert!(places.contains(&"hex".to_owned()));
        assert!(!places.contains(&"clean".to_owned()));
    }
}
