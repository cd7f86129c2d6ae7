//! generic_hmac, signed with Python's hmac.

use serde_json::json;
use switchyard_webhooks::Scheme;

use crate::support::*;

fn sign(python: &str, digest: &str, encoding: &str, key: &str, message: &[u8]) -> String {
    py(
        python,
        "import sys, hmac, hashlib, base64\n\
         mac = hmac.new(sys.argv[3].encode(), bytes.fromhex(sys.argv[4]), getattr(hashlib, sys.argv[1])).digest()\n\
         print(mac.hex() if sys.argv[2] == 'hex' else base64.b64encode(mac).decode())",
        &[digest, encoding, key, &hex::encode(message)],
    )
}

#[test]
fn algorithms_and_encodings() {
    let Some(python) = python() else { return };
    let body = br#"{"event":"x"}"#;
    for (algorithm, encoding) in [
        ("sha1", "hex"),
        ("sha256", "base64"),
        ("sha512", "hex"),
        ("sha512", "base64"),
    ] {
        let cfg = config(
            Scheme::GenericHmac,
            json!({"header": "x-signature", "prefix": "sig=", "algorithm": algorithm, "encoding": encoding}),
        );
        let sig = sign(&python, algorithm, encoding, "k3y", body);
        let req = Req::post(body.to_vec()).header("x-signature", &format!("sig={sig}"));
        assert!(
            check(&cfg, &secrets(&["k3y"]), &req).is_ok(),
            "{algorithm} {encoding}"
        );
        assert_eq!(
            code(check(&cfg, &secrets(&["other"]), &req)),
            "signature_mismatch"
        );
        let bare = req.clone().header("x-signature", &sig);
        assert_eq!(
            code(check(&cfg, &secrets(&["k3y"]), &bare)),
            "malformed_signature"
        );
        let empty = req.clone().header("x-signature", "sig=");
        assert_eq!(
            code(check(&cfg, &secrets(&["k3y"]), &empty)),
            "malformed_signature"
        );
        let altered = req.clone().body(b"{}".to_vec());
        assert_eq!(
            code(check(&cfg, &secrets(&["k3y"]), &altered)),
            "signature_mismatch"
        );
    }
}

#[test]
fn timestamp_template_and_tolerance() {
    let Some(python) = python() else { return };
    let cfg = config(
        Scheme::GenericHmac,
        json!({
            "header": "x-sig",
            "timestamp_header": "x-ts",
            "signed_content": "{timestamp}.{body}",
            "id_header": "x-delivery",
            "event_type_header": "x-event"
        }),
    );
    let body = [0xffu8, 0x00, b'a'];
    let signed = |ts: i64| {
        let mut message = format!("{ts}.").into_bytes();
        message.extend_from_slice(&body);
        Req::post(body.to_vec())
            .header("x-ts", &ts.to_string())
            .header("x-sig", &sign(&python, "sha256", "hex", "k", &message))
            .header("x-delivery", "d-1")
            .header("x-event", "thing.happened")
    };
    let ts = now();
    let verified = check(&cfg, &secrets(&["k"]), &signed(ts)).expect("verifies");
    assert_eq!(verified.delivery_id, "d-1");
    assert_eq!(verified.event_type.as_deref(), Some("thing.happened"));
    assert_eq!(verified.signed_at.map(|t| t.unix_timestamp()), Some(ts));
    for skew in [-301, 301] {
        assert_eq!(
            code(check(&cfg, &secrets(&["k"]), &signed(ts + skew).at(ts))),
            "timestamp_out_of_tolerance"
        );
    }
    assert_eq!(
        code(check(&cfg, &secrets(&["k"]), &signed(ts).without("x-ts"))),
        "missing_header"
    );
    // The timestamp is part of what is signed.
    let moved = signed(ts).header("x-ts", &(ts + 1).to_string());
    assert_eq!(
        code(check(&cfg, &secrets(&["k"]), &moved)),
        "signature_mismatch"
    );
}
