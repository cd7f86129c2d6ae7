//! Standard Webhooks and Svix, signed by PyPI `standardwebhooks` and `svix`; v1a by
//! `cryptography`'s ed25519.

use serde_json::json;
use switchyard_webhooks::standard_webhooks::{self, SigningKey, SigningSecret};
use switchyard_webhooks::{Scheme, Secret};

use crate::support::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER: &str = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkh";
const BODY: &str =
    r#"{"type":"invoice.paid","timestamp":"2024-01-01T00:00:00Z","data":{"id":"in_1"}}"#;

/// `sign(msg_id, timestamp, body)` with the named library (`standardwebhooks` or `svix`).
fn lib_sign(python: &str, module: &str, secret: &str, id: &str, ts: i64, body: &str) -> String {
    py(
        python,
        &format!(
            "import sys; from datetime import datetime, timezone\n\
             from {module}.webhooks import Webhook\n\
             print(Webhook(sys.argv[1]).sign(sys.argv[2], datetime.fromtimestamp(int(sys.argv[3]), tz=timezone.utc), sys.argv[4]))"
        ),
        &[secret, id, &ts.to_string(), body],
    )
}

fn request(prefix: &str, id: &str, ts: i64, signature: &str, body: &str) -> Req {
    Req::post(body)
        .header(&format!("{prefix}-id"), id)
        .header(&format!("{prefix}-timestamp"), &ts.to_string())
        .header(&format!("{prefix}-signature"), signature)
}

#[test]
fn standard_webhooks_reference_signatures_verify() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::StandardWebhooks, json!({}));
    let ts = now();
    let sig = lib_sign(&python, "standardwebhooks", SECRET, "msg_1", ts, BODY);
    let req = request("webhook", "msg_1", ts, &sig, BODY);

    let verified = check(&cfg, &secrets(&[SECRET]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "msg_1");
    assert_eq!(verified.event_type.as_deref(), Some("invoice.paid"));
    assert_eq!(verified.secret_index, Some(0));
    assert_eq!(verified.signed_at.map(|t| t.unix_timestamp()), Some(ts));

    // Rotation: the previous secret still verifies, in any position.
    let verified = check(&cfg, &secrets(&[OTHER, SECRET]), &req).expect("previous secret");
    assert_eq!(verified.secret_index, Some(1));
    // Several signatures in one header, one of them ours.
    let other_sig = lib_sign(&python, "standardwebhooks", OTHER, "msg_1", ts, BODY);
    let both = request("webhook", "msg_1", ts, &format!("{other_sig} {sig}"), BODY);
    assert!(check(&cfg, &secrets(&[SECRET]), &both).is_ok());

    // Our signer produces what the reference library produces.
    let ours = standard_webhooks::sign(
        "msg_1",
        ts,
        BODY.as_bytes(),
        &SigningSecret::parse(SECRET).unwrap(),
    );
    assert_eq!(ours, sig);
}

#[test]
fn standard_webhooks_negative_cases() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::StandardWebhooks, json!({}));
    let ts = now();
    let sig = lib_sign(&python, "standardwebhooks", SECRET, "msg_1", ts, BODY);
    let ok = request("webhook", "msg_1", ts, &sig, BODY);
    let s = secrets(&[SECRET]);

    assert_eq!(
        code(check(&cfg, &secrets(&[OTHER]), &ok)),
        "signature_mismatch"
    );
    assert_eq!(code(check(&cfg, &[], &ok)), "no_secret_configured");
    assert_eq!(
        code(check(&cfg, &s, &ok.clone().body(format!("{BODY} ")))),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &s, &ok.clone().header("webhook-id", "msg_2"))),
        "signature_mismatch"
    );
    for bad in ["v1,", "v1", "", "v2,abc", &sig[..sig.len() - 4], "v1,!!!!"] {
        let req = ok.clone().header("webhook-signature", bad);
        assert_eq!(
            code(check(&cfg, &s, &req)),
            "malformed_signature",
            "{bad:?}"
        );
    }
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert_eq!(
            code(check(&cfg, &s, &ok.clone().without(name))),
            "missing_header",
            "{name}"
        );
    }
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &ok.clone().header("webhook-timestamp", "12a")
        )),
        "malformed_timestamp"
    );
    for skew in [-301, 301, -100_000] {
        let t = ts + skew;
        let sig = lib_sign(&python, "standardwebhooks", SECRET, "msg_1", t, BODY);
        let req = request("webhook", "msg_1", t, &sig, BODY).at(ts);
        assert_eq!(
            code(check(&cfg, &s, &req)),
            "timestamp_out_of_tolerance",
            "{skew}"
        );
    }
    // A custom tolerance widens the window.
    let wide = config(Scheme::StandardWebhooks, json!({"tolerance_seconds": 900}));
    let t = ts - 600;
    let sig = lib_sign(&python, "standardwebhooks", SECRET, "msg_1", t, BODY);
    assert!(
        check(
            &wide,
            &s,
            &request("webhook", "msg_1", t, &sig, BODY).at(ts)
        )
        .is_ok()
    );
}

#[test]
fn non_utf8_bodies_are_verified_as_bytes() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::StandardWebhooks, json!({}));
    let ts = now();
    let body: Vec<u8> = vec![0xff, 0xfe, b'{', 0x80, 0x00];
    // The reference library only signs text; sign the same construction with hmac directly.
    let sig = py(
        &python,
        "import sys, hmac, hashlib, base64\n\
         key = base64.b64decode(sys.argv[1][6:])\n\
         msg = sys.argv[2].encode() + b'.' + sys.argv[3].encode() + b'.' + bytes.fromhex(sys.argv[4])\n\
         print('v1,' + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode())",
        &[SECRET, "msg_bin", &ts.to_string(), &hex::encode(&body)],
    );
    let req = request("webhook", "msg_bin", ts, &sig, "").body(body.clone());
    let verified = check(&cfg, &secrets(&[SECRET]), &req).expect("binary body verifies");
    assert_eq!(verified.event_type, None);
    let mut altered = body;
    altered[0] = 0xfd;
    assert_eq!(
        code(check(&cfg, &secrets(&[SECRET]), &req.body(altered))),
        "signature_mismatch"
    );
}

#[test]
fn v1a_ed25519_signatures_from_cryptography_verify() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::StandardWebhooks, json!({}));
    let ts = now();
    let out = py(
        &python,
        "import sys, base64\n\
         from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n\
         from cryptography.hazmat.primitives import serialization as s\n\
         k = Ed25519PrivateKey.generate()\n\
         pub = k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)\n\
         sig = k.sign(f'{sys.argv[1]}.{sys.argv[2]}.'.encode() + sys.argv[3].encode())\n\
         print('whpk_' + base64.b64encode(pub).decode(), 'v1a,' + base64.b64encode(sig).decode())",
        &["msg_a", &ts.to_string(), BODY],
    );
    let (whpk, sig) = out.split_once(' ').expect("two values");
    let req = request("webhook", "msg_a", ts, sig, BODY);
    let verified = check(&cfg, &secrets(&[SECRET, whpk]), &req).expect("v1a verifies");
    assert_eq!(verified.secret_index, Some(1));
    assert_eq!(
        code(check(&cfg, &secrets(&[SECRET]), &req)),
        "signature_mismatch"
    );
    let other = SigningKey::generate().unwrap().public_key().to_whpk();
    assert_eq!(
        code(check(&cfg, &secrets(&[&other]), &req)),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &secrets(&[whpk]), &req.clone().body("{}"))),
        "signature_mismatch"
    );
}

#[test]
fn our_v1a_signatures_verify_with_cryptography() {
    let Some(python) = python() else { return };
    let key = SigningKey::generate().unwrap();
    let sig = standard_webhooks::sign_v1a("msg_o", 1_700_000_000, BODY.as_bytes(), &key);
    let out = py(
        &python,
        "import sys, base64\n\
         from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey\n\
         pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(sys.argv[1][5:]))\n\
         pub.verify(base64.b64decode(sys.argv[2][4:]), b'msg_o.1700000000.' + sys.argv[3].encode())\n\
         print('ok')",
        &[&key.public_key().to_whpk(), &sig, BODY],
    );
    assert_eq!(out, "ok");
}

#[test]
fn svix_reference_signatures_verify() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Svix, json!({}));
    let ts = now();
    let sig = lib_sign(&python, "svix", SECRET, "msg_svix", ts, BODY);
    let req = request("svix", "msg_svix", ts, &sig, BODY);
    let verified = check(&cfg, &secrets(&[SECRET]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "msg_svix");

    // Unbranded headers are accepted as Svix's libraries do.
    let unbranded = request("webhook", "msg_svix", ts, &sig, BODY);
    assert!(check(&cfg, &secrets(&[SECRET]), &unbranded).is_ok());

    let s = secrets(&[SECRET]);
    assert_eq!(
        code(check(&cfg, &secrets(&[OTHER]), &req)),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("svix-signature", "v1,")
        )),
        "malformed_signature"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().body("{}"))),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().without("svix-timestamp"))),
        "missing_header"
    );
    let stale = ts - 3600;
    let sig = lib_sign(&python, "svix", SECRET, "msg_svix", stale, BODY);
    let req = request("svix", "msg_svix", stale, &sig, BODY).at(ts);
    assert_eq!(code(check(&cfg, &s, &req)), "timestamp_out_of_tolerance");
}

#[test]
fn gitlab_standard_webhooks_mode() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Gitlab, json!({"gitlab_mode": "standard_webhooks"}));
    let ts = now();
    let body = r#"{"object_kind":"merge_request","object_attributes":{"action":"open"}}"#;
    let sig = lib_sign(&python, "standardwebhooks", SECRET, "gl_1", ts, body);
    let req = request("webhook", "gl_1", ts, &sig, body);
    let verified = check(&cfg, &secrets(&[SECRET]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "gl_1");
    assert_eq!(
        verified.event_type.as_deref(),
        Some("gitlab.merge_request.open")
    );
    assert_eq!(
        code(check(&cfg, &secrets(&[OTHER]), &req)),
        "signature_mismatch"
    );
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let secret = Secret::from(SECRET);
    assert!(!format!("{secret:?}").contains("MfKQ"));
    let generated = SigningSecret::generate().unwrap();
    assert!(!format!("{generated:?}").contains("whsec_"));
}
