//! The connect page in headless Chromium (Debian's, driven by playwright-core): the API-key
//! form filled by label and submitted with the keyboard, and an OAuth round trip from the
//! page's button through the authorization server back to the tenant's app. Screenshots go
//! under the test output (`CARGO_TARGET_TMPDIR/connect-page/`).

use serde_json::{Value, json};
use switchyard_test_support::backend_tests;
use switchyard_test_support::browser;

use super::fixture::{API_KEY, OAuthApp, query};

fn screenshot(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("connect-page");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).display().to_string()
}

backend_tests! { OAuthApp;
    async fn the_api_key_form_works_with_a_keyboard(fx) {
        let (session_id, connect_url) = fx
            .session(&fx.key, json!({"allowed_providers": ["apikey-demo"], "config": {}, "redirect_url": null}))
            .await;
        let shot = screenshot("api-key-form.png");
        let Some(result) = browser::run_ok(json!({"steps": [
            {"goto": connect_url},
            {"a11y": true},
            {"screenshot": shot},
            {"fill": {"label": "API URL (required)", "value": fx.api.url}},
            {"fill": {"label": "API key (required)", "value": API_KEY}},
            // Enter in a text field submits its form: no mouse.
            {"press": "Enter"},
            {"wait_for_url": "/credentials/apikey-demo"},
            {"screenshot": screenshot("api-key-result.png")},
        ]}))
        .await
        else {
            return;
        };
        let text = result["text"].as_str().unwrap_or_default();
        assert!(text.contains("connected"), "{result}");
        assert!(!text.contains(API_KEY));
        assert!(std::fs::metadata(&shot).unwrap().len() > 1000, "a screenshot was written");
        let session = fx.session_json(&session_id).await;
        assert_eq!(session["status"], "completed", "{session}");
    }

    async fn an_oauth_round_trip_in_the_browser(fx) {
        let (session_id, connect_url) = fx
            .session(&fx.key, json!({"allowed_providers": ["oauth-demo"]}))
            .await;
        let Some(result) = browser::run_ok(json!({"steps": [
            {"goto": connect_url},
            {"a11y": true},
            {"screenshot": screenshot("oauth-choice.png")},
            {"click": {"role": "link", "name": "Connect OAuth Demo"}},
            {"wait_for_url": "/done"},
            {"screenshot": screenshot("oauth-done.png")},
        ]}))
        .await
        else {
            return;
        };
        let url = result["url"].as_str().unwrap_or_default();
        let back = query(url);
        assert_eq!(back["status"], "completed", "{result}");
        assert_eq!(back["connect_session_id"], session_id);
        let session: Value = fx.session_json(&session_id).await;
        assert_eq!(session["result"]["check"]["success"], true, "{session}");
        assert_eq!(fx.stat("/token_requests/authorization_code").await, 1);
    }
}
