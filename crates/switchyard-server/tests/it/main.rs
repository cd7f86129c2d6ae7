//! End-to-end tests: the real server on a random port, over HTTP, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions_async;
mod api_keys;
mod audit;
mod auth;
mod captures;
mod connection_health;
mod connections;
mod error_rules;
mod errors;
mod idempotency;
mod inbound;
mod ingest_disconnects;
mod isolation;
mod oauth;
mod openapi;
mod operations;
mod outbound;
mod pagination;
mod provider_stack;
mod providers;
mod related;
mod rotation;
mod runs;
mod shared_budgets;
mod startup;
mod tenants;
mod token_auth;
mod vault;
