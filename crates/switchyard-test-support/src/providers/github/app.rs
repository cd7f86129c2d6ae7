//! GitHub App authentication: an RS256 JWT signed with the App's private key is exchanged at
//! `POST /app/installations/{id}/access_tokens` for an installation token.
//!
//! The checks are GitHub's documented ones: RS256; `iss` the App id or client id; `iat` not
//! in the future (60 s of clock drift allowed); `exp` in the future and no more than ten
//! minutes after `iat`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    encoding::AsDer,
    rand::{SecureRandom, SystemRandom},
    rsa::{KeyPair, KeySize},
    signature::{self, KeyPair as _, UnparsedPublicKey},
};
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use base64::Engine as _;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{Shared, auth::presented, errors, lists::json_response};
use crate::keys::{pem, pkcs1_from_pkcs8};

const TOKEN_DOCS: &str =
    "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
/// Drift GitHub tolerates on `iat`.
const CLOCK_DRIFT: i64 = 60;
const MAX_LIFETIME: i64 = 600;

/// A GitHub App's RSA key pair, generated for a test.
pub struct AppKey {
    pub(crate) pair: KeyPair,
}

impl AppKey {
    /// A fresh 2048-bit key.
    ///
    /// # Panics
    /// When the system cannot generate a key: nothing a test could work around.
    pub fn generate() -> Self {
        match KeyPair::generate(KeySize::Rsa2048) {
            Ok(pair) => Self { pair },
            Err(_) => panic!("RSA key generation failed"),
        }
    }

    /// The private key as GitHub hands it out: PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`).
    pub fn private_key_pem(&self) -> String {
        pem("RSA PRIVATE KEY", pkcs1_from_pkcs8(&self.pkcs8()))
    }

    /// The same key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), as `openssl pkcs8` converts it.
    pub fn private_key_pkcs8_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8())
    }

    /// The public key, PKCS#1 DER: what the stand-in verifies JWTs with.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    fn pkcs8(&self) -> Vec<u8> {
        self.pair
            .as_der()
            .map(|der| der.as_ref().to_vec())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey(<private>)")
    }
}

/// The App the stand-in knows.
#[derive(Debug, Clone)]
pub struct GitHubApp {
    pub app_id: u64,
    /// Newer Apps may sign with their client id as `iss`.
    pub client_id: String,
    pub installation_id: u64,
    /// PKCS#1 DER ([`AppKey::public_key_der`]).
    pub public_key: Vec<u8>,
    /// The installation's permissions, as the token and installation answers carry them.
    pub permissions: Value,
    /// How long an installation token lives (GitHub: one hour).
    pub token_lifetime: Duration,
}

impl GitHubApp {
    /// An App with `key`, installed as `installation_id` with the permissions the built-in
    /// connector's streams and actions need.
    pub fn new(app_id: u64, installation_id: u64, key: &AppKey) -> Self {
        Self {
            app_id,
            client_id: format!("Iv23li{app_id:014}"),
            installation_id,
            public_key: key.public_key_der(),
            permissions: json!({
                "members": "read",
                "metadata": "read",
                "administration": "read",
                "issues": "write",
                "organization_administration": "read",
            }),
            token_lifetime: Duration::from_secs(3_600),
        }
    }
}

/// The claims of an accepted JWT, for tests that check what the client signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtClaims {
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    /// The stand-in's wall clock when it was accepted.
    pub received_at: i64,
}

#[derive(Debug, Default)]
pub(crate) struct Installations(Mutex<Issued>);

#[derive(Debug, Default)]
struct Issued {
    tokens: HashMap<String, SystemTime>,
    issued: usize,
    accepted: Vec<JwtClaims>,
}

impl Installations {
    fn lock(&self) -> MutexGuard<'_, Issued> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn accepts(&self, token: &str) -> bool {
        self.lock()
            .tokens
            .get(token)
            .is_some_and(|expires| *expires > SystemTime::now())
    }

    pub(crate) fn issued(&self) -> usize {
        self.lock().issued
    }

    pub(crate) fn accepted(&self) -> Vec<JwtClaims> {
        self.lock().accepted.clone()
    }

    pub(crate) fn expire_all(&self) {
        for expires in self.lock().tokens.values_mut() {
            *expires = UNIX_EPOCH;
        }
    }

    fn issue(&self, lifetime: Duration) -> (String, SystemTime) {
        let mut random = [0u8; 24];
        // A failing system RNG leaves zeros; the counter below still keeps tokens apart.
        let _ = SystemRandom::new().fill(&mut random);
        let mut state = self.lock();
        state.issued += 1;
        // Installation tokens are `ghs_` and opaque text whose length may change.
        let token = format!(
            "ghs_{}{}",
            state.issued,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
        );
        let expires = SystemTime::now() + lifetime;
        state.tokens.insert(token.clone(), expires);
        (token, expires)
    }
}

fn jwt_error(message: &str) -> Response {
    errors::error(StatusCode::UNAUTHORIZED, message, errors::REST_DOCS)
}

/// Verifies the App JWT in `headers`: the claims, or GitHub's message for a `401`.
fn verify(app: &GitHubApp, headers: &HeaderMap) -> Result<JwtClaims, &'static str> {
    const UNDECODABLE: &str = "A JSON web token could not be decoded";
    let Some(token) = presented(headers) else {
        return Err(
            "You must authenticate with a JSON web token in order to access this endpoint.",
        );
    };
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(UNDECODABLE);
    };
    let decode = |part: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .ok()
    };
    let header: Option<Value> = decode(header).and_then(|b| serde_json::from_slice(&b).ok());
    let claims: Option<Value> = decode(payload).and_then(|b| serde_json::from_slice(&b).ok());
    let (Some(header), Some(claims), Some(signature)) = (header, claims, decode(signature)) else {
        return Err(UNDECODABLE);
    };
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(UNDECODABLE);
    }
    let signed = &token[..token.len() - parts[2].len() - 1];
    let key = UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &app.public_key);
    if key.verify(signed.as_bytes(), &signature).is_err() {
        return Err(UNDECODABLE);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
        );
    };
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
        );
    };
    if iat > now + CLOCK_DRIFT {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
        );
    }
    if exp <= now {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
        );
    }
    if exp - iat > MAX_LIFETIME || exp > now + MAX_LIFETIME + CLOCK_DRIFT {
        return Err("'Expiration time' claim ('exp') is too far in the future.");
    }
    let iss = match claims.get("iss") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    };
    if iss != app.app_id.to_string() && iss != app.client_id {
        return Err("Integration not found");
    }
    Ok(JwtClaims {
        iss,
        iat,
        exp,
        received_at: now,
    })
}

fn installation_of<'a>(shared: &'a Shared, id: &str) -> Option<&'a GitHubApp> {
    let app = shared.options.app.as_ref()?;
    (id.parse::<u64>().ok() == Some(app.installation_id)).then_some(app)
}

/// `POST /app/installations/{installation_id}/access_tokens`.
pub(crate) async fn access_token(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(app) = shared.options.app.as_ref() else {
        return jwt_error("A JSON web token could not be decoded");
    };
    let claims = match verify(app, &headers) {
        Ok(claims) => claims,
        Err(message) => return jwt_error(message),
    };
    if installation_of(&shared, &id).is_none() {
        return errors::error(StatusCode::NOT_FOUND, "Not Found", TOKEN_DOCS);
    }
    shared.installations.lock().accepted.push(claims);
    let (token, expires) = shared.installations.issue(app.token_lifetime);
    let expires_at = OffsetDateTime::from(expires)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let body = json!({
        "token": token,
        "expires_at": expires_at,
        "permissions": app.permissions,
        "repository_selection": "all",
    });
    json_response(StatusCode::CREATED, body.to_string(), &HeaderMap::new(), "")
}

/// `GET /app/installations/{installation_id}`.
pub(crate) async fn installation(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(app) = shared.options.app.as_ref() else {
        return jwt_error("A JSON web token could not be decoded");
    };
    if let Err(message) = verify(app, &headers) {
        return jwt_error(message);
    }
    let Some(app) = installation_of(&shared, &id) else {
        return errors::not_found();
    };
    let (account, target_id) = {
        let data = shared.org();
        (
            data.user_json(data.id, &shared.options.organization, "Organization"),
            data.id,
        )
    };
    let body = json!({
        "id": app.installation_id,
        "account": account,
        "repository_selection": "all",
        "access_tokens_url": format!("{}/app/installations/{}/access_tokens", shared.base_url, app.installation_id),
        "repositories_url": format!("{}/installation/repositories", shared.base_url),
        "html_url": format!("https://github.com/organizations/{}/settings/installations/{}", shared.options.organization, app.installation_id),
        "app_id": app.app_id,
        "client_id": app.client_id,
        "target_id": target_id,
        "target_type": "Organization",
        "permissions": app.permissions,
        "events": ["member", "membership", "organization", "repository", "branch_protection_rule", "team"],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "app_slug": "switchyard",
        "suspended_by": null,
        "suspended_at": null,
    });
    json_response(StatusCode::OK, body.to_string(), &headers, "")
}
