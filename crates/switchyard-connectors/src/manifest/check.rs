//! The credential check: one request that proves a connection works, and what permissions
//! it reports.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::RequestSpec;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub request: RequestSpec,
    /// Where the granted scopes are read from, if the provider says.
    #[serde(default)]
    pub scopes: Option<ScopeSource>,
    /// Scopes the connector's streams and actions need; each is reported verified or missing.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Scopes a granted scope includes (GitHub's `admin:org` includes `read:org`): a required
    /// scope is verified when it or a scope that includes it is granted.
    #[serde(default)]
    pub implied_scopes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ScopeSource {
    /// A response header listing scopes (`x-oauth-scopes: repo, read:org`).
    Header {
        header: String,
        #[serde(default = "comma")]
        separator: String,
    },
    /// A JSONPath into the body selecting a string list or a separated string.
    Body {
        path: String,
        #[serde(default = "comma")]
        separator: String,
    },
}

fn comma() -> String {
    ",".into()
}
