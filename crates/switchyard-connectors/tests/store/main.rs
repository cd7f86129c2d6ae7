//! The connector store against real databases, each test on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod connections;
mod lease;
mod records;
mod related;
mod support;
