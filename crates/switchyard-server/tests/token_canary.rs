//! Canary for token auth: private keys, client secrets, the JWTs and client assertions
//! signed with them and the tokens they bought never appear in logs (every thread's, at
//! TRACE), API responses or the database. Its own binary, so its subscriber is the global
//! one and sees every log line of the process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "it/token_auth/fixture.rs"]
mod fixture;

use switchyard_test_support::leaks::CapturedLogs;
use switchyard_test_support::{LeakScanner, TestBackend};

use fixture::TokenApp;

/// A 64-character line from the middle of a PEM body: found even if the armour is not.
fn body_line(pem: &str) -> &str {
    pem.lines().nth(5).unwrap()
}

// ---------------------------------------------------------------------------------------
// Canary: keys, secrets, JWTs and minted tokens never in logs, responses or the database

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_tokens_keys_and_secrets_never_leak() {
    let captured = CapturedLogs::install_global();

    let mut leaks = LeakScanner::new();
    let fx = TokenApp::start_with(TestBackend::Sqlite, &mut leaks)
        .await
        .unwrap();
    for (label, key) in [
        ("app key", &fx.keys.app),
        ("rotated app key", &fx.keys.app_next),
        ("stranger key", &fx.keys.stranger),
        ("client key", &fx.keys.client),
    ] {
        leaks.watch(&format!("{label} (PKCS#1 line)"), body_line(&key.pkcs1_pem));
        leaks.watch(&format!("{label} (PKCS#8 line)"), body_line(&key.pkcs8_pem));
    }
    fx.exercise_app(&mut leaks).await;
    fx.exercise_client_credentials(&mut leaks).await;
    fx.exercise_custom_headers(&mut leaks).await;
    for path in ["/v1/connections", "/v1/providers/app-jwt"] {
        let response = fx.app.get(path, &fx.tenant_key).await;
        leaks.add(format!("GET {path}"), response.body);
    }

    let (issued, jwts) = {
        let provider = fx.provider.get();
        (provider.issued.clone(), provider.jwts.clone())
    };
    assert!(issued.len() >= 4 && jwts.len() >= 4);
    for token in &issued {
        leaks.watch("minted token", token);
    }
    for jwt in &jwts {
        leaks.watch("JWT", jwt);
        // The signature alone is secret enough to look for.
        leaks.watch("JWT signature", jwt.rsplit('.').next().unwrap());
    }
    leaks.add_database(fx.app.database()).await;
    let logs = captured.bytes();
    let text = String::from_utf8_lossy(&logs);
    assert!(
        text.contains("provider.call") && text.contains("could not be placed"),
        "the provider calls and the refused credential were logged ({} bytes)",
        text.len()
    );
    leaks.add("logs", logs);
    leaks.assert_no_leaks();
}
