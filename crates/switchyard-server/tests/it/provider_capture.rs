//! Provider call captures end to end: a call through the provider stack with capture enabled
//! lands in the blob store sealed with the tenant's data key, reads back redacted, and is
//! neither readable by another tenant nor holds the injected credential, in plaintext or
//! sealed.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use switchyard_audit::{AuditLog, AuditOptions};
use switchyard_blob::{BlobConfig, BlobStore};
use switchyard_core::TenantId;
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, BreakerConfig, BreakerRegistry, CallScope, CaptureSink,
    CaptureSpec, Credential, CredentialError, CredentialSource, GuardedClient, ProviderClient,
    ProviderPolicy, ProviderRequest, Rate, RateLimiter, SsrfPolicy, SystemClock,
};
use switchyard_server::provider_capture::{self, BlobCaptureSink, CaptureError};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_vault::{AuditedVault, KekConfig, Vault, VaultOptions, storage_for};

const CANARY: &str = "canary-capture-5d1e-secret";

struct Bearer;

impl CredentialSource for Bearer {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::Bearer(SecretString::from(CANARY))))
    }
}

async fn provider() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/api/v1/users/{id}",
        axum::routing::get(|| async {
            axum::Json(
                json!({"id": "00u1", "profile": {"email": "ada@example.com", "login": "ada"}}),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn captures_are_sealed_per_tenant_and_read_back_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("capture.db").display());
    let database = Database::connect(&url, &DatabaseOptions::default())
        .await
        .unwrap();
    database.migrate().await.unwrap();
    let kek = KekConfig::KeyFile {
        path: dir.path().join("master.key"),
    };
    let vault = Vault::open(storage_for(&database), &kek, VaultOptions::default())
        .await
        .unwrap();
    let (audit, _writer) = AuditLog::start(&database, AuditOptions::default());
    let vault = AuditedVault::new(Arc::new(vault), audit);
    let blobs = BlobStore::open(&BlobConfig::default(), dir.path())
        .await
        .unwrap();

    let (sink, writer) = BlobCaptureSink::spawn(blobs.clone(), vault.clone(), 16);
    let ssrf = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    let client = ProviderClient::new(
        GuardedClient::builder(ssrf).build().unwrap(),
        Arc::new(RateLimiter::in_memory(Rate::per_second(
            std::num::NonZeroU32::new(100).unwrap(),
        ))),
        Arc::new(AdaptiveLimits::new(
            AdaptiveConfig::default(),
            Arc::new(SystemClock),
        )),
        Arc::new(BreakerRegistry::new(
            BreakerConfig::default(),
            Arc::new(SystemClock),
        )),
        Bearer,
    )
    .with_capture_sink(Arc::new(sink) as Arc<dyn CaptureSink>);
    let policy = ProviderPolicy {
        capture: CaptureSpec {
            enabled: true,
            redact_fields: vec!["/profile/email".to_owned()],
            ..CaptureSpec::default()
        },
        ..ProviderPolicy::default()
    };
    let tenant = TenantId::generate();
    let scope = CallScope {
        tenant: tenant.to_string(),
        provider: "okta".to_owned(),
        connection: Some("con_1".to_owned()),
    };
    let addr = provider().await;
    let request = reqwest::Request::new(
        reqwest::Method::GET,
        format!("http://{addr}/api/v1/users/00u1").parse().unwrap(),
    );
    let call = ProviderRequest::new(scope, request, "/api/v1/users/{id}");
    client.call(&policy, call).await.unwrap();
    // Dropping the last sink ends the writer once the queue is drained.
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .unwrap()
        .unwrap();

    let mut files = Vec::new();
    files_under(dir.path(), &mut files);
    let captures: Vec<_> = files
        .iter()
        .filter(|p| {
            p.components()
                .any(|c| c.as_os_str() == provider_capture::BLOB_KIND)
        })
        .collect();
    assert_eq!(captures.len(), 1, "{files:?}");
    let sealed = std::fs::read(captures[0]).unwrap();
    for plaintext in [CANARY.as_bytes(), b"ada@example.com", b"/api/v1/users"] {
        assert!(
            !sealed.windows(plaintext.len()).any(|w| w == plaintext),
            "sealed at rest"
        );
    }
    // The key is the path's last six segments: tenant/kind/yyyy/mm/dd/id.
    let segments: Vec<_> = captures[0]
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let key = segments[segments.len() - 6..].join("/");

    let capture = provider_capture::read(&blobs, &vault, tenant, &key)
        .await
        .unwrap();
    assert_eq!(capture["route"], "/api/v1/users/{id}");
    assert_eq!(capture["response"]["status"], 200);
    assert_eq!(
        capture["response"]["body"]["value"]["profile"]["email"],
        "[redacted]"
    );
    assert_eq!(
        capture["response"]["body"]["value"]["profile"]["login"],
        "ada"
    );
    assert!(!capture.to_string().contains(CANARY));

    let other = TenantId::generate();
    let err = provider_capture::read(&blobs, &vault, other, &key)
        .await
        .unwrap_err();
    assert!(matches!(err, CaptureError::NotFound), "{err:?}");
}
