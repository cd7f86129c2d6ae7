//! Amazon SNS: a certificate and signatures made with Python's `cryptography` (SignatureVersion
//! 1 and 2), served by an in-memory fetcher.

use serde_json::{Value, json};
use switchyard_webhooks::{HandshakeAction, HandshakeKind, Inbound, Scheme};

use crate::support::*;

const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:MyTopic";

/// A key and self-signed certificate, and a signer that builds SNS's canonical string the way
/// AWS documents it. Input: JSON messages (without signatures) on stdin; output: PEM + signed.
const SIGNER: &str = r#"
import sys, json, base64, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, padding
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256()))
FIELDS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
}
out = []
for m in json.load(sys.stdin):
    canonical = "".join(f"{k}\n{m[k]}\n" for k in FIELDS[m["Type"]] if k in m)
    digest = hashes.SHA1() if m["SignatureVersion"] == "1" else hashes.SHA256()
    m["Signature"] = base64.b64encode(key.sign(canonical.encode(), padding.PKCS1v15(), digest)).decode()
    out.append(m)
print(json.dumps({"pem": cert.public_bytes(serialization.Encoding.PEM).decode(), "messages": out}))
"#;

fn sign(python: &str, messages: &Value) -> (String, Vec<Value>) {
    let mut child = std::process::Command::new(python)
        .args(["-c", SIGNER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(messages.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        out["pem"].as_str().unwrap().to_owned(),
        out["messages"].as_array().unwrap().clone(),
    )
}

fn notification(version: &str) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": format!("22b80b92-fdea-4c2c-8f9d-bdfb0c7bf32{version}"),
        "TopicArn": TOPIC,
        "Subject": "My First Message",
        "Message": "Hello world!",
        "Timestamp": "2012-05-02T00:54:06.655Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x"
    })
}

fn confirmation() -> Value {
    json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic. To confirm, visit the SubscribeURL.",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=2336412f37",
        "Timestamp": "2012-04-26T20:45:04.751Z",
        "SignatureVersion": "2",
        "SigningCertURL": CERT_URL
    })
}

#[test]
fn sns_messages_verify_and_confirm() {
    let Some(python) = python() else { return };
    let (pem, messages) = sign(
        &python,
        &json!([notification("1"), notification("2"), confirmation()]),
    );
    let (fetcher, keys) = map_cache(vec![(CERT_URL.to_owned(), pem.into_bytes())]);
    let cfg = config(Scheme::AwsSns, json!({}));

    for message in &messages[..2] {
        let req = Req::post(message.to_string()).header("x-amz-sns-message-type", "Notification");
        let verified = check_with(&cfg, &[], &req, &keys).expect("notification verifies");
        assert_eq!(verified.delivery_id, message["MessageId"].as_str().unwrap());
        assert_eq!(verified.event_type.as_deref(), Some("aws_sns.notification"));
        assert_eq!(verified.principal.as_deref(), Some(TOPIC));
    }
    assert_eq!(
        fetcher.1.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "certificate cached"
    );

    let req = Req::post(messages[2].to_string());
    let Inbound::Handshake(h) = process(&cfg, &[], &req, &keys).expect("confirmation") else {
        panic!("expected a handshake")
    };
    assert_eq!(h.kind, HandshakeKind::SnsSubscriptionConfirmation);
    let HandshakeAction::ConfirmSubscription { subscribe_url } = h.action else {
        panic!()
    };
    assert_eq!(
        subscribe_url.as_str(),
        messages[2]["SubscribeURL"].as_str().unwrap()
    );

    // Negative cases.
    let tampered = |f: &dyn Fn(&mut Value)| {
        let mut m = messages[0].clone();
        f(&mut m);
        check_with(&cfg, &[], &Req::post(m.to_string()), &keys)
    };
    assert_eq!(
        code(tampered(&|m| m["Message"] = json!("Goodbye"))),
        "signature_mismatch"
    );
    assert_eq!(
        code(tampered(&|m| m["SignatureVersion"] = json!("2"))),
        "signature_mismatch"
    );
    assert_eq!(
        code(tampered(&|m| m["SignatureVersion"] = json!("3"))),
        "unsupported_signature_version"
    );
    assert_eq!(
        code(tampered(&|m| m["Signature"] = json!(""))),
        "malformed_signature"
    );
    for url in [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-test.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com.pem",
        "https://127.0.0.1/x.pem",
    ] {
        assert_eq!(
            code(tampered(&|m| m["SigningCertURL"] = json!(url))),
            "certificate_host_not_allowed",
            "{url}"
        );
    }
    assert_eq!(
        code(tampered(&|m| {
            m.as_object_mut().unwrap().remove("Timestamp");
        })),
        "malformed_body"
    );
    assert_eq!(
        code(check_with(&cfg, &[], &Req::post(vec![0xffu8, 0xfe]), &keys)),
        "malformed_body"
    );

    // A confirmation that would send the caller elsewhere is refused even if signed.
    let mut evil = confirmation();
    evil["SubscribeURL"] = json!("https://169.254.169.254/latest/meta-data");
    let (pem2, signed) = sign(&python, &json!([evil]));
    let (_, keys2) = map_cache(vec![(CERT_URL.to_owned(), pem2.into_bytes())]);
    let err = process(&cfg, &[], &Req::post(signed[0].to_string()), &keys2).unwrap_err();
    assert_eq!(err.code(), "invalid_url");

    // Topic allow list.
    let only_other = config(
        Scheme::AwsSns,
        json!({"topic_arns": ["arn:aws:sns:us-east-1:1:Other"]}),
    );
    let req = Req::post(messages[0].to_string());
    assert_eq!(
        code(check_with(&only_other, &[], &req, &keys)),
        "topic_not_allowed"
    );

    // A certificate signed by another key.
    let (other_pem, _) = sign(&python, &json!([]));
    let (_, other_keys) = map_cache(vec![(CERT_URL.to_owned(), other_pem.into_bytes())]);
    assert_eq!(
        code(check_with(&cfg, &[], &req, &other_keys)),
        "signature_mismatch"
    );
    // The certificate cannot be fetched.
    let (_, empty) = map_cache(vec![]);
    assert_eq!(
        code(check_with(&cfg, &[], &req, &empty)),
        "key_fetch_failed"
    );
    // The certificate is expired at the time of receipt.
    let mut late = req.clone();
    late.received_at += time::Duration::days(60);
    assert_eq!(
        code(check_with(&cfg, &[], &late, &keys)),
        "invalid_certificate"
    );
}
