//! The connector store against real databases, each test on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod connections;
mod lease;
mod oauth;
mod records;
mod refresh_lock;
mod related;
mod support;
