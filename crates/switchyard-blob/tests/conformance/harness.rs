//! One fresh, empty store per test on each backend.

use std::path::Path;

use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use switchyard_blob::{AzureBlobConfig, BlobConfig, BlobStore, LocalBlobConfig, S3BlobConfig};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::format_description;

/// Azurite's documented development key.
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Harness {
    pub store: BlobStore,
    /// The local backend's data directory (kept alive for the test).
    pub dir: TempDir,
}

fn unique_name() -> String {
    format!("sy-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub async fn local() -> Option<Harness> {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = BlobConfig::Local(LocalBlobConfig::default());
    let store = BlobStore::open(&config, dir.path())
        .await
        .expect("open local");
    Some(Harness { store, dir })
}

pub fn s3_config(url: &str, bucket: &str) -> BlobConfig {
    BlobConfig::S3(S3BlobConfig {
        bucket: bucket.to_owned(),
        region: Some("us-east-1".to_owned()),
        endpoint_url: Some(url.trim_end_matches('/').to_owned()),
        virtual_hosted_style: false,
        prefix: None,
        access_key_id: Some("testing".to_owned()),
        secret_access_key: Some(SecretString::from("testing-secret-value")),
        session_token: None,
    })
}

pub async fn s3() -> Option<Harness> {
    let url = switchyard_test_support::required_test_server("SWITCHYARD_TEST_MOTO_URL")?;
    let bucket = create_bucket(&url).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = BlobStore::open(&s3_config(&url, &bucket), dir.path())
        .await
        .expect("open s3");
    Some(Harness { store, dir })
}

/// A fresh bucket. moto routes by the SigV4 credential scope and does not check the signature.
pub async fn create_bucket(url: &str) -> String {
    let bucket = unique_name();
    let response = reqwest::Client::new()
        .put(format!("{}/{bucket}", url.trim_end_matches('/')))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, \
             SignedHeaders=host, Signature=00",
        )
        .send()
        .await
        .expect("create bucket");
    assert!(
        response.status().is_success(),
        "create bucket: {}",
        response.status()
    );
    bucket
}

pub fn azure_config(url: &str, container: &str) -> BlobConfig {
    BlobConfig::Azure(AzureBlobConfig {
        account: None,
        container: container.to_owned(),
        access_key: None,
        endpoint_url: Some(url.trim_end_matches('/').to_owned()),
        use_emulator: true,
        prefix: None,
    })
}

pub async fn azure() -> Option<Harness> {
    let url = switchyard_test_support::required_test_server("SWITCHYARD_TEST_AZURITE_URL")?;
    let container = unique_name();
    create_container(url.trim_end_matches('/'), &container).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = BlobStore::open(&azure_config(&url, &container), dir.path())
        .await
        .expect("open azure");
    Some(Harness { store, dir })
}

/// `Create Container` signed with Azurite's shared key (object_store cannot create one).
async fn create_container(account_url: &str, container: &str) {
    let parsed = reqwest::Url::parse(account_url).expect("azurite url");
    let account = parsed
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty())
        .expect("azurite url ends with the account, e.g. /devstoreaccount1")
        .to_owned();
    let date = OffsetDateTime::now_utc()
        .format(format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .expect("date");
    let version = "2021-08-06";
    let resource = format!("/{account}{}/{container}\nrestype:container", parsed.path());
    let to_sign =
        format!("PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}");
    let key = base64_decode(AZURITE_KEY);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac key");
    mac.update(to_sign.as_bytes());
    let signature = base64_encode(&mac.finalize().into_bytes());
    let response = reqwest::Client::new()
        .put(format!("{account_url}/{container}?restype=container"))
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("authorization", format!("SharedKey {account}:{signature}"))
        .send()
        .await
        .expect("create container");
    assert!(
        response.status().is_success(),
        "create container: {}",
        response.status()
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn blobs_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("blobs")
}
