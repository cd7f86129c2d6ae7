//! Test harness shared by Switchyard's crates.
//!
//! Every test gets its own database: a SQLite file in a temporary directory, or a freshly
//! created PostgreSQL database when `SWITCHYARD_TEST_DATABASE_URL` points at a server. The
//! [`backend_tests!`] macro runs one test body on both.
//!
//! # Layout
//! - [`database`]: [`TestDatabase`], one fresh database per test, dropped afterwards.
//! - [`store`]: [`TestStore`], a migrated store on a fresh database.
//! - [`app`]: [`TestApp`], the real server on a random port, with an HTTP client.
//! - [`process`]: [`ServerProcess`], the `switchyard` binary as a child process with its logs.
//! - [`leaks`]: [`LeakScanner`], the canary harness that finds secrets where they must not be.
//! - [`standin`]: [`StandIn`](standin::StandIn), a local provider that lists a controllable
//!   data set in every pagination style and incremental mode the connector manifests speak.

// A harness fails loudly by panicking, and tells the developer on stderr what it skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

pub mod app;
pub mod browser;
pub mod database;
mod dump;
pub mod keys;
pub mod leaks;
pub mod oauth_server;
pub mod process;
pub mod providers;
pub mod serve;
pub mod standin;
pub mod store;

use std::future::Future;

pub use app::{TestApp, TestResponse};
pub use database::{TestBackend, TestDatabase};
pub use leaks::LeakScanner;
pub use process::ServerProcess;
pub use store::TestStore;

/// A fixture the [`backend_tests!`] macro can start on each backend. `None` means the backend
/// is not configured locally and the test is skipped (never in CI, where that panics).
pub trait BackendFixture: Sized {
    fn start(backend: TestBackend) -> impl Future<Output = Option<Self>> + Send;
}

/// Runs each test body once on SQLite and once on PostgreSQL.
///
/// ```ignore
/// backend_tests! { TestStore;
///     async fn creates_a_tenant(store) { … }
/// }
/// ```
/// expands to a module `creates_a_tenant` with two tests, `sqlite` and `postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($fixture:ty; $( $(#[$meta:meta])* async fn $name:ident($arg:ident) $body:block )*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($arg: $fixture) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let fixture = <$fixture as $crate::BackendFixture>::start(
                        $crate::TestBackend::Sqlite,
                    )
                    .await;
                    if let Some(fixture) = fixture {
                        run(fixture).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let fixture = <$fixture as $crate::BackendFixture>::start(
                        $crate::TestBackend::Postgres,
                    )
                    .await;
                    if let Some(fixture) = fixture {
                        run(fixture).await;
                    }
                }
            }
        )*
    };
}

/// Reads a `SWITCHYARD_TEST_*` variable naming a server the tests need. Unset locally, the
/// test is skipped with a note; unset in CI (`CI=true`), it panics: CI never skips silently.
pub fn required_test_server(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!(
                "{variable} must be set in CI: the tests that need this server cannot be skipped"
            )
        }
        _ => {
            eprintln!("skipped: {variable} is not set");
            None
        }
    }
}
