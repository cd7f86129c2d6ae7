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
    /// Another way to report permissions for connections of one auth mode (keyed by its
    /// `type`): a GitHub App's installation token carries no scope header, its permissions
    /// come with the token.
    #[serde(default)]
    pub modes: BTreeMap<String, ModeScopes>,
}

/// How a check reports permissions for one auth mode; replaces the check's own three fields.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeScopes {
    #[serde(default)]
    pub scopes: Option<ScopeSource>,
    #[serde(default)]
    pub required_scopes: Vec<String>,
    #[serde(default)]
    pub implied_scopes: BTreeMap<String, Vec<String>>,
}

/// The permission report of one connection: the check's fields, or its mode's.
#[derive(Debug, Clone, Copy)]
pub struct Scoping<'a> {
    pub source: Option<&'a ScopeSource>,
    pub required: &'a [String],
    pub implied: &'a BTreeMap<String, Vec<String>>,
}

impl CheckSpec {
    /// How a connection of `mode` (an auth mode's `type`) reports its permissions.
    pub fn scoping(&self, mode: Option<&str>) -> Scoping<'_> {
        match mode.and_then(|mode| self.modes.get(mode)) {
            Some(own) => Scoping {
                source: own.scopes.as_ref(),
                required: &own.required_scopes,
                implied: &own.implied_scopes,
            },
            None => Scoping {
                source: self.scopes.as_ref(),
                required: &self.required_scopes,
                implied: &self.implied_scopes,
            },
        }
    }
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
    /// What the token endpoint granted the token the mode minted: `scope` of an OAuth
    /// answer (or the scopes requested, when it says nothing, as RFC 6749 §5.1 allows), or
    /// the exchange's `granted_path`.
    Token(TokenAnswer),
}

/// `scopes: token_answer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenAnswer {
    TokenAnswer,
}

fn comma() -> String {
    ",".into()
}
