//! The OAuth 2.0 authorization-code flow's protocol pieces (RFC 6749 §4.1, RFC 7636): PKCE
//! pairs and `state` values, the provider's authorization URL, and the token set the token
//! endpoint issues, in its vault form. The token requests themselves are the
//! [`TokenBroker`](super::TokenBroker)'s (`exchange_code`, `refresh`).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use super::{CredentialFieldsError, TokenError};
use crate::manifest::OAuth2Spec;
use crate::template;

/// Query parameters the flow sets itself; `authorization_params` may not replace them.
const RESERVED_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// 32 random bytes, base64url without padding.
fn random_base64url() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// 32 random bytes, base64url without padding: OAuth `state` values, connect-session tokens.
pub fn random_token() -> String {
    random_base64url()
}

/// PKCE (RFC 7636) S256: a 43+ char verifier from 32 random bytes (base64url, no padding) and
/// its challenge = base64url(SHA-256(verifier)). Debug redacts the verifier.
#[derive(Clone)]
pub struct Pkce {
    verifier: SecretString,
    challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"[REDACTED]")
            .field("challenge", &self.challenge)
            .finish()
    }
}

impl Pkce {
    pub fn generate() -> Self {
        Self::from_verifier(SecretString::from(random_base64url()))
    }

    /// The pair for a verifier kept from the start of the flow (the challenge is recomputed).
    pub fn from_verifier(verifier: SecretString) -> Self {
        let digest = Sha256::digest(verifier.expose_secret().as_bytes());
        Self {
            challenge: URL_SAFE_NO_PAD.encode(digest),
            verifier,
        }
    }

    pub fn verifier(&self) -> &SecretString {
        &self.verifier
    }

    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

/// What a token endpoint issued (authorization code or refresh grant). Debug redacts tokens.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<OffsetDateTime>,
    pub scope: Option<String>,
    pub token_type: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[REDACTED]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("token_type", &self.token_type)
            .finish()
    }
}

impl TokenSet {
    /// The vault form: {"access_token", "refresh_token"?, "expires_at"? (RFC 3339), "scope"?,
    /// "token_type"?} — exactly the oauth2 authorization_code mode's credential fields
    /// (see AuthMode::credential_fields / optional_credential_fields).
    pub fn into_fields(self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert(
            "access_token".into(),
            json!(self.access_token.expose_secret()),
        );
        if let Some(refresh) = &self.refresh_token {
            fields.insert("refresh_token".into(), json!(refresh.expose_secret()));
        }
        if let Some(text) = self.expires_at.and_then(|at| at.format(&Rfc3339).ok()) {
            fields.insert("expires_at".into(), json!(text));
        }
        if let Some(scope) = self.scope {
            fields.insert("scope".into(), json!(scope));
        }
        if let Some(kind) = self.token_type {
            fields.insert("token_type".into(), json!(kind));
        }
        fields
    }

    /// Reads the vault form back. Fields other than the five are left to
    /// [`check_fields`](super::check_fields); a present field of the wrong kind (or an
    /// `expires_at` that is not RFC 3339) is named as missing, without its value.
    pub fn from_fields(fields: &Map<String, Value>) -> Result<Self, CredentialFieldsError> {
        let access_token = optional_text(fields, "access_token")?
            .filter(|token| !token.is_empty())
            .ok_or_else(|| CredentialFieldsError::Missing("access_token".into()))?;
        let expires_at = optional_text(fields, "expires_at")?
            .map(|text| {
                OffsetDateTime::parse(text, &Rfc3339)
                    .map_err(|_| CredentialFieldsError::Missing("expires_at".into()))
            })
            .transpose()?;
        Ok(Self {
            access_token: SecretString::from(access_token.to_owned()),
            refresh_token: optional_text(fields, "refresh_token")?
                .filter(|token| !token.is_empty())
                .map(|token| SecretString::from(token.to_owned())),
            expires_at,
            scope: optional_text(fields, "scope")?.map(str::to_owned),
            token_type: optional_text(fields, "token_type")?.map(str::to_owned),
        })
    }

    /// RFC 6749 §6: a refresh answer may omit the refresh token; the old one then stays valid.
    pub fn keep_refresh_token(mut self, previous: Option<SecretString>) -> Self {
        if self.refresh_token.is_none() {
            self.refresh_token = previous;
        }
        self
    }

    /// Whether the access token should be refreshed now: expires_at - margin <= now.
    /// No expiry known → false.
    pub fn due(&self, now: OffsetDateTime, margin: Duration) -> bool {
        let Some(expires_at) = self.expires_at else {
            return false;
        };
        let margin = time::Duration::try_from(margin).unwrap_or(time::Duration::MAX);
        match expires_at.checked_sub(margin) {
            Some(refresh_at) => refresh_at <= now,
            // A margin reaching past the start of time: always due.
            None => true,
        }
    }
}

/// `name` as text when present (null counts as absent).
fn optional_text<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, CredentialFieldsError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(CredentialFieldsError::Missing(name.to_owned())),
    }
}

/// When a token issued `now` for `lifetime` expires; `None` past what RFC 3339 can write
/// (a lifetime of centuries is no expiry).
pub(super) fn expiry(now: OffsetDateTime, lifetime: Duration) -> Option<OffsetDateTime> {
    let lifetime = time::Duration::try_from(lifetime).ok()?;
    now.checked_add(lifetime).filter(|at| at.year() <= 9999)
}

/// A tenant's OAuth client registration as the token endpoint needs it. Debug redacts.
#[derive(Clone)]
pub struct ClientRegistration {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// PEM, for private_key_jwt.
    pub private_key: Option<SecretString>,
    pub key_id: Option<String>,
}

impl std::fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("key_id", &self.key_id)
            .finish()
    }
}

pub struct AuthorizationRequest<'a> {
    pub spec: &'a OAuth2Spec,
    /// The connection config (templates render over {"config": …}).
    pub config: &'a Value,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    /// Overrides spec.scopes when Some (a tenant's client registration may list its own).
    pub scopes: Option<&'a [String]>,
    pub state: &'a str,
    /// Some when spec.pkce.
    pub pkce: Option<&'a Pkce>,
}

/// The provider's authorization URL: spec.authorization_url rendered over the config (error if
/// the spec has none or it is not http(s)), plus response_type=code, client_id, redirect_uri,
/// scope (joined by spec.scope_separator; omitted when empty), state, code_challenge and
/// code_challenge_method=S256 (with pkce), and spec.authorization_params (rendered; one that
/// renders empty is left out). Existing query parameters of the template are kept.
pub fn authorization_url(request: &AuthorizationRequest<'_>) -> Result<Url, TokenError> {
    let spec = request.spec;
    let template_text = spec
        .authorization_url
        .as_deref()
        .ok_or(TokenError::NoAuthorizationUrl)?;
    let context = json!({"config": request.config});
    let text = template::render(template_text, &context)?;
    let mut url = Url::parse(&text).map_err(|_| TokenError::Url(text.clone()))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(TokenError::Url(text));
    }
    let extra = rendered_params(&spec.authorization_params, &context)?;
    let scopes = request.scopes.unwrap_or(&spec.scopes);
    let scope = scopes.join(&spec.scope_separator);
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", request.client_id)
            .append_pair("redirect_uri", request.redirect_uri);
        if !scope.is_empty() {
            query.append_pair("scope", &scope);
        }
        query.append_pair("state", request.state);
        if let Some(pkce) = request.pkce {
            query
                .append_pair("code_challenge", pkce.challenge())
                .append_pair("code_challenge_method", "S256");
        }
        for (name, value) in &extra {
            query.append_pair(name, value);
        }
    }
    Ok(url)
}

/// The manifest's extra authorization parameters, rendered; empty values are dropped.
fn rendered_params(
    params: &BTreeMap<String, String>,
    context: &Value,
) -> Result<Vec<(String, String)>, TokenError> {
    let mut rendered = Vec::new();
    for (name, value) in params {
        if RESERVED_PARAMS.contains(&name.as_str()) {
            return Err(TokenError::ReservedParameter(name.clone()));
        }
        let value = template::render(value, context)?;
        if !value.is_empty() {
            rendered.push((name.clone(), value));
        }
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::manifest::AuthMode;

    fn spec(yaml: &str) -> OAuth2Spec {
        match serde_norway::from_str::<AuthMode>(yaml).unwrap() {
            AuthMode::OAuth2(spec) => spec,
            other => panic!("not oauth2: {other:?}"),
        }
    }

    fn query(url: &Url) -> HashMap<String, String> {
        url.query_pairs().into_owned().collect()
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        // The appendix's 32 octets, its verifier and its challenge.
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(URL_SAFE_NO_PAD.encode(octets), verifier);
        let pkce = Pkce::from_verifier(SecretString::from(verifier));
        assert_eq!(
            pkce.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(pkce.verifier().expose_secret(), verifier);
    }

    #[test]
    fn generated_pkce_and_tokens_are_fresh_base64url() {
        let one = Pkce::generate();
        let two = Pkce::generate();
        let verifier = one.verifier().expose_secret();
        assert_eq!(verifier.len(), 43);
        assert!(
            verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(verifier, two.verifier().expose_secret());
        assert_eq!(
            Pkce::from_verifier(one.verifier().clone()).challenge(),
            one.challenge()
        );
        let debug = format!("{one:?}");
        assert!(!debug.contains(verifier), "{debug}");
        assert!(debug.contains(one.challenge()));

        let token = random_token();
        assert_eq!(token.len(), 43);
        assert_ne!(token, random_token());
    }

    #[test]
    fn the_authorization_url_carries_every_parameter_escaped() {
        let spec = spec(
            r#"{type: oauth2, token_url: /t, scopes: ["read:jira-work", "offline_access"],
               authorization_url: "https://{{ config.domain }}/authorize?audience=api.example.com",
               authorization_params: {prompt: consent, login_hint: "{{ config.email }}", hd: ""}}"#,
        );
        let config = json!({"domain": "auth.example.com", "email": "a+b@example.com"});
        let pkce = Pkce::generate();
        let url = authorization_url(&AuthorizationRequest {
            spec: &spec,
            config: &config,
            client_id: "client id&1",
            redirect_uri: "https://switchyard.example.com/oauth/callback?x=1",
            scopes: None,
            state: "st/ate=",
            pkce: Some(&pkce),
        })
        .unwrap();
        assert_eq!(url.host_str(), Some("auth.example.com"));
        assert_eq!(url.path(), "/authorize");
        let params = query(&url);
        assert_eq!(params["audience"], "api.example.com");
        assert_eq!(params["response_type"], "code");
        assert_eq!(params["client_id"], "client id&1");
        assert_eq!(
            params["redirect_uri"],
            "https://switchyard.example.com/oauth/callback?x=1"
        );
        assert_eq!(params["scope"], "read:jira-work offline_access");
        assert_eq!(params["state"], "st/ate=");
        assert_eq!(params["code_challenge"], pkce.challenge());
        assert_eq!(params["code_challenge_method"], "S256");
        assert_eq!(params["prompt"], "consent");
        assert_eq!(params["login_hint"], "a+b@example.com");
        assert!(!params.contains_key("hd"));
        // Escaped on the wire: nothing of the values leaks into the URL's structure.
        let raw = url.query().unwrap();
        assert!(raw.contains("client_id=client+id%261"), "{raw}");
        assert!(raw.contains("state=st%2Fate%3D"), "{raw}");
        assert!(!url.as_str().contains(pkce.verifier().expose_secret()));
    }

    #[test]
    fn scopes_can_be_overridden_or_left_out_and_pkce_is_optional() {
        let spec = spec(
            r#"{type: oauth2, token_url: /t, scopes: [a, b], scope_separator: ",",
               authorization_url: "https://slack.com/oauth/v2/authorize"}"#,
        );
        let config = json!({});
        let mut request = AuthorizationRequest {
            spec: &spec,
            config: &config,
            client_id: "c",
            redirect_uri: "https://s.example.com/cb",
            scopes: None,
            state: "s",
            pkce: None,
        };
        let params = query(&authorization_url(&request).unwrap());
        assert_eq!(params["scope"], "a,b");
        assert!(!params.contains_key("code_challenge"));
        assert!(!params.contains_key("code_challenge_method"));
        let own = vec!["chat:write".to_owned(), "users:read".to_owned()];
        request.scopes = Some(&own);
        assert_eq!(
            query(&authorization_url(&request).unwrap())["scope"],
            "chat:write,users:read"
        );
        request.scopes = Some(&[]);
        assert!(!query(&authorization_url(&request).unwrap()).contains_key("scope"));
    }

    #[test]
    fn a_bad_authorization_url_or_parameter_is_a_config_error() {
        let config = json!({"domain": "example.com"});
        let request = |spec| AuthorizationRequest {
            spec,
            config: &config,
            client_id: "c",
            redirect_uri: "https://s.example.com/cb",
            scopes: None,
            state: "s",
            pkce: None,
        };
        let none = spec("{type: oauth2, token_url: /t}");
        assert!(matches!(
            authorization_url(&request(&none)),
            Err(TokenError::NoAuthorizationUrl)
        ));
        let file = spec("{type: oauth2, token_url: /t, authorization_url: 'file:///etc/passwd'}");
        assert!(matches!(
            authorization_url(&request(&file)),
            Err(TokenError::Url(_))
        ));
        let reserved = spec(
            "{type: oauth2, token_url: /t, authorization_url: 'https://x.example.com/a',
              authorization_params: {redirect_uri: 'https://evil.example.com'}}",
        );
        let error = authorization_url(&request(&reserved)).unwrap_err();
        assert!(matches!(&error, TokenError::ReservedParameter(name) if name == "redirect_uri"));
        assert_eq!(error.code(), "auth_config_invalid");
    }

    #[test]
    fn token_sets_round_trip_through_the_vault_fields() {
        let expires_at = OffsetDateTime::parse("2030-01-02T03:04:05Z", &Rfc3339).unwrap();
        let set = TokenSet {
            access_token: SecretString::from("acc-123"),
            refresh_token: Some(SecretString::from("ref-456")),
            expires_at: Some(expires_at),
            scope: Some("read write".into()),
            token_type: Some("Bearer".into()),
        };
        let fields = set.into_fields();
        assert_eq!(
            Value::Object(fields.clone()),
            json!({"access_token": "acc-123", "refresh_token": "ref-456",
                   "expires_at": "2030-01-02T03:04:05Z", "scope": "read write",
                   "token_type": "Bearer"})
        );
        let mode: AuthMode = serde_norway::from_str("{type: oauth2, token_url: /t}").unwrap();
        assert!(super::super::check_fields(&mode, &fields).is_ok());
        let back = TokenSet::from_fields(&fields).unwrap();
        assert_eq!(back.access_token.expose_secret(), "acc-123");
        assert_eq!(
            back.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("ref-456")
        );
        assert_eq!(back.expires_at, Some(expires_at));
        assert_eq!(back.scope.as_deref(), Some("read write"));
        assert_eq!(back.token_type.as_deref(), Some("Bearer"));

        let minimal =
            TokenSet::from_fields(json!({"access_token": "a"}).as_object().unwrap()).unwrap();
        assert!(minimal.refresh_token.is_none() && minimal.expires_at.is_none());
        assert_eq!(
            Value::Object(minimal.into_fields()),
            json!({"access_token": "a"})
        );
    }

    #[test]
    fn unreadable_fields_are_named_without_their_values() {
        for (fields, name) in [
            (json!({}), "access_token"),
            (json!({"access_token": ""}), "access_token"),
            (
                json!({"access_token": "a", "expires_at": "soon-ish"}),
                "expires_at",
            ),
            (
                json!({"access_token": "a", "refresh_token": 7}),
                "refresh_token",
            ),
        ] {
            let error = TokenSet::from_fields(fields.as_object().unwrap()).unwrap_err();
            assert!(
                matches!(&error, CredentialFieldsError::Missing(field) if field == name),
                "{error}"
            );
            assert!(!error.to_string().contains("soon-ish"));
        }
    }

    #[test]
    fn refresh_answers_keep_the_previous_refresh_token_when_they_omit_one() {
        let set = |refresh: Option<&str>| TokenSet {
            access_token: SecretString::from("a"),
            refresh_token: refresh.map(SecretString::from),
            expires_at: None,
            scope: None,
            token_type: None,
        };
        let kept = set(None).keep_refresh_token(Some(SecretString::from("old")));
        assert_eq!(
            kept.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("old")
        );
        let rotated = set(Some("new")).keep_refresh_token(Some(SecretString::from("old")));
        assert_eq!(
            rotated.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("new")
        );
    }

    #[test]
    fn a_token_is_due_within_the_margin_of_its_expiry() {
        let now = OffsetDateTime::now_utc();
        let mut set = TokenSet {
            access_token: SecretString::from("a"),
            refresh_token: None,
            expires_at: None,
            scope: None,
            token_type: None,
        };
        let margin = Duration::from_secs(300);
        assert!(!set.due(now, margin));
        set.expires_at = Some(now + time::Duration::minutes(10));
        assert!(!set.due(now, margin));
        set.expires_at = Some(now + time::Duration::minutes(5));
        assert!(set.due(now, margin));
        set.expires_at = Some(now - time::Duration::minutes(1));
        assert!(set.due(now, Duration::ZERO));
        assert!(set.due(now, Duration::MAX));
    }

    #[test]
    fn expiries_past_rfc_3339_are_no_expiry() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            expiry(now, Duration::from_secs(60)),
            Some(now + time::Duration::seconds(60))
        );
        assert_eq!(expiry(now, Duration::from_secs(u64::MAX)), None);
        assert_eq!(
            expiry(now, Duration::from_secs(400 * 365 * 86_400 * 25)),
            None
        );
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let set = TokenSet {
            access_token: SecretString::from("acc-secret"),
            refresh_token: Some(SecretString::from("ref-secret")),
            expires_at: None,
            scope: Some("read".into()),
            token_type: None,
        };
        let debug = format!("{set:?}");
        assert!(!debug.contains("acc-secret") && !debug.contains("ref-secret"));
        assert!(debug.contains("read"));
        let client = ClientRegistration {
            client_id: "client-1".into(),
            client_secret: Some(SecretString::from("cs-secret")),
            private_key: Some(SecretString::from("pem-secret")),
            key_id: Some("kid".into()),
        };
        let debug = format!("{client:?}");
        assert!(!debug.contains("cs-secret") && !debug.contains("pem-secret"));
        assert!(debug.contains("client-1"));
    }
}
