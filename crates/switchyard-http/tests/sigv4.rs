//! The `AwsSigV4` credential against an implementation nobody here wrote: botocore (the AWS
//! SDK for Python, from the peers venv) signs the same requests and must produce the same
//! headers; then requests as a local server received them through the whole provider stack,
//! retries included, are re-verified by botocore the way AWS verifies them.
//!
//! Needs `SWITCHYARD_TEST_PEERS_PYTHON` (a python with botocore: `scripts/peers/moto.sh`).
//! Unset locally the tests skip; unset in CI they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::SecretString;
use serde_json::{Value, json};
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, AwsSigV4, BreakerConfig, BreakerRegistry, CallScope,
    Credential, CredentialError, CredentialSource, ExponentialBackoff, GuardedClient,
    ProviderClient, ProviderPolicy, ProviderRequest, Rate, RateLimiter, RetryPolicy, SsrfPolicy,
    SystemClock,
};
use switchyard_test_support::required_test_server;

/// Signs each case with botocore's `SigV4Auth` (`S3SigV4Auth` for `s3`) at the case's time
/// (`at`, Unix seconds, or `amz_date`, as an `X-Amz-Date`) and prints the headers it set.
const BOTOCORE_SIGN: &str = r#"
import base64, datetime, json, sys
from unittest import mock
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SIGNATURE_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256")
signed = []
for case in json.loads(sys.stdin.read()):
    request = AWSRequest(method=case["method"], url=case["url"], data=base64.b64decode(case["body"]))
    for name, value in case["headers"]:
        request.headers[name] = value
    if "amz_date" in case:
        at = datetime.datetime.strptime(case["amz_date"], "%Y%m%dT%H%M%SZ")
    else:
        at = datetime.datetime.fromtimestamp(case["at"], datetime.timezone.utc).replace(tzinfo=None)
    signer_class = botocore.auth.S3SigV4Auth if case["service"] == "s3" else botocore.auth.SigV4Auth
    credentials = Credentials(case["access_key_id"], case["secret_access_key"], case.get("session_token"))
    signer = signer_class(credentials, case["service"], case["region"])
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        signer.add_auth(request)
    signed.append({k.lower(): v for k, v in request.headers.items() if k.lower() in SIGNATURE_HEADERS})
print(json.dumps(signed))
"#;

const SIGNATURE_HEADERS: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE//session+token/==";

fn python() -> Option<String> {
    required_test_server("SWITCHYARD_TEST_PEERS_PYTHON")
}

/// botocore's signature headers for each case, in order.
fn botocore_sign(python: &str, cases: &[Value]) -> Vec<Value> {
    use std::io::Write as _;
    let mut child = Command::new(python)
        .args(["-c", BOTOCORE_SIGN])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the peers python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(cases).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "botocore failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("botocore prints JSON")
}

fn signer(service: &str, region: &str, session_token: bool) -> AwsSigV4 {
    AwsSigV4 {
        access_key_id: ACCESS_KEY_ID.to_owned(),
        secret_access_key: SecretString::from(SECRET_ACCESS_KEY),
        session_token: session_token.then(|| SecretString::from(SESSION_TOKEN)),
        region: region.to_owned(),
        service: service.to_owned(),
    }
}

/// One request to sign both ways.
struct Case {
    name: &'static str,
    signer: AwsSigV4,
    request: reqwest::Request,
}

fn request(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> reqwest::Request {
    let mut request = reqwest::Request::new(method, url.parse().unwrap());
    for (name, value) in headers {
        request.headers_mut().append(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    if !body.is_empty() {
        *request.body_mut() = Some(body.to_owned().into());
    }
    request
}

fn cases() -> Vec<Case> {
    // A GET whose query needs encoding: spaces (which reqwest writes as `+`), slashes,
    // non-ASCII, reserved characters, and a repeated name.
    let mut query = request(reqwest::Method::GET, "https://iam.amazonaws.com/", &[], "");
    query
        .url_mut()
        .query_pairs_mut()
        .append_pair("Action", "ListUsers")
        .append_pair("Version", "2010-05-08")
        .append_pair("PathPrefix", "/division abc/équipe/")
        .append_pair("Marker", "a+b=c&d*e~f")
        .append_pair("Tag", "z")
        .append_pair("Tag", "a");
    vec![
        Case {
            name: "GET with an encoded query and a session token",
            signer: signer("iam", "us-east-1", true),
            request: query,
        },
        Case {
            name: "POST with a form body, trace context and a user agent",
            signer: signer("iam", "us-east-1", false),
            request: request(
                reqwest::Method::POST,
                "https://iam.amazonaws.com/",
                &[
                    (
                        "content-type",
                        "application/x-www-form-urlencoded; charset=utf-8",
                    ),
                    (
                        "traceparent",
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    ),
                    ("user-agent", "Switchyard/0.1.0"),
                    ("x-custom", "  spaced   out  value "),
                ],
                "Action=CreateUser&UserName=ada%20lovelace&Version=2010-05-08",
            ),
        },
        Case {
            name: "unicode path segments to API Gateway, on a regional endpoint",
            signer: signer("execute-api", "eu-west-1", true),
            request: request(
                reqwest::Method::GET,
                "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/users/Zoë Ünïcode/it's(1)!?limit=5",
                &[("accept", "application/json")],
                "",
            ),
        },
        Case {
            name: "S3 PUT: the path as sent and the body hash in a header",
            signer: signer("s3", "eu-central-1", true),
            request: request(
                reqwest::Method::PUT,
                "https://bucket.s3.eu-central-1.amazonaws.com/photos/été 2024/a b.txt?x-id=PutObject",
                &[("content-type", "text/plain")],
                "hello, 世界",
            ),
        },
        Case {
            name: "a JSON body to STS on a non-default port",
            signer: signer("sts", "us-west-2", false),
            request: request(
                reqwest::Method::POST,
                "http://127.0.0.1:5055/",
                &[("content-type", "application/x-amz-json-1.1")],
                r#"{"DurationSeconds": 900}"#,
            ),
        },
    ]
}

/// The request's parts as botocore is given them (after our signing, less what it sets).
fn botocore_case(signer: &AwsSigV4, request: &reqwest::Request, time: Value) -> Value {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter(|(name, _)| !SIGNATURE_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    let body = request
        .body()
        .and_then(reqwest::Body::as_bytes)
        .unwrap_or_default();
    let mut case = json!({
        "method": request.method().as_str(),
        "url": request.url().as_str(),
        "headers": headers,
        "body": BASE64.encode(body),
        "service": signer.service,
        "region": signer.region,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "session_token": signer.session_token.as_ref().map(|_| SESSION_TOKEN),
    });
    let (key, value) = match time {
        Value::String(amz_date) => ("amz_date", Value::String(amz_date)),
        at => ("at", at),
    };
    case[key] = value;
    case
}

fn signature_headers(headers: &reqwest::header::HeaderMap) -> Value {
    let mut placed = serde_json::Map::new();
    for name in SIGNATURE_HEADERS {
        if let Some(value) = headers.get(name) {
            placed.insert(name.to_owned(), json!(value.to_str().unwrap()));
        }
    }
    Value::Object(placed)
}

#[test]
fn signatures_equal_botocore_s_for_the_same_requests() {
    let Some(python) = python() else { return };
    // 2024-02-29T23:59:58Z: a leap day, seconds before the date in the scope changes.
    let at = UNIX_EPOCH + Duration::from_secs(1_709_251_198);
    let mut cases = cases();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for case in &mut cases {
        case.signer.sign(&mut case.request, at).unwrap();
        ours.push(signature_headers(case.request.headers()));
        theirs.push(botocore_case(
            &case.signer,
            &case.request,
            json!(1_709_251_198),
        ));
    }
    let botocore = botocore_sign(&python, &theirs);
    for ((case, ours), botocore) in cases.iter().zip(&ours).zip(&botocore) {
        assert_eq!(ours, botocore, "{}", case.name);
    }
    // The cases say what they claim to.
    let get = &cases[0].request;
    assert_eq!(
        get.url().query(),
        Some(
            "Action=ListUsers&Version=2010-05-08&PathPrefix=%2Fdivision%20abc%2F%C3%A9quipe%2F\
             &Marker=a%2Bb%3Dc%26d%2Ae~f&Tag=z&Tag=a"
        ),
        "the query is sent as it is signed"
    );
    assert_eq!(ours[0]["x-amz-security-token"], SESSION_TOKEN);
    assert_eq!(ours[0]["x-amz-date"], "20240229T235958Z");
    let post_auth = ours[1]["authorization"].as_str().unwrap();
    assert!(
        post_auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240229/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-custom, Signature="
        ),
        "{post_auth}"
    );
    assert!(ours[1].get("x-amz-security-token").is_none());
    assert!(
        ours[3].get("x-amz-content-sha256").is_some(),
        "S3 signs the body hash in a header"
    );
    assert!(ours[0].get("x-amz-content-sha256").is_none());
    assert!(
        cases[0].request.headers()["authorization"].is_sensitive()
            && cases[0].request.headers()["x-amz-security-token"].is_sensitive()
    );
}

#[test]
fn a_different_body_or_time_is_a_different_signature() {
    let signer = signer("iam", "us-east-1", false);
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let sign = |body: &str, at: SystemTime| {
        let mut request = request(
            reqwest::Method::POST,
            "https://iam.amazonaws.com/",
            &[],
            body,
        );
        signer.sign(&mut request, at).unwrap();
        request.headers()["authorization"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let first = sign("Action=ListUsers", at);
    assert_eq!(first, sign("Action=ListUsers", at), "deterministic");
    assert_ne!(first, sign("Action=ListUser", at), "the body is signed");
    assert_ne!(first, sign("Action=ListUsers", at + Duration::from_secs(1)));
}

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Received>>>);

/// `/throttled` answers the first request 429 with `Retry-After: 1`, later ones 200.
async fn record(
    State(seen): State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let count = {
        let mut seen = seen.0.lock().unwrap();
        seen.push(Received {
            method,
            uri,
            headers,
            body,
        });
        seen.iter().filter(|r| r.uri.path() == path).count()
    };
    if path == "/throttled" && count == 1 {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
    }
    "ok".into_response()
}

async fn server() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new().fallback(any(record)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// The keys a vault would hold, as a fresh credential per attempt.
struct AwsKeys;

impl CredentialSource for AwsKeys {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::AwsSigV4(signer("iam", "us-east-1", true))))
    }
}

fn client() -> ProviderClient<switchyard_http::InMemoryBackend, AwsKeys> {
    let policy = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    let client = GuardedClient::builder(policy)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    ProviderClient::new(
        client,
        Arc::new(RateLimiter::in_memory(Rate::per_second(
            NonZeroU32::new(1000).unwrap(),
        ))),
        Arc::new(AdaptiveLimits::new(
            AdaptiveConfig::default(),
            Arc::new(SystemClock),
        )),
        Arc::new(BreakerRegistry::new(
            BreakerConfig::default(),
            Arc::new(SystemClock),
        )),
        AwsKeys,
    )
}

fn scope() -> CallScope {
    CallScope {
        tenant: "ten_a".to_owned(),
        provider: "aws-iam".to_owned(),
        connection: Some("con_1".to_owned()),
    }
}

/// What botocore is given to verify a received request, as AWS does: the headers the
/// `Authorization` names as signed, at the `X-Amz-Date` it carries.
fn as_received(addr: SocketAddr, received: &Received) -> Value {
    let authorization = received.headers["authorization"].to_str().unwrap();
    let signed = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap();
    let headers: Vec<(String, String)> = signed
        .split(';')
        .filter(|name| !SIGNATURE_HEADERS.contains(name))
        .map(|name| {
            let value = received.headers[name].to_str().unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let amz_date = received.headers["x-amz-date"].to_str().unwrap();
    json!({
        "method": received.method.as_str(),
        "url": format!("http://{addr}{}", received.uri),
        "headers": headers,
        "body": BASE64.encode(&received.body),
        "service": "iam",
        "region": "us-east-1",
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "session_token": SESSION_TOKEN,
        "amz_date": amz_date,
    })
}

#[tokio::test]
async fn every_attempt_through_the_stack_is_signed_afresh_and_verifies() {
    let Some(python) = python() else { return };
    let (addr, seen) = server().await;
    let client = client();
    let policy = ProviderPolicy {
        retry: RetryPolicy {
            backoff: ExponentialBackoff::new(Duration::from_millis(10), Duration::from_millis(50)),
            ..RetryPolicy::default()
        },
        ..ProviderPolicy::default()
    };

    // A GET the provider throttles once: the retry waits a second and is signed again.
    let mut get = reqwest::Request::new(
        reqwest::Method::GET,
        format!("http://{addr}/throttled").parse().unwrap(),
    );
    get.url_mut()
        .query_pairs_mut()
        .append_pair("Action", "ListUsers")
        .append_pair("PathPrefix", "/a b/");
    let call =
        ProviderRequest::new(scope(), get, "/throttled").deadline_in(Duration::from_secs(20));
    let response = client.call(&policy, call).await.unwrap();
    assert_eq!((response.status.as_u16(), response.attempts), (200, 2));

    // A form POST, once.
    let mut post = reqwest::Request::new(
        reqwest::Method::POST,
        format!("http://{addr}/").parse().unwrap(),
    );
    post.headers_mut().insert(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8"
            .parse()
            .unwrap(),
    );
    *post.body_mut() = Some("Action=ListUsers&Version=2010-05-08".into());
    let response = client
        .call(&policy, ProviderRequest::new(scope(), post, "/"))
        .await
        .unwrap();
    assert_eq!(response.status.as_u16(), 200);

    let received = seen.0.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    let dates: Vec<&str> = received
        .iter()
        .map(|r| r.headers["x-amz-date"].to_str().unwrap())
        .collect();
    assert_ne!(dates[0], dates[1], "the retry carries its own time");
    let authorizations: Vec<&str> = received
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap())
        .collect();
    assert_ne!(authorizations[0], authorizations[1]);
    for r in &received {
        assert!(r.headers.contains_key("traceparent"), "set before signing");
        assert_eq!(r.headers["x-amz-security-token"], SESSION_TOKEN);
    }
    assert!(
        authorizations[2]
            .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"),
        "{}",
        authorizations[2]
    );

    let cases: Vec<Value> = received.iter().map(|r| as_received(addr, r)).collect();
    let verified = botocore_sign(&python, &cases);
    for (r, botocore) in received.iter().zip(&verified) {
        assert_eq!(
            botocore["authorization"].as_str(),
            r.headers["authorization"].to_str().ok(),
            "{} {}",
            r.method,
            r.uri
        );
    }
}
