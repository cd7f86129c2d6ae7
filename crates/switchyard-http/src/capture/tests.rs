use reqwest::header::{HeaderName, HeaderValue};
use serde_json::json;

use super::*;

fn spec() -> CaptureSpec {
    CaptureSpec {
        enabled: true,
        redact_headers: vec!["X-Okta-Session".to_owned()],
        redact_fields: vec!["/profile/email".to_owned(), "password".to_owned()],
        redact_query: vec!["api_key".to_owned()],
    }
}

#[test]
fn authorization_configured_and_sensitive_headers_are_redacted() {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
    headers.insert("x-okta-session", HeaderValue::from_static("sess"));
    let mut marked = HeaderValue::from_static("hidden-by-marking");
    marked.set_sensitive(true);
    headers.insert(HeaderName::from_static("x-custom-token"), marked);
    headers.insert("accept", HeaderValue::from_static("application/json"));
    let shown = spec().headers(&headers);
    let value = |name: &str| {
        shown
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(value("authorization"), Some(REDACTED));
    assert_eq!(value("x-okta-session"), Some(REDACTED));
    assert_eq!(value("x-custom-token"), Some(REDACTED));
    assert_eq!(value("accept"), Some("application/json"));
}

#[test]
fn json_fields_are_redacted_by_pointer_and_by_key_at_any_depth() {
    let body = json!({
        "profile": {"email": "ada@example.com", "login": "ada"},
        "password": "hunter2",
        "items": [{"password": "again", "id": 1}],
    });
    let got = spec().body(Some("application/json"), body.to_string().as_bytes());
    let CapturedBody::Json { value } = got else {
        panic!("{got:?}");
    };
    assert_eq!(
        value,
        json!({
            "profile": {"email": REDACTED, "login": "ada"},
            "password": REDACTED,
            "items": [{"password": REDACTED, "id": 1}],
        })
    );
}

#[test]
fn form_bodies_and_query_strings_are_redacted_by_key() {
    let got = spec().body(
        Some("application/x-www-form-urlencoded"),
        b"user=ada&password=hunter2",
    );
    assert_eq!(
        got,
        CapturedBody::Text {
            text: "user=ada&password=%5Bredacted%5D".to_owned()
        }
    );
    let url: url::Url = "https://api.example.com/v1/users?api_key=k&page=2&password=p"
        .parse()
        .unwrap();
    assert_eq!(
        spec().url(&url),
        "/v1/users?api_key=%5Bredacted%5D&page=2&password=%5Bredacted%5D"
    );
}

#[test]
fn a_body_that_cannot_be_redacted_field_by_field_is_left_out() {
    let got = spec().body(Some("text/plain"), b"password is hunter2");
    assert_eq!(
        got,
        CapturedBody::Omitted {
            bytes: 19,
            reason: "not_redactable"
        }
    );
    // Without fields to hide, text is kept and binary is not.
    let plain = CaptureSpec::default();
    assert!(matches!(
        plain.body(None, b"hello"),
        CapturedBody::Text { .. }
    ));
    assert!(matches!(
        plain.body(None, &[0xff, 0xfe, 0x00]),
        CapturedBody::Omitted {
            reason: "binary",
            ..
        }
    ));
    assert_eq!(plain.body(None, b""), CapturedBody::Empty);
}
