//! Conformance tests of outbound delivery, each on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod delivery;
mod metrics;
mod peers;
mod resilience;
mod store;
mod support;
