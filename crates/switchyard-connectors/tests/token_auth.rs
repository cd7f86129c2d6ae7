//! A `jwt_bearer` mode without an exchange, through the engine: the signed JWT itself is
//! the bearer token, reused until shortly before it expires, then signed anew. The provider
//! here verifies every JWT (ES256, a SEC1 key as `openssl ecparam` writes it) with the
//! public key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use switchyard_connectors::credentials::{HeldCredential, TokenBroker};
use switchyard_connectors::{
    CallContext, ConnectionContext, Connector, ManifestConnector, manifest,
};
use switchyard_core::{ConnectionId, TenantId};
use switchyard_http::{GuardedClient, ManualClock, SsrfPolicy};
use switchyard_test_support::standin::provider_client;

const MANIFEST: &str = r#"
id: signed
name: Self-signed JWT (test)
version: 1.0.0
base_url: "{{ config.base_url }}"
config:
  type: object
  required: [base_url, service_account, project_number]
  properties:
    base_url: { type: string }
    service_account: { type: string }
    project_number: { type: integer }
auth:
  - type: jwt_bearer
    algorithm: ES256
    claims:
      iss: "{{ config.service_account }}"
      aud: "{{ config.base_url }}/"
      project: "{{ config.project_number }}"
    lifetime: 1h
check:
  request: { path: /me }
"#;

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<String> = body
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// Every JWT the provider accepted, with its claims.
type Accepted = Arc<Mutex<Vec<(String, Map<String, Value>)>>>;

#[derive(Clone)]
struct Seen {
    key: Arc<DecodingKey>,
    audience: String,
    accepted: Accepted,
}

async fn me(State(seen): State<Seen>, headers: HeaderMap) -> StatusCode {
    let Some(jwt) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return StatusCode::UNAUTHORIZED;
    };
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[seen.audience.as_str()]);
    validation.set_issuer(&["sync@project.example"]);
    match jsonwebtoken::decode::<Map<String, Value>>(jwt, &seen.key, &validation) {
        Ok(data) => {
            seen.accepted
                .lock()
                .unwrap()
                .push((jwt.to_owned(), data.claims));
            StatusCode::OK
        }
        Err(_) => StatusCode::UNAUTHORIZED,
    }
}

#[tokio::test]
async fn a_self_signed_jwt_is_the_bearer_token_until_it_is_due_for_renewal() {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let private_pem = pem(
        "EC PRIVATE KEY",
        pair.private_key().as_der().unwrap().as_ref(),
    );
    let public_pem = pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Seen {
        key: Arc::new(DecodingKey::from_ec_pem(public_pem.as_bytes()).unwrap()),
        audience: format!("{base_url}/"),
        accepted: Arc::default(),
    };
    let router = Router::new().route("/me", get(me)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let manifest = manifest::load(MANIFEST, "signed.yaml").unwrap();
    let connector = ManifestConnector::new(manifest.clone()).unwrap();
    let connection = ConnectionContext {
        tenant: TenantId::generate(),
        connection: ConnectionId::generate(),
        config: json!({"base_url": base_url, "service_account": "sync@project.example", "project_number": 31337}),
        base_url: None,
    };
    let clock = ManualClock::new();
    let policy = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    let client = GuardedClient::builder(policy).build().unwrap();
    let broker = Arc::new(TokenBroker::new(client).with_clock(Arc::new(clock.clone())));
    let fields = json!({"private_key": private_pem})
        .as_object()
        .cloned()
        .unwrap();
    let held = HeldCredential::new(broker, &manifest, None, &connection, fields).unwrap();
    let calls = provider_client(held);
    let cx = CallContext {
        calls: &calls,
        connection: &connection,
    };

    for _ in 0..2 {
        let report = connector.test_connection(cx).await.unwrap();
        assert!(report.success, "{report:?}");
    }
    // Kept until 5 minutes (the longest margin) before the hour is up, then signed anew.
    clock.advance(Duration::from_secs(55 * 60 - 1));
    assert!(connector.test_connection(cx).await.unwrap().success);
    clock.advance(Duration::from_secs(1));
    assert!(connector.test_connection(cx).await.unwrap().success);

    let accepted = seen.accepted.lock().unwrap();
    let jwts: Vec<&str> = accepted.iter().map(|(jwt, _)| jwt.as_str()).collect();
    assert_eq!(jwts.len(), 4);
    assert!(
        jwts[..3].iter().all(|jwt| *jwt == jwts[0]),
        "one JWT until it is due"
    );
    assert_ne!(jwts[3], jwts[0]);
    let claims = &accepted[0].1;
    // A claim that is one expression keeps its JSON type.
    assert_eq!(claims["project"], 31337);
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 3600);
}
