//! Stand-ins for real providers: each speaks one provider's wire format (paths, auth headers
//! and how a wrong credential is refused, pagination, rate-limit headers and 429s, error
//! bodies, webhook samples), built from the provider's published API description, so the
//! built-in manifests are tested against what the provider really sends.

pub mod github;
pub mod jira;
pub mod okta;
pub mod slack;
