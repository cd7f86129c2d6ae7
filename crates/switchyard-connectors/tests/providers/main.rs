//! The built-in provider connectors (GitHub, Okta, Slack, Jira), each against the stand-in
//! that speaks its provider's wire format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod github;
mod jira;
mod okta;
mod slack;
mod slack_posts;
mod support;
