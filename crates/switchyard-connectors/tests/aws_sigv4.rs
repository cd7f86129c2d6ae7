//! The `aws_sigv4` auth mode: what the loader accepts and refuses, which credential fields it
//! takes, and a sync through the whole stack against moto (AWS service mocks), which routes
//! each request by the service and region in its signature's credential scope: a Cognito
//! user pool's users, page by page, every page a signed POST.
//!
//! The sync needs `SWITCHYARD_TEST_MOTO_URL` and `SWITCHYARD_TEST_PEERS_PYTHON` (boto3 from
//! the peers venv seeds the pool). Unset locally it skips; unset in CI it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use switchyard_connectors::credentials::{
    CredentialFieldsError, HeldCredential, TokenBroker, check_fields,
};
use switchyard_connectors::manifest::{self, AuthMode, Manifest};
use switchyard_connectors::{CallContext, Connector, ManifestConnector};
use switchyard_http::{GuardedClient, SsrfPolicy};
use switchyard_test_support::required_test_server;
use switchyard_test_support::standin::provider_client;

#[path = "common/store.rs"]
mod store;

use store::Store;

fn manifest_text() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/aws/aws-cognito.yaml");
    std::fs::read_to_string(path).unwrap()
}

fn load(text: &str) -> Result<Manifest, Vec<String>> {
    manifest::load(text, "aws.yaml")
        .map_err(|error| error.problems.iter().map(ToString::to_string).collect())
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

#[test]
fn the_mode_declares_service_and_region_and_takes_access_keys() {
    let manifest = load(&manifest_text()).unwrap();
    let [AuthMode::AwsSigV4(spec)] = manifest.auth.as_slice() else {
        panic!("one aws_sigv4 mode: {:?}", manifest.auth);
    };
    assert_eq!(spec.service, "cognito-idp");
    assert_eq!(spec.region, "{{ config.region | default('us-east-1') }}");
    let mode = &manifest.auth[0];
    assert_eq!(mode.kind(), "aws_sigv4");
    assert_eq!(
        mode.credential_fields(),
        ["access_key_id", "secret_access_key"]
    );

    let keys = json!({"access_key_id": "AKID", "secret_access_key": "s"});
    assert!(check_fields(mode, &fields(keys)).is_ok());
    let temporary =
        json!({"access_key_id": "AKID", "secret_access_key": "s", "session_token": "t"});
    assert!(check_fields(mode, &fields(temporary)).is_ok());
    assert!(matches!(
        check_fields(mode, &fields(json!({"access_key_id": "AKID"}))),
        Err(CredentialFieldsError::Missing(f)) if f == "secret_access_key"
    ));
    let extra = json!({"access_key_id": "AKID", "secret_access_key": "s", "token": "x"});
    assert!(matches!(
        check_fields(mode, &fields(extra)),
        Err(CredentialFieldsError::Unexpected(f, "aws_sigv4")) if f == "token"
    ));
}

#[test]
fn a_bad_service_or_region_is_refused_where_it_is_written() {
    let text = manifest_text();
    let with = |service: &str, region: &str| {
        text.replace("service: cognito-idp", &format!("service: {service}"))
            .replace(
                "region: \"{{ config.region | default('us-east-1') }}\"",
                &format!("region: {region}"),
            )
    };
    // A plain region is fine, as is a template over the config.
    assert!(load(&with("iam", "us-east-1")).is_ok());
    assert!(load(&with("execute-api", "\"{{ config.region }}\"")).is_ok());

    let problems = load(&with("Cognito IDP", "us-east-1")).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("auth[0].service") && p.contains("signing name")),
        "{problems:?}"
    );
    let problems = load(&with("iam", "\"US East\"")).unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("auth[0].region")),
        "{problems:?}"
    );
    let problems = load(&with("iam", "\"{{ secrets.region }}\"")).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("auth[0].region") && p.contains("never `secrets`")),
        "{problems:?}"
    );
    let problems = load(&with("iam", "\"{{ config.region \"")).unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("auth[0].region")),
        "{problems:?}"
    );
    // Both are required, and nothing else is accepted.
    let without_service = text.replace("    service: cognito-idp\n", "");
    assert!(load(&without_service).is_err());
    let unknown = text.replace(
        "    service: cognito-idp\n",
        "    service: cognito-idp\n    unsigned_payload: true\n",
    );
    let problems = load(&unknown).unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("unsigned_payload")),
        "{problems:?}"
    );
}

/// Runs boto3 in the peers python; its stdout, trimmed.
fn boto3(python: &str, script: &str, args: &[&str]) -> String {
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run the peers python");
    assert!(
        output.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Creates a user pool in `argv[2]` with the users named in `argv[3]` (comma separated).
const SEED: &str = r#"
import sys, boto3
endpoint, region, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
idp = boto3.client("cognito-idp", endpoint_url=endpoint, region_name=region,
                   aws_access_key_id="AKIDSEED", aws_secret_access_key="seed")
pool = idp.create_user_pool(PoolName="switchyard-sigv4")["UserPool"]["Id"]
for name in names:
    idp.admin_create_user(UserPoolId=pool, Username=name,
                          UserAttributes=[{"Name": "email", "Value": name + "@example.test"}])
print(pool)
"#;

const DROP: &str = r#"
import sys, boto3
idp = boto3.client("cognito-idp", endpoint_url=sys.argv[1], region_name=sys.argv[2],
                   aws_access_key_id="AKIDSEED", aws_secret_access_key="seed")
idp.delete_user_pool(UserPoolId=sys.argv[3])
"#;

#[tokio::test]
async fn a_user_pool_syncs_through_moto_with_every_page_signed_for_its_region() {
    let Some(moto) = required_test_server("SWITCHYARD_TEST_MOTO_URL") else {
        return;
    };
    let Some(python) = required_test_server("SWITCHYARD_TEST_PEERS_PYTHON") else {
        return;
    };
    let names = ["ada", "grace", "hedy", "katherine", "margaret"];
    let region = "eu-west-1";
    let pool = boto3(&python, SEED, &[&moto, region, &names.join(",")]);

    let manifest = load(&manifest_text()).unwrap();
    let connector = ManifestConnector::new(manifest.clone()).unwrap();
    let store = Store::start("aws-cognito-users").await;
    let broker = Arc::new(TokenBroker::new(
        GuardedClient::builder(SsrfPolicy::strict())
            .build()
            .unwrap(),
    ));
    let keys = fields(json!({
        "access_key_id": "AKIDSWITCHYARDTEST",
        "secret_access_key": "sigv4-test-secret-access-key",
        "session_token": "sigv4-test-session-token",
    }));
    let connect = |config: Value| {
        let connection = store.context(config, None);
        let held = HeldCredential::new(
            Arc::clone(&broker),
            &manifest,
            None,
            &connection,
            keys.clone(),
        )
        .unwrap();
        (connection, provider_client(held))
    };

    let (connection, calls) =
        connect(json!({"endpoint": moto, "region": region, "user_pool_id": pool}));
    let report = connector
        .test_connection(CallContext {
            calls: &calls,
            connection: &connection,
        })
        .await
        .unwrap();
    assert!(report.success, "{report:?}");
    let counts = store
        .sync(&connector, &calls, &connection, "users")
        .await
        .unwrap();
    assert_eq!(counts.added, 5, "{counts:?}");
    let stored = store.stored("users").await;
    let usernames: Vec<&str> = stored.keys().map(String::as_str).collect();
    assert_eq!(usernames, names);
    let ada = &stored["ada"];
    assert_eq!(ada["Attributes"][0]["Value"], "ada@example.test", "{ada}");

    // Signed for the default region instead, moto looks for the pool in us-east-1: the
    // region the manifest's template renders is the one the requests are signed for.
    let (elsewhere, calls) = connect(json!({"endpoint": moto, "user_pool_id": pool}));
    let refused = store.sync(&connector, &calls, &elsewhere, "users").await;
    assert!(refused.is_err(), "{refused:?}");

    boto3(&python, DROP, &[&moto, region, &pool]);
}
