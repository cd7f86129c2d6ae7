//! Auth modes a manifest declares. The credential values themselves live in the vault; a
//! mode says which fields a connection's credential holds and where they go on a request.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::ManifestDuration;

/// One way to authenticate to the provider.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthMode {
    /// A static key in a header or query parameter; credential field `api_key`.
    ApiKey {
        #[serde(rename = "in")]
        location: ApiKeyLocation,
        /// Header or query parameter name.
        name: String,
        /// Put before the key (`SSWS `, `Token `).
        #[serde(default)]
        prefix: String,
    },
    /// `Authorization: Bearer …`; credential field `token`.
    Bearer,
    /// HTTP basic; credential fields `username` and `password`.
    Basic,
    /// OAuth 2.0; credential fields `access_token` (and `refresh_token`), obtained by the
    /// connect flows.
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Spec),
    /// A signed JWT, used as is or exchanged for an access token; credential field
    /// `private_key` (PEM).
    JwtBearer(JwtBearerSpec),
    /// Headers built from credential fields (`X-Api-Key: "{{ secrets.key }}"`).
    CustomHeaders { headers: BTreeMap<String, String> },
}

impl AuthMode {
    /// The mode's `type` as written in the manifest.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ApiKey { .. } => "api_key",
            Self::Bearer => "bearer",
            Self::Basic => "basic",
            Self::OAuth2(_) => "oauth2",
            Self::JwtBearer(_) => "jwt_bearer",
            Self::CustomHeaders { .. } => "custom_headers",
        }
    }

    /// The credential fields a connection using this mode must supply.
    pub fn credential_fields(&self) -> Vec<String> {
        match self {
            Self::ApiKey { .. } => vec!["api_key".into()],
            Self::Bearer => vec!["token".into()],
            Self::Basic => vec!["username".into(), "password".into()],
            Self::OAuth2(spec) => match (spec.grant, spec.token_auth_method) {
                (OAuthGrant::AuthorizationCode, _) => vec!["access_token".into()],
                (OAuthGrant::ClientCredentials, TokenAuthMethod::PrivateKeyJwt) => {
                    vec!["client_id".into(), "private_key".into()]
                }
                (OAuthGrant::ClientCredentials, _) => {
                    vec!["client_id".into(), "client_secret".into()]
                }
            },
            Self::JwtBearer(_) => vec!["private_key".into()],
            Self::CustomHeaders { headers } => {
                let mut fields: Vec<String> = headers
                    .values()
                    .flat_map(|template| super::load::secret_names(template))
                    .collect();
                fields.sort();
                fields.dedup();
                fields
            }
        }
    }

    /// Fields a credential of this mode may hold besides [`Self::credential_fields`].
    pub fn optional_credential_fields(&self) -> &'static [&'static str] {
        match self {
            // What the authorization-code flows store besides the access token.
            Self::OAuth2(spec) if spec.grant == OAuthGrant::AuthorizationCode => {
                &["refresh_token", "expires_at", "token_type", "scope"]
            }
            // The `kid` the provider registered the public key under.
            Self::OAuth2(spec) if spec.token_auth_method == TokenAuthMethod::PrivateKeyJwt => {
                &["key_id"]
            }
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyLocation {
    Header,
    Query,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Spec {
    #[serde(default)]
    pub grant: OAuthGrant,
    /// Templates over the connection config (`https://{{ config.domain }}/oauth2/v1/authorize`).
    #[serde(default)]
    pub authorization_url: Option<String>,
    /// A URL template, or a path (`/oauth2/v1/token`) on the connection's base URL.
    pub token_url: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Extra query parameters of the authorization request, templates over the connection
    /// config (Google's `access_type: offline`, Atlassian's `audience: api.atlassian.com`).
    #[serde(default)]
    pub authorization_params: BTreeMap<String, String>,
    #[serde(default = "space")]
    pub scope_separator: String,
    #[serde(default = "yes")]
    pub pkce: bool,
    #[serde(default)]
    pub token_auth_method: TokenAuthMethod,
    /// Used when the token response has no `expires_in`.
    #[serde(default)]
    pub default_token_lifetime: Option<ManifestDuration>,
}

fn space() -> String {
    " ".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrant {
    #[default]
    AuthorizationCode,
    ClientCredentials,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtBearerSpec {
    pub algorithm: JwtAlgorithm,
    /// Claims, templates over config (`iss: "{{ config.app_id }}"`); `iat` and `exp` are set
    /// by the engine.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// How long each JWT lives (GitHub allows at most 10 minutes).
    #[serde(default = "ten_minutes")]
    pub lifetime: ManifestDuration,
    /// How far `iat` is backdated against clock drift.
    #[serde(default)]
    pub backdate: Option<ManifestDuration>,
    /// The token exchange, when the JWT buys an access token (GitHub App installation
    /// tokens, Google service accounts); without it the JWT is the bearer token.
    #[serde(default)]
    pub exchange: Option<TokenExchange>,
}

fn ten_minutes() -> ManifestDuration {
    ManifestDuration(std::time::Duration::from_secs(600))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum JwtAlgorithm {
    RS256,
    ES256,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenExchange {
    #[serde(default = "post")]
    pub method: String,
    /// Path template (`/app/installations/{{ config.installation_id }}/access_tokens`) or URL.
    pub url: String,
    /// JSONPath of the token in the response.
    pub token_path: String,
    /// JSONPath of its expiry (RFC 3339 or epoch seconds), if the response has one.
    #[serde(default)]
    pub expires_at_path: Option<String>,
    /// How long a token lives when the response says nothing; without either, every
    /// attempt exchanges anew.
    #[serde(default)]
    pub default_token_lifetime: Option<ManifestDuration>,
}

fn post() -> String {
    "POST".into()
}
