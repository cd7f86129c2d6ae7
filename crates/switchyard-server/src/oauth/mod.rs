//! OAuth: tenants' client registrations, connect sessions and their flows, and keeping
//! connections' tokens fresh (`docs/oauth.md`).
//!
//! - [`clients`]: client registrations, their secrets in the vault.
//! - [`connect`]: connect sessions and the authorization-code + PKCE and form flows.
//! - [`form`]: the connect page's content from connector manifests.
//! - [`refresh`]: single-flight token refresh across processes; the scheduled refresh.
//! - [`scheduled`]: the job that refreshes tokens about to expire and idle ones.

pub mod clients;
pub mod connect;
pub mod form;
pub mod refresh;
pub mod scheduled;

use std::sync::Arc;

/// The OAuth parts handlers share. Cheap to clone.
#[derive(Clone)]
pub struct OAuthService {
    pub flows: connect::ConnectFlows,
    pub refresher: Arc<refresh::Refresher>,
}
