//! OAuth connect flows end to end against the npm authorization server
//! (`switchyard_test_support::oauth_server`): authorization code with PKCE through a connect
//! session, refresh with rotation on use, revoked refresh tokens → reauthorization and repair
//! in place, token endpoint failures that keep the old token, the state's single use and
//! browser binding, the provider's own errors, the API-key form, and tenant isolation of
//! OAuth clients and sessions. The two-process refresh race is `crates/switchyard/tests/oauth_race.rs`;
//! the browser test is `browser.rs`.

pub mod browser;
pub mod fixture;

use serde_json::{Value, json};
use switchyard_test_support::backend_tests;

use fixture::{API_KEY, CLIENT_SECRET, OAuthApp, query};

backend_tests! { OAuthApp;
    async fn authorization_code_with_pkce_creates_a_checked_connection(fx) {
        let (session_id, connect_url) = fx.session(&fx.key, json!({})).await;
        // The page offers the OAuth provider as a button and the API-key one as a form.
        let page = fx.client.get(&connect_url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        let html = page.text().await.unwrap();
        assert!(html.contains("OAuth Demo") && html.contains("API Key Demo"), "{html}");
        assert!(html.contains("/oauth/oauth-demo"));

        let (location, cookie) = fx.start_flow(&connect_url).await;
        let params = query(&location);
        assert!(location.starts_with(&fx.server.authorization_url()), "{location}");
        assert_eq!(params["response_type"], "code");
        assert_eq!(params["client_id"], fixture::CLIENT_ID);
        assert_eq!(params["code_challenge_method"], "S256");
        assert_eq!(params["code_challenge"].len(), 43);
        assert_eq!(params["scope"], "openid read");
        assert_eq!(params["redirect_uri"], fx.app.url("/oauth/callback"));
        assert!(params["state"].len() >= 43);
        assert!(cookie.starts_with("sy_oauth_"), "{cookie}");

        let callback = fx.authorize(&location).await;
        let response = fx.callback(&callback, Some(&cookie)).await;
        assert_eq!(response.status(), 303);
        let back = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(back.starts_with(&format!("{}/done?", fx.api.url)), "{back}");
        let result = query(&back);
        assert_eq!(result["status"], "completed");
        assert_eq!(result["connect_session_id"], session_id);
        let connection_id = result["connection_id"].clone();

        let session = fx.session_json(&session_id).await;
        assert_eq!(session["status"], "completed");
        assert_eq!(session["result"]["connection_id"], json!(connection_id));
        assert_eq!(session["result"]["check"]["success"], true);
        assert!(session.get("token").is_none(), "the token is shown once");

        let connection = fx.connection(&connection_id).await;
        assert_eq!(connection["provider"], "oauth-demo");
        assert_eq!(connection["name"], "oauth-demo:user-1");
        assert_eq!(connection["auth_mode"], "oauth2");
        assert_eq!(connection["credential_status"], "valid");
        assert!(connection["credential_expires_at"].is_string(), "{connection}");
        // The mode's config_from_token read the granted scope from the token answer.
        assert_eq!(connection["config"]["granted_scope"], "openid read", "{connection}");
        // The check called the API with the issued access token.
        assert!(fx.api.accepted() >= 1);
        assert_eq!(fx.stat("/token_requests/authorization_code").await, 1);
        assert_eq!(fx.stat("/client_auth/client_secret_basic").await, 1);

        // The session is finished: its page and its flows are gone.
        let again = fx.client.get(&connect_url).header("accept", "application/json").send().await.unwrap();
        assert_eq!(again.status(), 410);
        assert_eq!(again.json::<Value>().await.unwrap()["code"], "connect_session_expired");
    }

    async fn a_due_token_is_refreshed_once_with_rotation(fx) {
        // 200 s left is inside the 5 minute margin: every use refreshes first.
        fx.server.set_expires_in(Some(200)).await;
        let (_, connect_url) = fx.session(&fx.key, json!({})).await;
        let id = query(&fx.connect(&connect_url).await)["connection_id"].clone();
        // The check right after connecting needed a refresh.
        assert_eq!(fx.stat("/token_requests/refresh_token").await, 1);
        let version = fx.connection(&id).await["credential_version"].as_u64().unwrap();

        // A rotated refresh token is single use at this server: each refresh that works
        // proves the new one was stored and the spent one never sent again.
        fx.server.set_expires_in(Some(3600)).await;
        let report = fx.test_connection(&id).await;
        assert_eq!(report["success"], true, "{report}");
        assert_eq!(fx.stat("/token_requests/refresh_token").await, 2);
        let connection = fx.connection(&id).await;
        assert_eq!(connection["credential_version"].as_u64().unwrap(), version + 1);
        // Now the token has an hour: no more refreshes.
        for _ in 0..3 {
            let report = fx.test_connection(&id).await;
            assert_eq!(report["success"], true, "{report}");
        }
        assert_eq!(fx.stat("/token_requests/refresh_token").await, 2);
        assert_eq!(fx.stat("/invalid_grant").await, 0);
        assert_eq!(fx.audited("oauth_token.refresh", 2).await, 2);
    }

    async fn a_revoked_refresh_token_requires_reauthorization_and_a_session_repairs_it(fx) {
        fx.server.set_expires_in(Some(200)).await;
        let (_, connect_url) = fx.session(&fx.key, json!({})).await;
        let id = query(&fx.connect(&connect_url).await)["connection_id"].clone();
        fx.server.revoke_refresh_tokens().await;
        // Due, refused after the re-read under the lock: the connection needs a person.
        let report = fx.test_connection(&id).await;
        assert_eq!(report["success"], false, "{report}");
        assert_eq!(report["error_code"], "auth_failed", "{report}");
        let connection = fx.connection(&id).await;
        assert_eq!(connection["credential_status"], "reauthorization_required", "{connection}");
        let test = fx.app.post(&format!("/v1/connections/{id}/test"), &fx.key, &json!({})).await;
        test.assert_problem(409, "reauthorization_required");
        assert_eq!(fx.audited("connection.reauthorization_required", 1).await, 1);
        // No second try with the dead token.
        assert_eq!(fx.stat("/invalid_grant").await, 1);

        // A new session names the connection and repairs it in place.
        fx.server.set_expires_in(Some(3600)).await;
        let (_, repair_url) = fx.session(&fx.key, json!({"connection_id": id})).await;
        let back = fx.connect(&repair_url).await;
        assert_eq!(query(&back)["connection_id"], id);
        assert_eq!(query(&back)["status"], "completed");
        let connection = fx.connection(&id).await;
        assert_eq!(connection["credential_status"], "valid");
        assert_eq!(fx.test_connection(&id).await["success"], true);
    }

    async fn token_endpoint_failures_are_retried_and_never_lose_the_token(fx) {
        fx.server.set_expires_in(Some(200)).await;
        let (_, connect_url) = fx.session(&fx.key, json!({})).await;
        let id = query(&fx.connect(&connect_url).await)["connection_id"].clone();
        assert_eq!(fx.stat("/token_requests/refresh_token").await, 1);
        let version = fx.connection(&id).await["credential_version"].as_u64().unwrap();

        // Two 503s, then success: retried under the lock.
        fx.server.fail_next(503, 2).await;
        let report = fx.test_connection(&id).await;
        assert_eq!(report["success"], true, "{report}");
        assert_eq!(fx.stat("/token_requests/refresh_token").await, 4);
        let version_after = fx.connection(&id).await["credential_version"].as_u64().unwrap();
        assert_eq!(version_after, version + 1);

        // Every attempt fails: the stored token has not expired, so it is used, and kept.
        fx.server.fail_next(503, 3).await;
        let report = fx.test_connection(&id).await;
        assert_eq!(report["success"], true, "{report}");
        assert_eq!(fx.stat("/token_requests/refresh_token").await, 7);
        let connection = fx.connection(&id).await;
        assert_eq!(connection["credential_version"].as_u64().unwrap(), version_after);
        assert_eq!(connection["credential_status"], "valid");
        // The next refresh works with the same, still valid refresh token.
        let report = fx.test_connection(&id).await;
        assert_eq!(report["success"], true, "{report}");
        assert_eq!(fx.stat("/token_requests/refresh_token").await, 8);
        assert_eq!(fx.stat("/invalid_grant").await, 0);
    }

    async fn the_state_is_single_use_and_bound_to_the_browser(fx) {
        let (session_id, connect_url) = fx.session(&fx.key, json!({})).await;
        let (location, cookie) = fx.start_flow(&connect_url).await;
        let callback = fx.authorize(&location).await;
        // Without the browser's cookie (a callback replayed into another browser).
        let response = fx.callback(&callback, None).await;
        assert_eq!(response.status(), 400);
        assert_eq!(response.json::<Value>().await.unwrap()["code"], "oauth_state_invalid");
        // A made-up state.
        let mut forged = url::Url::parse(&callback).unwrap();
        forged.set_query(Some("code=x&state=not-a-state"));
        let response = fx.callback(forged.as_str(), Some(&cookie)).await;
        assert_eq!(response.status(), 400);
        // The real one works once…
        assert_eq!(fx.callback(&callback, Some(&cookie)).await.status(), 303);
        // …and never again.
        let response = fx.callback(&callback, Some(&cookie)).await;
        assert_eq!(response.status(), 400);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "oauth_state_invalid");
        assert!(problem["detail"].as_str().unwrap().contains("already used"), "{problem}");
        assert_eq!(fx.session_json(&session_id).await["status"], "completed");
        assert_eq!(fx.stat("/token_requests/authorization_code").await, 1);
    }

    async fn a_callback_for_another_tenants_session_is_refused(fx) {
        let other = fx.app.create_tenant("globex").await;
        let (_, other_key) = fx.app.create_api_key(&other, "admin").await;
        fx.register_client(&other_key).await;
        let (_, mine) = fx.session(&fx.key, json!({})).await;
        let (_, theirs) = fx.session(&other_key, json!({})).await;
        let (my_location, _my_cookie) = fx.start_flow(&mine).await;
        let (_, their_cookie) = fx.start_flow(&theirs).await;
        let callback = fx.authorize(&my_location).await;
        // The other tenant's browser presents its own binding with my state: refused.
        let response = fx.callback(&callback, Some(&their_cookie)).await;
        assert_eq!(response.status(), 400);
        let connections = fx.app.get("/v1/connections", &other_key).await.json();
        assert_eq!(connections["data"], json!([]));
        let connections = fx.app.get("/v1/connections", &fx.key).await.json();
        assert_eq!(connections["data"], json!([]));
    }

    async fn the_providers_error_ends_the_session_cleanly(fx) {
        fx.server.set_authorize_error(Some("access_denied")).await;
        let (session_id, connect_url) = fx.session(&fx.key, json!({})).await;
        let back = fx.connect(&connect_url).await;
        let result = query(&back);
        assert_eq!(result["status"], "failed");
        assert_eq!(result["error"], "access_denied");
        assert!(!result.contains_key("connection_id"));
        let session = fx.session_json(&session_id).await;
        assert_eq!(session["status"], "failed");
        assert_eq!(session["result"]["error"], "access_denied");
        assert_eq!(fx.stat("/token_requests/authorization_code").await, 0);
    }

    async fn the_api_key_form_validates_and_connects(fx) {
        let (session_id, connect_url) = fx.session(&fx.key, json!({"redirect_url": null})).await;
        let form_url = format!("{connect_url}/credentials/apikey-demo");
        // Missing key: the form comes back with the error, the typed URL kept, no secret.
        let response = fx.post_form(&form_url, &[("config.base_url", fx.api.url.as_str()), ("credentials.api_key", "")]).await;
        assert_eq!(response.status(), 422);
        let html = response.text().await.unwrap();
        assert!(html.contains("role=\"alert\"") && html.contains(&fx.api.url), "{html}");
        // A wrong key: the provider's check refuses it, nothing is kept.
        let response = fx.post_form(&form_url, &[("config.base_url", fx.api.url.as_str()), ("credentials.api_key", "wrong-key-value")]).await;
        assert_eq!(response.status(), 422);
        let html = response.text().await.unwrap();
        assert!(!html.contains("wrong-key-value"));
        assert_eq!(fx.app.get("/v1/connections", &fx.key).await.json()["data"], json!([]));
        // The right one.
        let response = fx.post_form(&form_url, &[("config.base_url", fx.api.url.as_str()), ("credentials.api_key", API_KEY)]).await;
        assert_eq!(response.status(), 200);
        let html = response.text().await.unwrap();
        assert!(html.contains("connected"), "{html}");
        assert!(!html.contains(API_KEY));
        let session = fx.session_json(&session_id).await;
        assert_eq!(session["status"], "completed");
        let connection = fx.connection(session["result"]["connection_id"].as_str().unwrap()).await;
        assert_eq!(connection["auth_mode"], "api_key");
    }

    async fn oauth_clients_and_sessions_are_tenant_scoped_and_secret_free(fx) {
        let listed = fx.app.get("/v1/oauth-clients", &fx.key).await;
        assert_eq!(listed.status, 200);
        let text = listed.text();
        assert!(!text.contains(CLIENT_SECRET), "{text}");
        let client = listed.json()["data"][0].clone();
        assert!(client["secret_fingerprint"].is_string());
        let id = client["id"].as_str().unwrap().to_owned();
        // One registration per provider.
        let again = fx.app.post("/v1/oauth-clients", &fx.key, &json!({"provider": "oauth-demo", "client_id": "x", "client_secret": "y"})).await;
        again.assert_problem(409, "conflict");
        // A provider without an authorization-code mode cannot have one.
        let refused = fx.app.post("/v1/oauth-clients", &fx.key, &json!({"provider": "apikey-demo", "client_id": "x", "client_secret": "y"})).await;
        refused.assert_problem(422, "unsupported_operation");

        let other = fx.app.create_tenant("initech").await;
        let (_, other_key) = fx.app.create_api_key(&other, "admin").await;
        let (session_id, _) = fx.session(&fx.key, json!({})).await;
        fx.app.get(&format!("/v1/oauth-clients/{id}"), &other_key).await.assert_problem(404, "not_found");
        fx.app.delete(&format!("/v1/oauth-clients/{id}"), &other_key).await.assert_problem(404, "not_found");
        fx.app.get(&format!("/v1/connect-sessions/{session_id}"), &other_key).await.assert_problem(404, "not_found");
        assert_eq!(fx.app.get("/v1/oauth-clients", &other_key).await.json()["data"], json!([]));
        assert_eq!(fx.app.get("/v1/connect-sessions", &other_key).await.json()["data"], json!([]));
        // A session cannot repair another tenant's connection.
        let (_, connect_url) = fx.session(&fx.key, json!({})).await;
        let mine = query(&fx.connect(&connect_url).await)["connection_id"].clone();
        fx.register_client(&other_key).await;
        let body = json!({"end_user": {"id": "u"}, "provider": "oauth-demo", "connection_id": mine});
        fx.app.post("/v1/connect-sessions", &other_key, &body).await.assert_problem(404, "not_found");

        // Bad input gets one problem each.
        fx.app.post("/v1/connect-sessions", &fx.key, &json!({"end_user": {"id": ""}, "provider": "oauth-demo"})).await.assert_problem(400, "validation_failed");
        fx.app.post("/v1/connect-sessions", &fx.key, &json!({"end_user": {"id": "u"}, "allowed_providers": []})).await.assert_problem(400, "validation_failed");
        fx.app.post("/v1/connect-sessions", &fx.key, &json!({"end_user": {"id": "u"}, "provider": "nope"})).await.assert_problem(404, "not_found");
        fx.app.post("/v1/connect-sessions", &fx.key, &json!({"end_user": {"id": "u"}, "provider": "oauth-demo", "redirect_url": "javascript:alert(1)"})).await.assert_problem(400, "validation_failed");

        // Deleting the registration destroys its secret; the rows say so.
        let deleted = fx.app.delete(&format!("/v1/oauth-clients/{id}"), &fx.key).await;
        assert_eq!(deleted.status, 204);
        fx.app.get(&format!("/v1/oauth-clients/{id}"), &fx.key).await.assert_problem(404, "not_found");
    }
}

/// The scheduled refresh refreshes a token nobody uses once it has been idle too long.
async fn an_idle_token_is_refreshed_by_the_schedule(backend: switchyard_test_support::TestBackend) {
    let Some(fx) = OAuthApp::start_with(backend, |figment| {
        figment
            .merge(("oauth.refresh_check_interval", "1s"))
            .merge(("oauth.idle_refresh_after", "2s"))
    })
    .await
    else {
        return;
    };
    let (_, connect_url) = fx.session(&fx.key, json!({})).await;
    let id = query(&fx.connect(&connect_url).await)["connection_id"].clone();
    let version = fx.connection(&id).await["credential_version"]
        .as_u64()
        .unwrap();
    // No call is made: only the schedule can refresh it.
    let mut refreshed = 0;
    for _ in 0..100 {
        refreshed = fx.stat("/token_requests/refresh_token").await;
        if refreshed > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(refreshed > 0, "the schedule refreshed the idle token");
    let mut connection = fx.connection(&id).await;
    for _ in 0..50 {
        if connection["credential_version"].as_u64().unwrap() > version {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        connection = fx.connection(&id).await;
    }
    assert!(
        connection["credential_version"].as_u64().unwrap() > version,
        "{connection}"
    );
    assert_eq!(connection["credential_status"], "valid");
    assert_eq!(fx.stat("/invalid_grant").await, 0);
    assert_eq!(fx.test_connection(&id).await["success"], true);
}

mod scheduled_refresh {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::an_idle_token_is_refreshed_by_the_schedule(
            switchyard_test_support::TestBackend::Sqlite,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::an_idle_token_is_refreshed_by_the_schedule(
            switchyard_test_support::TestBackend::Postgres,
        )
        .await;
    }
}

/// The code flow and refresh with `private_key_jwt` client authentication: the authorization
/// server verifies each client assertion against the public key registered with it.
async fn private_key_jwt_client_authentication(backend: switchyard_test_support::TestBackend) {
    use jsonwebtoken::{Algorithm, EncodingKey, jwk::Jwk};
    let key = crate::token_auth::fixture::TestKey::rsa();
    let mut jwk = Jwk::from_encoding_key(
        &EncodingKey::from_rsa_pem(key.pkcs8_pem.as_bytes()).unwrap(),
        Algorithm::RS256,
    )
    .unwrap();
    jwk.common.key_id = Some("key-2026".into());
    let jwks = json!({"keys": [serde_json::to_value(&jwk).unwrap()]});
    let client =
        switchyard_test_support::oauth_server::OAuthClientSpec::private_key_jwt("key-client", jwks);
    let Some(fx) = OAuthApp::start_with_clients(backend, vec![client], |f| f).await else {
        return;
    };
    let registered = fx
        .app
        .post(
            "/v1/oauth-clients",
            &fx.key,
            &json!({"provider": "oauth-key", "client_id": "key-client", "private_key": key.pkcs8_pem, "key_id": "key-2026"}),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text());
    assert!(!registered.text().contains("PRIVATE KEY"));
    // A registration for a private_key_jwt provider needs the key, not a secret.
    let refused = fx
        .app
        .send(
            reqwest::Method::PATCH,
            &format!(
                "/v1/oauth-clients/{}",
                registered.json()["id"].as_str().unwrap()
            ),
            Some(&fx.key),
            Some(&json!({"client_secret": "s"})),
        )
        .await;
    refused.assert_problem(400, "validation_failed");

    fx.server.set_expires_in(Some(200)).await;
    let body = json!({
        "end_user": {"id": "user-key"},
        "provider": "oauth-key",
        "redirect_url": format!("{}/done", fx.api.url),
        "config": {"oauth-key": fx.provider_config()},
    });
    let session = fx
        .app
        .post("/v1/connect-sessions", &fx.key, &body)
        .await
        .json();
    let connect_url = session["connect_url"].as_str().unwrap();
    let response = fx
        .client
        .get(format!("{connect_url}/oauth/oauth-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let callback = fx.authorize(&location).await;
    let back = fx.callback(&callback, Some(&cookie)).await;
    assert_eq!(back.status(), 303);
    let result = query(back.headers()["location"].to_str().unwrap());
    assert_eq!(result["status"], "completed", "{result:?}");
    // The code exchange and the refresh the check needed, both with an assertion.
    assert_eq!(fx.stat("/token_requests/authorization_code").await, 1);
    assert_eq!(fx.stat("/token_requests/refresh_token").await, 1);
    assert_eq!(fx.stat("/client_auth/private_key_jwt").await, 2);
    assert_eq!(fx.stat("/invalid_client").await, 0);
    let session = fx.session_json(session["id"].as_str().unwrap()).await;
    assert_eq!(session["result"]["check"]["success"], true, "{session}");
}

mod private_key_jwt {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::private_key_jwt_client_authentication(switchyard_test_support::TestBackend::Sqlite)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::private_key_jwt_client_authentication(
            switchyard_test_support::TestBackend::Postgres,
        )
        .await;
    }
}

/// Expired states and sessions, a code redeemed without our verifier, and a token endpoint
/// that does not answer in time.
async fn expiry_interception_and_timeouts(backend: switchyard_test_support::TestBackend) {
    let Some(fx) = OAuthApp::start_with(backend, |figment| {
        figment
            .merge(("oauth.state_ttl", "1s"))
            .merge(("oauth.token_timeout", "1s"))
    })
    .await
    else {
        return;
    };
    // A state older than its TTL is refused, and nothing is exchanged.
    let (_, connect_url) = fx.session(&fx.key, json!({})).await;
    let (location, cookie) = fx.start_flow(&connect_url).await;
    let callback = fx.authorize(&location).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let response = fx.callback(&callback, Some(&cookie)).await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "oauth_state_invalid");
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
    assert_eq!(fx.stat("/token_requests/authorization_code").await, 0);

    // A session past its own expiry is gone.
    let (_, short) = fx.session(&fx.key, json!({"expires_in": 1})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let page = fx
        .client
        .get(&short)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 410);

    // An intercepted code is useless without the PKCE verifier only Switchyard holds: the
    // server refuses it (and burns it), so the real callback fails cleanly too.
    let (session_id, connect_url) = fx.session(&fx.key, json!({})).await;
    let (location, cookie) = fx.start_flow(&connect_url).await;
    let callback = fx.authorize(&location).await;
    let code = query(&callback)["code"].clone();
    let stolen = fx
        .post_form(
            &fx.server.token_url(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &fx.app.url("/oauth/callback")),
                ("client_id", fixture::CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await;
    assert_eq!(stolen.status(), 400);
    assert_eq!(
        stolen.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let back = fx.callback(&callback, Some(&cookie)).await;
    assert_eq!(back.status(), 303);
    let result = query(back.headers()["location"].to_str().unwrap());
    assert_eq!(result["status"], "failed");
    assert_eq!(result["error"], "token_refused");
    assert_eq!(fx.session_json(&session_id).await["status"], "failed");

    // Timeouts: three refresh attempts each wait for an answer the 1 s timeout gives up on
    // (the server drops them unprocessed); the stored, still valid token is used and kept.
    fx.server.set_expires_in(Some(200)).await;
    let (_, connect_url) = fx.session(&fx.key, json!({})).await;
    let id = query(&fx.connect(&connect_url).await)["connection_id"].clone();
    let version = fx.connection(&id).await["credential_version"]
        .as_u64()
        .unwrap();
    let refreshes = fx.stat("/token_requests/refresh_token").await;
    fx.server
        .delay_next(std::time::Duration::from_secs(2), 3)
        .await;
    let report = fx.test_connection(&id).await;
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(
        fx.stat("/token_requests/refresh_token").await,
        refreshes + 3
    );
    // The last dropped request ends its wait a second after we gave up on it.
    let mut abandoned = 0;
    for _ in 0..50 {
        abandoned = fx.stat("/abandoned").await;
        if abandoned == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(abandoned, 3);
    assert_eq!(
        fx.connection(&id).await["credential_version"]
            .as_u64()
            .unwrap(),
        version
    );
    // The refresh token survived: the next refresh works.
    let report = fx.test_connection(&id).await;
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(
        fx.connection(&id).await["credential_version"]
            .as_u64()
            .unwrap(),
        version + 1
    );
    // The intercepted code and our callback's try with it; no refresh was refused.
    assert_eq!(fx.stat("/invalid_grant").await, 2);
}

mod expiry_and_timeouts {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::expiry_interception_and_timeouts(switchyard_test_support::TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::expiry_interception_and_timeouts(switchyard_test_support::TestBackend::Postgres)
            .await;
    }
}
