//! Twilio, signed by PyPI `twilio`'s `RequestValidator`.

use serde_json::json;
use switchyard_webhooks::Scheme;

use crate::support::*;

const TOKEN: &str = "12345";

/// `compute_signature(url, params)`; params from a form body (a dict of lists, which
/// `get_values` reads through `getlist`).
fn signature(python: &str, url: &str, form: &str, algorithm: &str) -> String {
    py(
        python,
        "import sys, urllib.parse\n\
         from twilio.request_validator import RequestValidator\n\
         class Params(dict):\n\
         \x20   def getlist(self, k): return self[k]\n\
         params = Params(urllib.parse.parse_qs(sys.argv[3], keep_blank_values=True))\n\
         print(RequestValidator(sys.argv[1]).compute_signature(sys.argv[2], params, sys.argv[4]))",
        &[TOKEN, url, form, algorithm],
    )
}

#[test]
fn form_bodies_verify() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Twilio, json!({}));
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let form = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212&CallStatus=ringing&Multi=b&Multi=a";
    let sig = signature(&python, url, form, "HMAC_SHA1");
    let req = Req::post(form)
        .url(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", &sig)
        .header("i-twilio-idempotency-token", "idem-1");
    let verified = check(&cfg, &secrets(&[TOKEN]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "idem-1");
    assert_eq!(verified.event_type.as_deref(), Some("twilio.call.ringing"));

    let s = secrets(&[TOKEN]);
    assert_eq!(
        code(check(&cfg, &secrets(&["54321"]), &req)),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().body(form.replace("1234&", "9999&"))
        )),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().url("https://mycompany.com/myapp.php?foo=1")
        )),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("x-twilio-signature", "")
        )),
        "malformed_signature"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("x-twilio-signature", &sig[..20])
        )),
        "malformed_signature"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().without("x-twilio-signature"))),
        "missing_header"
    );

    // Signed with the explicit default port: accepted, as Twilio's validator does.
    let with_port = signature(
        &python,
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        form,
        "HMAC_SHA1",
    );
    assert!(
        check(
            &cfg,
            &s,
            &req.clone().header("x-twilio-signature", &with_port)
        )
        .is_ok()
    );

    // Behind a proxy: the configured public URL is what was signed.
    let proxied = config(
        Scheme::Twilio,
        json!({"public_url": "https://mycompany.com/myapp.php"}),
    );
    let internal = req
        .clone()
        .url("http://10.0.0.5:8080/ingest/src_1?foo=1&bar=2");
    assert!(check(&proxied, &s, &internal).is_ok());
}

#[test]
fn sha256_shared_key_signatures() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Twilio, json!({}));
    let url = "https://mycompany.com/sms";
    let form = "MessageSid=SM1&MessageStatus=delivered";
    let sig = signature(&python, url, form, "HMAC_SHA256");
    let req = Req::post(form)
        .url(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", &sig)
        .header(
            "x-twilio-webhooks-signature-settings",
            "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
        );
    let verified = check(&cfg, &secrets(&[TOKEN]), &req).expect("verifies");
    assert_eq!(
        verified.event_type.as_deref(),
        Some("twilio.message.delivered")
    );
    let sha1 = req.clone().without("x-twilio-webhooks-signature-settings");
    assert_eq!(
        code(check(&cfg, &secrets(&[TOKEN]), &sha1)),
        "malformed_signature"
    );
    let other = req
        .clone()
        .header("x-twilio-webhooks-signature-settings", "algorithm=HMAC_MD5");
    assert_eq!(
        code(check(&cfg, &secrets(&[TOKEN]), &other)),
        "unsupported_signature_version"
    );
}

#[test]
fn json_bodies_use_body_sha256() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Twilio, json!({}));
    let body = r#"{"property": "value", "boolean": true}"#;
    let out = py(
        &python,
        "import sys\n\
         from twilio.request_validator import RequestValidator\n\
         v = RequestValidator(sys.argv[1])\n\
         url = sys.argv[2] + '?bodySHA256=' + v.compute_hash(sys.argv[3])\n\
         print(url, v.compute_signature(url, {}))",
        &[TOKEN, "https://mycompany.com/myapp", body],
    );
    let (url, sig) = out.split_once(' ').expect("url and signature");
    let req = Req::post(body)
        .url(url)
        .header("content-type", "application/json")
        .header("x-twilio-signature", sig);
    assert!(check(&cfg, &secrets(&[TOKEN]), &req).is_ok());
    let s = secrets(&[TOKEN]);
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().body(r#"{"property": "other"}"#)
        )),
        "signature_mismatch"
    );
    // Without bodySHA256 a JSON body is bound by nothing: refused.
    let unbound = req.clone().url("https://mycompany.com/myapp");
    assert_eq!(code(check(&cfg, &s, &unbound)), "malformed_body");
}
