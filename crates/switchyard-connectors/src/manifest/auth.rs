//! Auth modes a manifest declares. The credential values themselves live in the vault; a
//! mode says which fields a connection's credential holds and where they go on a request.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// `private_key` (PEM), optionally `key_id` (the JWT's `kid`).
    JwtBearer(JwtBearerSpec),
    /// Headers built from credential fields (`X-Api-Key: "{{ secrets.key }}"`).
    CustomHeaders { headers: BTreeMap<String, String> },
    /// AWS Signature Version 4: every attempt is signed with the connection's access keys;
    /// credential fields `access_key_id` and `secret_access_key`, optionally `session_token`.
    #[serde(rename = "aws_sigv4")]
    AwsSigV4(AwsSigV4Spec),
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
            Self::AwsSigV4(_) => "aws_sigv4",
        }
    }

    /// Whether the token this mode mints comes with what it is granted, for a check that
    /// reports `scopes: token_answer`: an OAuth client-credentials or RFC 7523 answer's
    /// `scope`, or a bearer-style exchange with a `granted_path`.
    pub fn token_answer_grants(&self) -> bool {
        match self {
            Self::OAuth2(spec) => spec.grant == OAuthGrant::ClientCredentials,
            Self::JwtBearer(spec) => match &spec.exchange {
                Some(TokenExchange::Bearer { granted_path, .. }) => granted_path.is_some(),
                Some(TokenExchange::Assertion { .. }) => true,
                None => false,
            },
            _ => false,
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
            Self::AwsSigV4(_) => vec!["access_key_id".into(), "secret_access_key".into()],
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
            // The `kid` of the JWT (a Google service account's `private_key_id`).
            Self::JwtBearer(_) => &["key_id"],
            // Temporary credentials (STS) come with a token signed into each request.
            Self::AwsSigV4(_) => &["session_token"],
            _ => &[],
        }
    }
}

/// What an `aws_sigv4` mode signs for: the credential scope of each signature.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsSigV4Spec {
    /// The service's signing name (`iam`, `sts`, `s3`, `execute-api`): lowercase letters,
    /// digits and `-`. `s3` also signs the body's hash in `X-Amz-Content-Sha256`.
    pub service: String,
    /// The region signed for, a template over the connection config
    /// (`"{{ config.region | default('us-east-1') }}"`); global services such as IAM sign
    /// for `us-east-1`.
    pub region: String,
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
    /// Connection settings the authorization-code answer carries, by JSONPath into it
    /// (Slack's `team_id: "$.team.id"`): the connect flow writes them into the new
    /// connection's config, over what the session gave. Never a token's path.
    #[serde(default)]
    pub config_from_token: BTreeMap<String, String>,
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
    /// Claims, templates over config (`iss: "{{ config.app_id }}"`); one that renders to
    /// empty text or null is left out (optional delegation: `sub: "{{ config.subject }}"`).
    /// `iat` and `exp` are set by the engine.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// How long each JWT lives (GitHub allows at most 10 minutes).
    #[serde(default = "ten_minutes")]
    pub lifetime: ManifestDuration,
    /// How far `iat` is backdated against clock drift.
    #[serde(default)]
    pub backdate: Option<ManifestDuration>,
    /// The token exchange, when the JWT buys an access token (GitHub App installation
    /// tokens; Google service accounts and Salesforce with `style: assertion`); without it
    /// the JWT is the bearer token.
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

/// How a `jwt_bearer` mode's JWT buys an access token.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(try_from = "ExchangeFields")]
pub enum TokenExchange {
    /// GitHub style: the JWT is the `Authorization: Bearer` credential of a request whose
    /// answer holds the token at `token_path`.
    Bearer {
        method: String,
        /// Path template (`/app/installations/{{ config.installation_id }}/access_tokens`)
        /// or URL.
        url: String,
        /// JSONPath of the token in the response.
        token_path: String,
        /// JSONPath of its expiry (RFC 3339 or epoch seconds), if the response has one.
        expires_at_path: Option<String>,
        /// JSONPath of what the token is granted (GitHub's installation `permissions`), for
        /// a check that reports `scopes: token_answer`.
        granted_path: Option<String>,
        /// How long a token lives when the response says nothing.
        default_token_lifetime: Option<ManifestDuration>,
    },
    /// RFC 7523 §2.1 (Google service accounts, Salesforce): the JWT is the `assertion` of a
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer` grant POSTed to an OAuth token endpoint,
    /// which answers as RFC 6749 §5.1 (`access_token`, `expires_in`).
    Assertion {
        /// Template of the token endpoint's URL, or a path on the connection's base URL.
        url: String,
        /// How long a token lives when the answer has no `expires_in` (Salesforce's).
        default_token_lifetime: Option<ManifestDuration>,
    },
}

impl TokenExchange {
    /// The `style` as written in the manifest.
    pub fn style(&self) -> &'static str {
        match self {
            Self::Bearer { .. } => "bearer",
            Self::Assertion { .. } => "assertion",
        }
    }

    /// The exchange URL template.
    pub fn url(&self) -> &str {
        match self {
            Self::Bearer { url, .. } | Self::Assertion { url, .. } => url,
        }
    }
}

/// A `jwt_bearer` exchange as written; [`TokenExchange`] is what it means. Fields that only
/// one style reads are refused for the other, so a manifest never says what is ignored.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "TokenExchange",
    extend(
        "if" = {"properties": {"style": {"const": "assertion"}}, "required": ["style"]},
        "then" = {"properties": {"method": {"pattern": "^[Pp][Oo][Ss][Tt]$"}},
                  "not": {"anyOf": [{"required": ["token_path"]}, {"required": ["expires_at_path"]}, {"required": ["granted_path"]}]}},
        "else" = {"required": ["token_path"]}
    )
)]
struct ExchangeFields {
    /// `bearer` (default): the JWT is sent as `Authorization: Bearer` and the token read at
    /// `token_path`. `assertion`: the JWT is the `assertion` of an RFC 7523 grant and the
    /// answer is a standard OAuth token response.
    #[serde(default)]
    style: ExchangeStyle,
    /// HTTP method (default `POST`; an assertion grant is always `POST`).
    #[serde(default)]
    method: Option<String>,
    /// Template of a URL, or of a path on the connection's base URL.
    url: String,
    /// JSONPath of the token in the response (`bearer` only, required there).
    #[serde(default)]
    token_path: Option<String>,
    /// JSONPath of its expiry, RFC 3339 or epoch seconds (`bearer` only).
    #[serde(default)]
    expires_at_path: Option<String>,
    /// JSONPath of what the token is granted (`bearer` only): a list of strings, one
    /// separated string, or an object of permission → level (GitHub's `permissions`, read as
    /// `members:read`). An assertion grant's answer says it in `scope`.
    #[serde(default)]
    granted_path: Option<String>,
    /// How long a token lives when the answer says nothing; without either, every attempt
    /// exchanges anew.
    #[serde(default)]
    default_token_lifetime: Option<ManifestDuration>,
}

/// How the JWT reaches the exchange, and how the answer is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum ExchangeStyle {
    #[default]
    Bearer,
    Assertion,
}

impl TryFrom<ExchangeFields> for TokenExchange {
    type Error = String;

    fn try_from(fields: ExchangeFields) -> Result<Self, Self::Error> {
        let ExchangeFields {
            style,
            method,
            url,
            token_path,
            expires_at_path,
            granted_path,
            default_token_lifetime,
        } = fields;
        match style {
            ExchangeStyle::Bearer => Ok(Self::Bearer {
                method: method.unwrap_or_else(|| "POST".into()),
                url,
                token_path: token_path.ok_or(
                    "`exchange` needs `token_path`, the JSONPath of the token in the answer \
                     (or `style: assertion` for an RFC 7523 OAuth token endpoint)",
                )?,
                expires_at_path,
                granted_path,
                default_token_lifetime,
            }),
            ExchangeStyle::Assertion => {
                if let Some(method) = method.filter(|m| !m.eq_ignore_ascii_case("POST")) {
                    return Err(format!(
                        "`style: assertion` is always POSTed to the token endpoint, not `{method}`"
                    ));
                }
                let bearer_only = [
                    ("token_path", &token_path),
                    ("expires_at_path", &expires_at_path),
                    ("granted_path", &granted_path),
                ];
                if let Some((name, _)) = bearer_only.iter().find(|(_, v)| v.is_some()) {
                    return Err(format!(
                        "`style: assertion` reads the standard OAuth answer (`access_token`, \
                         `expires_in`): `{name}` does not apply"
                    ));
                }
                Ok(Self::Assertion {
                    url,
                    default_token_lifetime,
                })
            }
        }
    }
}
