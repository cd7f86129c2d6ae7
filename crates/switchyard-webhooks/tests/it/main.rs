//! Verification against signatures made by the providers' own libraries (PyPI, npm) or, where
//! a provider has none, by Python's hmac/hashlib: never by this crate.
//!
//! The peers come from `scripts/peers/webhook-libs.sh`; the tests read
//! `SWITCHYARD_TEST_PEERS_PYTHON` and `SWITCHYARD_TEST_PEERS_NODE_MODULES` and are skipped
//! locally when those are unset (they fail in CI).

// Helpers outside #[test] functions panic on purpose: a broken fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod docs;
mod events;
mod generic;
mod handshakes;
mod hmac_providers;
mod props;
mod pubsub;
mod shared_secret;
mod sns;
mod standard;
mod twilio;
