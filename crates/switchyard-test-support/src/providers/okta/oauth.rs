//! OAuth 2.0 for Okta service apps: `POST /oauth2/v1/token` on the org authorization server,
//! client credentials with `private_key_jwt` (the only client authentication Okta allows for
//! `okta.*` scopes). The client assertion must be an RS256 JWT signed with the app's
//! registered key, `iss` = `sub` = the client id, `aud` = this token URL, an `exp` in the
//! future (at most an hour away); a `jti` may not be used twice. Every requested scope must be
//! granted to the app. Errors are `{"error","error_description"}` as Okta sends them.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der},
    rsa::{KeyPair, KeySize},
    signature::KeyPair as _,
};
use axum::{
    Form, Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use crate::keys::pem;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A service app registered in the org: its client id, public key and granted scopes.
#[derive(Debug, Clone)]
pub struct ServiceApp {
    pub client_id: String,
    /// The registered public key (SPKI PEM, `-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: String,
    /// The key's `kid`, when the app's JWKS names one.
    pub key_id: Option<String>,
    /// The scopes granted to the app (`okta.users.read`…).
    pub granted_scopes: Vec<String>,
}

/// An RSA key pair generated for a test: the private half goes into the connection's
/// credential, the public half is registered with the stand-in's service app.
#[derive(Clone)]
pub struct ServiceAppKey {
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
    pub public_key_pem: String,
}

impl std::fmt::Debug for ServiceAppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceAppKey(<redacted>)")
    }
}

impl ServiceAppKey {
    /// A fresh 2048-bit RSA key pair.
    ///
    /// # Panics
    /// When the platform cannot generate a key: nothing a test could do about it.
    pub fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("an RSA key pair");
        let private: Pkcs8V1Der<'static> = pair.as_der().expect("a PKCS#8 private key");
        let public: PublicKeyX509Der<'static> =
            pair.public_key().as_der().expect("an SPKI public key");
        Self {
            private_key_pem: pem("PRIVATE KEY", private.as_ref()),
            public_key_pem: pem("PUBLIC KEY", public.as_ref()),
        }
    }
}

/// Issued access tokens and used assertion ids.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    state: Mutex<TokenState>,
}

#[derive(Debug, Default)]
struct TokenState {
    issued: HashMap<String, (Vec<String>, SystemTime)>,
    used_jti: BTreeSet<String>,
    grants: u64,
}

impl Tokens {
    fn lock(&self) -> MutexGuard<'_, TokenState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The scopes of a live access token; `None` for one never issued or expired.
    pub(crate) fn scopes_of(&self, token: &str) -> Option<Vec<String>> {
        let state = self.lock();
        let (scopes, expires) = state.issued.get(token)?;
        (SystemTime::now() < *expires).then(|| scopes.clone())
    }

    pub(crate) fn grants(&self) -> u64 {
        self.lock().grants
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: u64,
    #[serde(default)]
    jti: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn invalid_client(description: &str) -> Response {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description)
}

/// The unverified payload of a JWT: only to find which app's key verifies it.
fn unverified_issuer(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<TokenForm>,
) -> Response {
    if form.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        );
    }
    let (Some(assertion_type), Some(assertion)) =
        (&form.client_assertion_type, &form.client_assertion)
    else {
        return invalid_client(
            "Client authentication failed. Either the client or the client credentials are invalid.",
        );
    };
    if assertion_type != ASSERTION_TYPE {
        return invalid_client("The client_assertion_type is invalid.");
    }
    let Some(issuer) = unverified_issuer(assertion) else {
        return invalid_client("The client_assertion is not a valid JWT.");
    };
    let Some(app) = shared
        .options
        .service_apps
        .iter()
        .find(|app| app.client_id == issuer)
    else {
        return invalid_client("The client_id is invalid.");
    };
    if form
        .client_id
        .as_ref()
        .is_some_and(|id| *id != app.client_id)
    {
        return invalid_client("The client_id does not match the client_assertion issuer.");
    }
    let key_id = jsonwebtoken::decode_header(assertion.as_str())
        .ok()
        .and_then(|header| header.kid);
    if let (Some(registered), Some(sent)) = (&app.key_id, &key_id)
        && registered != sent
    {
        return invalid_client("The client_assertion signature is invalid.");
    }
    let Ok(key) = DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes()) else {
        return invalid_client("The client has no valid registered key.");
    };
    let token_url = format!("{}/oauth2/v1/token", shared.base_url);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&token_url]);
    validation.set_issuer(&[&app.client_id]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = 0;
    let claims = match jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(error) => {
            let description = match error.kind() {
                ErrorKind::ExpiredSignature => "The client_assertion token is expired.",
                ErrorKind::InvalidAudience => {
                    "The audience claim for client_assertion must be the endpoint invoked for the request."
                }
                ErrorKind::InvalidIssuer => {
                    "The issuer claim for client_assertion must be the client_id."
                }
                ErrorKind::InvalidAlgorithm => "The client_assertion algorithm is not supported.",
                _ => "The client_assertion signature is invalid.",
            };
            return invalid_client(description);
        }
    };
    if claims.sub != app.client_id || claims.iss != app.client_id {
        return invalid_client("The subject claim for client_assertion must be the client_id.");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if claims.exp > now + 3_600 {
        return invalid_client(
            "The client_assertion token has an expiration too far into the future.",
        );
    }
    let requested: Vec<String> = form
        .scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if requested.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        );
    }
    if let Some(denied) = requested.iter().find(|s| !app.granted_scopes.contains(s)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("The following scopes are not allowed: {denied}"),
        );
    }
    let access_token = format!("eyJ{}", uuid::Uuid::new_v4().simple());
    let lifetime = shared.options.access_token_lifetime;
    {
        let mut state = shared.oauth.lock();
        if let Some(jti) = claims.jti
            && !state.used_jti.insert(jti)
        {
            drop(state);
            return invalid_client("The client_assertion token has already been used.");
        }
        state.grants += 1;
        state.issued.insert(
            access_token.clone(),
            (requested.clone(), SystemTime::now() + lifetime),
        );
    }
    let mut response = Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "access_token": access_token,
        "scope": requested.join(" "),
    }))
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The default access-token lifetime Okta uses for service apps.
pub(crate) const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3_600);
