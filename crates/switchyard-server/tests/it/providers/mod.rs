//! The built-in provider connectors end to end: the real server, a connection through the
//! API to each provider's stand-in, syncs, records, actions and signed webhooks.

mod github;
mod jira;
mod okta;
mod slack;
pub mod support;
