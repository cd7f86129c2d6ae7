//! The provider stack with the server's parts: credentials resolved from the vault per
//! attempt and injected where the binding says, and captures sealed with the tenant's data key
//! in the blob store, read back redacted, unreadable to another tenant and free of the
//! credential, in plaintext or sealed.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use switchyard_audit::{Actor, AuditLog, AuditOptions};
use switchyard_blob::{BlobConfig, BlobStore};
use switchyard_core::{ConnectionId, TenantId};
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, BreakerConfig, BreakerRegistry, CallScope, CaptureSink,
    CaptureSpec, Credential, CredentialError, CredentialSource, GuardedClient, InMemoryBackend,
    ProviderClient, ProviderPolicy, ProviderRequest, Rate, RateLimiter, SsrfPolicy, SystemClock,
};
use switchyard_server::provider_capture::{self, BlobCaptureSink, CaptureError, CaptureIndex};
use switchyard_server::provider_credentials::{CredentialBinding, Placement, VaultCredentials};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_vault::{AuditContext, AuditedVault, KekConfig, Vault, VaultOptions, storage_for};

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

/// A vault on SQLite with a key-file KEK, and a local blob store, in one temporary folder.
async fn parts() -> (tempfile::TempDir, AuditedVault, BlobStore, Database) {
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

    (dir, vault, blobs, database)
}

fn client<C: CredentialSource>(credentials: C) -> ProviderClient<InMemoryBackend, C> {
    let ssrf = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    ProviderClient::new(
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
        credentials,
    )
}

#[tokio::test]
async fn captures_are_sealed_per_tenant_and_read_back_redacted() {
    let (dir, vault, blobs, database) = parts().await;
    let index = CaptureIndex::new(database);
    let (sink, writer) = BlobCaptureSink::spawn(blobs.clone(), vault.clone(), index.clone(), 16);
    let client = client(Bearer).with_capture_sink(Arc::new(sink) as Arc<dyn CaptureSink>);
    let policy = ProviderPolicy {
        capture: CaptureSpec {
            enabled: true,
            redact_fields: vec!["/profile/email".to_owned()],
            ..CaptureSpec::default()
        },
        ..ProviderPolicy::default()
    };
    let tenant = TenantId::generate();
    let connection = ConnectionId::generate();
    let scope = CallScope {
        tenant: tenant.to_string(),
        provider: "okta".to_owned(),
        connection: Some(connection.to_string()),
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
    // The index lists it under its connection, with what was called, and names that blob.
    let listed = index.list(&tenant, &connection, None, 10).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let summary = &listed.items[0];
    assert_eq!(
        (
            summary.method.as_str(),
            summary.route.as_str(),
            summary.status
        ),
        ("GET", "/api/v1/users/{id}", Some(200))
    );
    let (_, indexed_key) = index
        .get(&tenant, &connection, &summary.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(indexed_key, key);
    let other = TenantId::generate();
    assert!(
        index
            .list(&other, &connection, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        index
            .get(&other, &connection, &summary.id)
            .await
            .unwrap()
            .is_none()
    );

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

    let err = provider_capture::read(&blobs, &vault, other, &key)
        .await
        .unwrap_err();
    assert!(matches!(err, CaptureError::NotFound), "{err:?}");
}

/// Records what credential each call arrived with.
async fn recording_provider() -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/api/v1/users",
        axum::routing::get(
            move |headers: axum::http::HeaderMap, query: axum::extract::RawQuery| {
                let record = Arc::clone(&record);
                async move {
                    let auth = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned());
                    record
                        .lock()
                        .unwrap()
                        .push(auth.or(query.0).unwrap_or_default());
                    "[]"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

#[tokio::test]
async fn credentials_come_from_the_vault_per_attempt_and_stay_in_their_tenant() {
    let (_dir, vault, _blobs, _database) = parts().await;
    let (tenant, other) = (TenantId::generate(), TenantId::generate());
    let context = AuditContext::new(Actor::PlatformAdmin);
    let token = vault
        .put(&context, tenant, "okta/api-token", CANARY.as_bytes())
        .await
        .unwrap();
    let others = vault
        .put(&context, other, "okta/api-token", b"other-tenant-token")
        .await
        .unwrap();
    let credentials = VaultCredentials::new(vault.clone());
    let okta = Placement::Header {
        name: reqwest::header::AUTHORIZATION,
        prefix: "SSWS ".to_owned(),
    };
    credentials
        .bind(
            &tenant.to_string(),
            "con_okta",
            CredentialBinding {
                secret: token.reference.clone(),
                placement: okta.clone(),
            },
        )
        .unwrap();
    credentials
        .bind(
            &tenant.to_string(),
            "con_query",
            CredentialBinding {
                secret: token.reference.clone(),
                placement: Placement::Query {
                    name: "api_key".to_owned(),
                },
            },
        )
        .unwrap();
    // Another tenant's secret cannot be bound to this tenant's connection.
    let err = credentials
        .bind(
            &tenant.to_string(),
            "con_stolen",
            CredentialBinding {
                secret: others.reference,
                placement: okta,
            },
        )
        .unwrap_err();
    assert!(!err.to_string().contains("other-tenant-token"));

    let client = client(credentials);
    let (addr, seen) = recording_provider().await;
    let scope = |tenant: TenantId, connection: &str| CallScope {
        tenant: tenant.to_string(),
        provider: "okta".to_owned(),
        connection: Some(connection.to_owned()),
    };
    let get = |scope: CallScope| {
        let url = format!("http://{addr}/api/v1/users").parse().unwrap();
        ProviderRequest::new(
            scope,
            reqwest::Request::new(reqwest::Method::GET, url),
            "/api/v1/users",
        )
    };
    let policy = ProviderPolicy::default();
    client
        .call(&policy, get(scope(tenant, "con_okta")))
        .await
        .unwrap();
    client
        .call(&policy, get(scope(tenant, "con_query")))
        .await
        .unwrap();
    // The other tenant's call with the same connection id gets nothing of this tenant's.
    client
        .call(&policy, get(scope(other, "con_okta")))
        .await
        .unwrap();
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [
            format!("SSWS {CANARY}"),
            format!("api_key={CANARY}"),
            String::new()
        ]
    );
}
