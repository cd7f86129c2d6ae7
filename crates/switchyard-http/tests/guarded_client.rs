//! The guarded client against a real local server on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use switchyard_http::{Denied, GuardedClient, OutboundError, RangeClass, SsrfPolicy};
use url::Url;

#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

impl Hits {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

async fn ok(State(hits): State<Hits>) -> &'static str {
    hits.0.fetch_add(1, Ordering::SeqCst);
    "ok"
}

async fn redirect(State(hits): State<Hits>) -> impl IntoResponse {
    hits.0.fetch_add(1, Ordering::SeqCst);
    (StatusCode::FOUND, [(header::LOCATION, "/ok")])
}

async fn server() -> (SocketAddr, Hits) {
    let hits = Hits::default();
    let app = Router::new()
        .route("/ok", get(ok))
        .route("/redirect", get(redirect))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

fn loopback_allowed() -> SsrfPolicy {
    SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()])
}

fn client(policy: SsrfPolicy) -> GuardedClient {
    GuardedClient::builder(policy)
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

async fn fetch(client: &GuardedClient, u: &str) -> Result<reqwest::Response, OutboundError> {
    let request = client.get(url(u))?;
    client.send(request).await
}

fn assert_loopback_denial(result: Result<reqwest::Response, OutboundError>) {
    match result {
        Err(OutboundError::Denied(
            ref denied @ Denied::Address {
                class: RangeClass::Loopback,
                ..
            },
        )) => assert_eq!(denied.code(), "ssrf_denied"),
        other => panic!("expected a loopback denial, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_literal_is_denied_without_the_allow_list() {
    let (addr, hits) = server().await;
    let client = client(SsrfPolicy::strict().with_allow_http(true));
    assert_loopback_denial(fetch(&client, &format!("http://{addr}/ok")).await);
    assert_loopback_denial(
        fetch(
            &client,
            &format!("http://[::ffff:127.0.0.1]:{}/ok", addr.port()),
        )
        .await,
    );
    assert_loopback_denial(fetch(&client, &format!("http://2130706433:{}/ok", addr.port())).await);
    assert_eq!(hits.count(), 0);
}

#[tokio::test]
async fn loopback_is_allowed_with_the_allow_list() {
    let (addr, hits) = server().await;
    let client = client(loopback_allowed());
    let response = fetch(&client, &format!("http://{addr}/ok")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    // The mapped spelling of an allowed address is allowed too.
    let response = fetch(
        &client,
        &format!("http://[::ffff:127.0.0.1]:{}/ok", addr.port()),
    )
    .await;
    // (The server listens on IPv4 only; on hosts without dual-stack the connect may fail,
    // but never with a denial.)
    assert!(
        !matches!(response, Err(OutboundError::Denied(_))),
        "{response:?}"
    );
    assert!(hits.count() >= 1);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_denied_at_connect_time() {
    let (addr, hits) = server().await;
    let client = client(SsrfPolicy::strict().with_allow_http(true));
    // The URL check passes (a name); the resolved address is what gets refused.
    let u = format!("http://localhost:{}/ok", addr.port());
    assert_eq!(client.check_url(&url(&u)), Ok(()));
    let result = fetch(&client, &u).await;
    assert_loopback_denial(result);
    assert_eq!(hits.count(), 0);

    // With 127.0.0.1 allowed, the resolver keeps that address (and drops ::1 if listed).
    let allowed = self::client(loopback_allowed());
    let response = fetch(&allowed, &u).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(hits.count(), 1);
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let (addr, hits) = server().await;
    let client = client(loopback_allowed());
    let response = fetch(&client, &format!("http://{addr}/redirect"))
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()[header::LOCATION.as_str()], "/ok");
    // Only the redirect itself was requested.
    assert_eq!(hits.count(), 1);
}

#[tokio::test]
async fn http_is_refused_unless_allowed() {
    let (addr, hits) = server().await;
    let https_only =
        client(SsrfPolicy::strict().with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]));
    let err = fetch(&https_only, &format!("http://{addr}/ok?token=s3cret"))
        .await
        .unwrap_err();
    assert!(matches!(&err, OutboundError::Denied(Denied::Scheme { scheme }) if scheme == "http"));
    assert_eq!(err.code(), "scheme_not_allowed");
    assert!(!format!("{err} {err:?}").contains("s3cret"));
    assert_eq!(hits.count(), 0);

    let lax = client(loopback_allowed());
    assert_eq!(
        fetch(&lax, &format!("http://{addr}/ok"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_request_rewritten_after_building_is_checked_again() {
    let (addr, hits) = server().await;
    let client = client(SsrfPolicy::strict().with_allow_http(true));
    let mut request = client
        .get(url("http://example.com/"))
        .unwrap()
        .build()
        .unwrap();
    *request.url_mut() = url(&format!("http://{addr}/ok"));
    assert_loopback_denial(client.execute(request).await);
    assert_eq!(hits.count(), 0);
}

#[tokio::test]
async fn other_failures_keep_their_own_code() {
    // Allowed, but nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = client(loopback_allowed());
    let err = fetch(
        &client,
        &format!("http://127.0.0.1:{port}/hook?token=s3cret"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OutboundError::Request(_)), "{err:?}");
    assert_eq!(err.code(), "upstream_connect_failed");
    // reqwest's own errors name the URL; ours do not, anywhere in the chain.
    let mut chain = format!("{err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        chain.push_str(&format!(" {e}"));
        source = e.source();
    }
    assert!(
        !chain.contains("s3cret") && !chain.contains("/hook"),
        "{chain}"
    );
}
