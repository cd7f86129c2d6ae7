//! What a connection's credential becomes on a request, by auth mode.
//!
//! The fields are the JSON object stored in the vault for the connection (`{"token": …}`);
//! they are read for one attempt and dropped with the request. Modes whose credential is
//! the stored value ([`fixed`]: bearer, basic, API keys, custom headers, an OAuth access
//! token) are placed as they are. Modes that mint a token from it (`jwt_bearer`, OAuth
//! client credentials) go through the process's [`TokenBroker`]: it signs JWTs ([`jwt`]),
//! calls the token endpoint ([`endpoint`]) and keeps minted tokens in memory only
//! ([`cache`]) until shortly before they expire.
//!
//! - [`oauth`]: the authorization-code flow's pieces (PKCE, `state`, the authorization URL,
//!   the issued [`oauth::TokenSet`]); the broker exchanges codes and refreshes tokens.
//! - [`fields`]: which fields a mode takes ([`check_fields`]).
//! - [`held`]: a credential held in memory as a call-stack credential source (engine tests,
//!   tools without a vault).

mod broker;
mod cache;
mod endpoint;
mod fields;
mod fixed;
mod held;
pub mod jwt;
pub mod oauth;

pub use broker::{Placement, SecretIdentity, TokenBroker, connection_base_url, oauth_token_url};
pub use fields::{CredentialFieldsError, check_fields};
pub use fixed::credential;
pub use held::HeldCredential;

use std::time::Duration;

use switchyard_http::OutboundError;

use crate::template::TemplateError;

/// Why a credential could not be placed. Messages name fields, templates, URLs and the
/// provider's error codes, never a secret, a JWT or a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Fields(#[from] CredentialFieldsError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("the credential's `private_key` is not an {expected} private key in PEM")]
    PrivateKey { expected: &'static str },
    #[error("the JWT could not be signed")]
    Signing,
    #[error("`{0}` is not an http(s) URL for the token endpoint")]
    Url(String),
    #[error("the auth mode has no `authorization_url`")]
    NoAuthorizationUrl,
    #[error("`authorization_params` cannot set `{0}`: the flow sets it")]
    ReservedParameter(String),
    #[error("the manifest has no auth mode `{0}`")]
    NoMode(String),
    #[error("`{0}` is not an HTTP method")]
    Method(String),
    #[error("header `{0}` cannot be sent")]
    Header(String),
    #[error("the token endpoint could not be reached ({})", .0.code())]
    Unreachable(#[source] OutboundError),
    #[error("the token endpoint did not answer within {0:?}")]
    Timeout(Duration),
    /// The endpoint said no; `error` is its OAuth error code (`invalid_client`) or, for an
    /// exchange, its message.
    #[error(
        "the token endpoint refused the credential: {} (HTTP {status})",
        error.as_deref().unwrap_or("no reason given")
    )]
    Refused { status: u16, error: Option<String> },
    #[error("the token endpoint's answer has no token at `{0}`")]
    MissingToken(String),
    #[error("the token endpoint's answer cannot be read: {0}")]
    InvalidResponse(&'static str),
    #[error("the token endpoint issued a `{0}` token, not a bearer token")]
    TokenType(String),
}

impl From<TokenError> for switchyard_http::CredentialError {
    /// A token endpoint's refusal is the credential's fault (`auth_failed`, not retried);
    /// anything else may pass (a timeout, an endpoint down, a 5xx or 429 answer).
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Refused { .. } if !error.is_transient() => Self::refused(error.to_string()),
            other => Self::unavailable(other.to_string()),
        }
    }
}

impl TokenError {
    /// A stable code for logs and run records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Fields(_) | Self::PrivateKey { .. } => "credential_invalid",
            Self::Template(_)
            | Self::Url(_)
            | Self::NoAuthorizationUrl
            | Self::ReservedParameter(_)
            | Self::NoMode(_)
            | Self::Method(_)
            | Self::Header(_) => "auth_config_invalid",
            Self::Signing => "jwt_signing_failed",
            Self::Unreachable(_) | Self::Timeout(_) => "token_endpoint_unavailable",
            Self::Refused { .. } => "token_refused",
            Self::MissingToken(_) | Self::InvalidResponse(_) | Self::TokenType(_) => {
                "token_response_invalid"
            }
        }
    }

    /// The endpoint answered `invalid_grant` (the refresh token or code is dead). GitHub's and
    /// Slack's names for the same refusal count too.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(
            self,
            Self::Refused { error: Some(code), .. } if matches!(
                code.as_str(),
                "invalid_grant"
                    | "bad_verification_code"
                    | "bad_refresh_token"
                    | "invalid_code"
                    | "invalid_refresh_token"
            )
        )
    }

    /// Worth retrying: unreachable, timeout, or a refusal with HTTP 5xx / 429. An SSRF denial
    /// or an oversized answer is not: the same request meets the same fate.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(error) => matches!(error, OutboundError::Request(_)),
            Self::Timeout(_) => true,
            Self::Refused { status, .. } => *status == 429 || (500..600).contains(status),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::manifest::AuthMode;

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn mode(yaml: &str) -> AuthMode {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn fields_must_match_the_mode() {
        assert!(check_fields(&AuthMode::Bearer, &fields(json!({"token": "t"}))).is_ok());
        assert!(matches!(
            check_fields(&AuthMode::Bearer, &fields(json!({}))),
            Err(CredentialFieldsError::Missing(f)) if f == "token"
        ));
        assert!(matches!(
            check_fields(&AuthMode::Bearer, &fields(json!({"token": "t", "extra": "x"}))),
            Err(CredentialFieldsError::Unexpected(f, "bearer")) if f == "extra"
        ));
        let error = check_fields(
            &AuthMode::Basic,
            &fields(json!({"username": "u", "password": 3})),
        )
        .unwrap_err();
        assert!(!error.to_string().contains('3'));
    }

    #[test]
    fn oauth_fields_follow_the_grant_and_client_authentication() {
        let code = mode("{type: oauth2, token_url: /t}");
        assert_eq!(code.credential_fields(), ["access_token"]);
        assert!(
            check_fields(
                &code,
                &fields(json!({"access_token": "a", "refresh_token": "r"}))
            )
            .is_ok()
        );

        let secret = mode("{type: oauth2, grant: client_credentials, token_url: /t}");
        assert_eq!(secret.credential_fields(), ["client_id", "client_secret"]);
        assert!(
            check_fields(
                &secret,
                &fields(json!({"client_id": "c", "client_secret": "s"}))
            )
            .is_ok()
        );
        assert!(matches!(
            check_fields(&secret, &fields(json!({"client_id": "c", "client_secret": "s", "refresh_token": "r"}))),
            Err(CredentialFieldsError::Unexpected(f, "oauth2")) if f == "refresh_token"
        ));

        let keyed = mode(
            "{type: oauth2, grant: client_credentials, token_auth_method: private_key_jwt, token_url: /t}",
        );
        assert_eq!(keyed.credential_fields(), ["client_id", "private_key"]);
        let with_kid = json!({"client_id": "c", "private_key": "pem", "key_id": "k1"});
        assert!(check_fields(&keyed, &fields(with_kid)).is_ok());
        assert!(matches!(
            check_fields(&keyed, &fields(json!({"client_id": "c", "client_secret": "s"}))),
            Err(CredentialFieldsError::Missing(f)) if f == "private_key"
        ));
    }

    #[test]
    fn errors_name_the_oauth_code_and_nothing_sent() {
        let error = TokenError::Refused {
            status: 401,
            error: Some("invalid_client".into()),
        };
        assert_eq!(
            error.to_string(),
            "the token endpoint refused the credential: invalid_client (HTTP 401)"
        );
        assert_eq!(error.code(), "token_refused");
    }
}
