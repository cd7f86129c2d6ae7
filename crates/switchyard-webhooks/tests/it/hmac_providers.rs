//! GitHub (npm `@octokit/webhooks-methods`), Stripe (`stripe`), Slack (`slack_sdk`), and
//! Shopify, Linear and Jira (Python hmac, as they ship no signing library).

use serde_json::json;
use switchyard_webhooks::Scheme;

use crate::support::*;

const SECRET: &str = "It's a Secret to Everybody";

fn hmac_py(python: &str, digest: &str, encoding: &str, key: &str, message: &str) -> String {
    py(
        python,
        "import sys, hmac, hashlib, base64\n\
         mac = hmac.new(sys.argv[3].encode(), sys.argv[4].encode(), getattr(hashlib, sys.argv[1])).digest()\n\
         print(mac.hex() if sys.argv[2] == 'hex' else base64.b64encode(mac).decode())",
        &[digest, encoding, key, message],
    )
}

#[test]
fn github_octokit_signatures_verify() {
    let Some(node_modules) = node_modules() else {
        return;
    };
    let cfg = config(Scheme::Github, json!({}));
    let body = r#"{"action":"opened","repository":{"full_name":"octo/hello"}}"#;
    let sig = node(
        &node_modules,
        "import { sign } from '@octokit/webhooks-methods';\n\
         console.log(await sign(process.argv[1], process.argv[2]));",
        &[SECRET, body],
    );
    assert!(sig.starts_with("sha256="), "{sig}");
    let req = Req::post(body)
        .header("x-hub-signature-256", &sig)
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    let verified = check(&cfg, &secrets(&["old secret", SECRET]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(
        verified.event_type.as_deref(),
        Some("github.pull_request.opened")
    );
    assert_eq!(verified.secret_index, Some(1));

    let s = secrets(&[SECRET]);
    assert_eq!(
        code(check(&cfg, &secrets(&["wrong"]), &req)),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().body(format!("{body}\n")))),
        "signature_mismatch"
    );
    for bad in [
        "sha256=",
        "sha256",
        "",
        &sig[..sig.len() - 2],
        "sha1=abcd",
        "sha256=zz",
    ] {
        let req = req.clone().header("x-hub-signature-256", bad);
        assert_eq!(
            code(check(&cfg, &s, &req)),
            "malformed_signature",
            "{bad:?}"
        );
    }
    assert_eq!(
        code(check(&cfg, &s, &req.clone().without("x-hub-signature-256"))),
        "missing_header"
    );
    assert_eq!(code(check(&cfg, &[], &req)), "no_secret_configured");
}

#[test]
fn github_non_utf8_body() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Github, json!({}));
    let body = vec![0xc3, 0x28, 0xa0, 0xa1];
    let sig = py(
        &python,
        "import sys, hmac, hashlib\n\
         print('sha256=' + hmac.new(sys.argv[1].encode(), bytes.fromhex(sys.argv[2]), hashlib.sha256).hexdigest())",
        &[SECRET, &hex::encode(&body)],
    );
    let req = Req::post(body).header("x-hub-signature-256", &sig);
    let verified = check(&cfg, &secrets(&[SECRET]), &req).expect("verifies");
    assert_eq!(verified.event_type, None);
    assert_eq!(
        verified.delivery_id.len(),
        64,
        "falls back to the body hash"
    );
}

fn stripe_header(python: &str, secret: &str, ts: i64, body: &str) -> String {
    // As stripe-python's own tests build a header: t=…,v1=_compute_signature("{t}.{body}").
    py(
        python,
        "import sys, stripe\n\
         t = sys.argv[2]\n\
         sig = stripe.WebhookSignature._compute_signature(t + '.' + sys.argv[3], sys.argv[1])\n\
         print(f't={t},v1={sig}')",
        &[secret, &ts.to_string(), body],
    )
}

#[test]
fn stripe_reference_signatures_verify() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Stripe, json!({}));
    let secret = "whsec_test_secret";
    let body = r#"{"id":"evt_1","type":"invoice.paid","created":1700000000,"data":{"object":{"id":"in_1"}}}"#;
    let ts = now();
    let header = stripe_header(&python, secret, ts, body);
    let req = Req::post(body).header("stripe-signature", &header);
    let verified = check(&cfg, &secrets(&[secret]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "evt_1");
    assert_eq!(verified.event_type.as_deref(), Some("stripe.invoice.paid"));

    // Several v1 entries (Stripe sends one per active secret) and a v0 are fine.
    let other = stripe_header(&python, "whsec_other", ts, body);
    let other_v1 = other.split_once(",v1=").unwrap().1;
    let multi = format!("{header},v1={other_v1},v0=deadbeef");
    assert!(
        check(
            &cfg,
            &secrets(&["whsec_other"]),
            &req.clone().header("stripe-signature", &multi)
        )
        .is_ok()
    );

    let s = secrets(&[secret]);
    assert_eq!(
        code(check(&cfg, &secrets(&["whsec_wrong"]), &req)),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().body("{}"))),
        "signature_mismatch"
    );
    let no_v1 = format!("t={ts}");
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("stripe-signature", &no_v1)
        )),
        "malformed_signature"
    );
    let empty_v1 = format!("t={ts},v1=");
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("stripe-signature", &empty_v1)
        )),
        "malformed_signature"
    );
    let truncated = &header[..header.len() - 6];
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("stripe-signature", truncated)
        )),
        "malformed_signature"
    );
    let no_t = header.split_once(',').unwrap().1;
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("stripe-signature", no_t)
        )),
        "malformed_timestamp"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().without("stripe-signature"))),
        "missing_header"
    );
    for skew in [-400, 400] {
        let h = stripe_header(&python, secret, ts + skew, body);
        let req = req.clone().at(ts).header("stripe-signature", &h);
        assert_eq!(code(check(&cfg, &s, &req)), "timestamp_out_of_tolerance");
    }
}

fn slack_sign(python: &str, secret: &str, ts: i64, body: &str) -> String {
    py(
        python,
        "import sys\n\
         from slack_sdk.signature import SignatureVerifier\n\
         print(SignatureVerifier(sys.argv[1]).generate_signature(timestamp=sys.argv[2], body=sys.argv[3]))",
        &[secret, &ts.to_string(), body],
    )
}

#[test]
fn slack_sdk_signatures_verify() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Slack, json!({}));
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let body = r#"{"type":"event_callback","team_id":"T1","event_id":"Ev1","event_time":1700000000,"event":{"type":"app_mention"}}"#;
    let ts = now();
    let sig = slack_sign(&python, secret, ts, body);
    let req = Req::post(body)
        .header("x-slack-request-timestamp", &ts.to_string())
        .header("x-slack-signature", &sig);
    let verified = check(&cfg, &secrets(&[secret]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "Ev1");
    assert_eq!(verified.event_type.as_deref(), Some("slack.app_mention"));

    // Slash commands are form posts.
    let form = "command=%2Fdeploy&text=now&team_id=T1";
    let sig_form = slack_sign(&python, secret, ts, form);
    let form_req = req
        .clone()
        .body(form)
        .header("x-slack-signature", &sig_form);
    let verified = check(&cfg, &secrets(&[secret]), &form_req).expect("form verifies");
    assert_eq!(verified.event_type.as_deref(), Some("slack.command"));

    let s = secrets(&[secret]);
    assert_eq!(
        code(check(&cfg, &secrets(&["nope"]), &req)),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().body("{}"))),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("x-slack-signature", "v0=")
        )),
        "malformed_signature"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("x-slack-signature", &sig[..20])
        )),
        "malformed_signature"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().without("x-slack-request-timestamp")
        )),
        "missing_header"
    );
    for skew in [-301, 301] {
        let t = ts + skew;
        let req = req
            .clone()
            .at(ts)
            .header("x-slack-request-timestamp", &t.to_string())
            .header("x-slack-signature", &slack_sign(&python, secret, t, body));
        assert_eq!(code(check(&cfg, &s, &req)), "timestamp_out_of_tolerance");
    }
}

#[test]
fn shopify_signatures_verify() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Shopify, json!({}));
    let body = r#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    let sig = hmac_py(&python, "sha256", "base64", SECRET, body);
    let req = Req::post(body)
        .header("x-shopify-hmac-sha256", &sig)
        .header("x-shopify-topic", "orders/create")
        .header(
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        )
        .header("x-shopify-shop-domain", "shop.myshopify.com");
    let verified = check(&cfg, &secrets(&[SECRET]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
    assert_eq!(
        verified.event_type.as_deref(),
        Some("shopify.orders.create")
    );

    let s = secrets(&[SECRET]);
    assert_eq!(
        code(check(&cfg, &secrets(&["x"]), &req)),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().body("{}"))),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("x-shopify-hmac-sha256", "")
        )),
        "malformed_signature"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("x-shopify-hmac-sha256", &sig[..10])
        )),
        "malformed_signature"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().without("x-shopify-hmac-sha256")
        )),
        "missing_header"
    );
}

#[test]
fn linear_signatures_and_body_timestamp() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Linear, json!({}));
    let millis = now() * 1000;
    let body_at = |ms: i64| {
        format!(
            r#"{{"action":"create","type":"Issue","data":{{"id":"iss_1"}},"webhookTimestamp":{ms}}}"#
        )
    };
    let body = body_at(millis);
    let sig = hmac_py(&python, "sha256", "hex", SECRET, &body);
    let req = Req::post(body.clone())
        .header("linear-signature", &sig)
        .header("linear-delivery", "234d1a4e-b617-4388-90fe-adc3633d6b72")
        .header("linear-event", "Issue");
    let verified = check(&cfg, &secrets(&[SECRET]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "234d1a4e-b617-4388-90fe-adc3633d6b72");
    assert_eq!(verified.event_type.as_deref(), Some("linear.issue.create"));

    let s = secrets(&[SECRET]);
    assert_eq!(
        code(check(&cfg, &secrets(&["x"]), &req)),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().header("linear-signature", ""))),
        "malformed_signature"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("linear-signature", &sig[..62])
        )),
        "malformed_signature"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().body(body.replace("create", "remove"))
        )),
        "signature_mismatch"
    );
    for skew in [-61_000, 61_000] {
        let body = body_at(millis + skew);
        let sig = hmac_py(&python, "sha256", "hex", SECRET, &body);
        let req = req
            .clone()
            .at(millis / 1000)
            .body(body)
            .header("linear-signature", &sig);
        assert_eq!(code(check(&cfg, &s, &req)), "timestamp_out_of_tolerance");
    }
    // A signed body without the timestamp fails closed.
    let body = r#"{"action":"create"}"#;
    let sig = hmac_py(&python, "sha256", "hex", SECRET, body);
    let req = req.clone().body(body).header("linear-signature", &sig);
    assert_eq!(code(check(&cfg, &s, &req)), "malformed_timestamp");
}

#[test]
fn jira_signatures_verify() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Jira, json!({}));
    let body = r#"{"webhookEvent":"jira:issue_updated","issue":{"key":"PRJ-1"}}"#;
    let sig = format!("sha256={}", hmac_py(&python, "sha256", "hex", SECRET, body));
    let req = Req::post(body)
        .header("x-hub-signature", &sig)
        .header("x-atlassian-webhook-identifier", "5a1b");
    let verified = check(&cfg, &secrets(&[SECRET]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "5a1b");
    assert_eq!(verified.event_type.as_deref(), Some("jira.issue_updated"));

    let s = secrets(&[SECRET]);
    assert_eq!(
        code(check(&cfg, &secrets(&["x"]), &req)),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().body("{}"))),
        "signature_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("x-hub-signature", "sha256=")
        )),
        "malformed_signature"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().without("x-hub-signature"))),
        "missing_header"
    );
}
