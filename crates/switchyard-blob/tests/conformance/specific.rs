//! Behaviour particular to one backend: the local file layout, configuration errors, prefixes.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use secrecy::SecretString;
use switchyard_blob::{
    AzureBlobConfig, BlobConfig, BlobKey, BlobStore, LocalBlobConfig, S3BlobConfig,
};
use time::macros::date;

use crate::harness;

fn key(tenant: &str, day: time::Date, id: &str) -> BlobKey {
    BlobKey::for_date(tenant, "inbound", day, id).expect("key")
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            out.push(rel);
            if path.is_dir() {
                walk(&path, root, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn local_layout_survives_reopen_and_leaves_no_staging_files() {
    let h = harness::local().await.expect("local");
    let k = key("ten_1", date!(2024 - 03 - 15), "evt_1");
    h.store
        .put(&k, Bytes::from_static(b"\x00\x01"))
        .await
        .expect("put");
    let root = harness::blobs_dir(h.dir.path());
    assert_eq!(
        std::fs::read(root.join("ten_1/inbound/2024/03/15/evt_1")).expect("file"),
        b"\x00\x01"
    );
    assert!(
        files_under(&root).iter().all(|f| !f.contains('#')),
        "{:?}",
        files_under(&root)
    );

    // A new process (another store on the same directory) reads what the first wrote.
    drop(h.store);
    let reopened = BlobStore::open(&BlobConfig::default(), h.dir.path())
        .await
        .expect("reopen");
    assert_eq!(
        reopened.get(&k).await.expect("get"),
        Bytes::from_static(b"\x00\x01")
    );
}

#[tokio::test]
async fn local_retention_prunes_empty_days_and_stale_staging_files() {
    let h = harness::local().await.expect("local");
    let root = harness::blobs_dir(h.dir.path());
    let old = key("ten_1", date!(2024 - 01 - 10), "old");
    let new = key("ten_1", date!(2024 - 03 - 20), "new");
    h.store
        .put(&old, Bytes::from_static(b"o"))
        .await
        .expect("put");
    h.store
        .put(&new, Bytes::from_static(b"n"))
        .await
        .expect("put");
    // What a put interrupted by a crash two hours ago leaves behind.
    let staging = root.join("ten_1/inbound/2024/01/10/crashed#1");
    std::fs::write(&staging, b"partial").expect("staging");
    std::fs::File::options()
        .write(true)
        .open(&staging)
        .expect("open")
        .set_modified(SystemTime::now() - Duration::from_secs(7200))
        .expect("mtime");

    assert_eq!(
        h.store
            .purge_older_than("inbound", date!(2024 - 03 - 01))
            .await
            .expect("purge"),
        1
    );
    assert_eq!(
        files_under(&root.join("ten_1/inbound")),
        ["2024", "2024/03", "2024/03/20", "2024/03/20/new"]
    );

    assert_eq!(
        h.store.delete_tenant("ten_1").await.expect("delete tenant"),
        1
    );
    assert!(
        !root.join("ten_1").try_exists().expect("stat"),
        "tenant directory removed"
    );
    // And the tenant can write again.
    h.store
        .put(&new, Bytes::from_static(b"n"))
        .await
        .expect("put after delete");
}

#[tokio::test]
async fn local_path_setting_is_used() {
    let dir = tempfile::tempdir().expect("dir");
    let custom = dir.path().join("elsewhere/blobs");
    let config = BlobConfig::Local(LocalBlobConfig {
        path: Some(custom.clone()),
    });
    let store = BlobStore::open(&config, dir.path()).await.expect("open");
    store
        .put(
            &key("ten_1", date!(2024 - 03 - 15), "x"),
            Bytes::from_static(b"x"),
        )
        .await
        .expect("put");
    assert!(
        custom
            .join("ten_1/inbound/2024/03/15/x")
            .try_exists()
            .expect("stat")
    );
    assert_eq!(store.backend(), "local");
}

#[tokio::test]
async fn s3_missing_bucket_fails_check_without_leaking_secrets() {
    let Some(url) = switchyard_test_support::required_test_server("SWITCHYARD_TEST_MOTO_URL")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let config = harness::s3_config(&url, "sy-no-such-bucket");
    assert!(!format!("{config:?}").contains("testing-secret-value"));
    let store = BlobStore::open(&config, dir.path()).await.expect("open");
    assert!(!format!("{store:?}").contains("testing-secret-value"));
    let error = store.check().await.expect_err("missing bucket");
    assert_eq!(error.code(), "blob_unavailable", "{error:?}");
    let put_error = store
        .put(
            &key("ten_1", date!(2024 - 03 - 15), "x"),
            Bytes::from_static(b"x"),
        )
        .await
        .expect_err("put into a missing bucket");
    for text in [
        format!("{error} {error:?}"),
        format!("{put_error} {put_error:?}"),
    ] {
        assert!(!text.contains("testing-secret-value"), "{text}");
    }
}

#[tokio::test]
async fn s3_prefixes_share_a_bucket_without_seeing_each_other() {
    let Some(url) = switchyard_test_support::required_test_server("SWITCHYARD_TEST_MOTO_URL")
    else {
        return;
    };
    // Two installations on one bucket, each under its own prefix.
    let bucket = harness::create_bucket(&url).await;
    let dir = tempfile::tempdir().expect("dir");
    let a = open_s3_with_prefix(&url, &bucket, "install-a", dir.path()).await;
    let b = open_s3_with_prefix(&url, &bucket, "install-b", dir.path()).await;
    let k = key("ten_1", date!(2024 - 01 - 01), "x");
    a.put(&k, Bytes::from_static(b"a")).await.expect("put");
    assert!(b.get(&k).await.is_err());
    assert_eq!(
        b.purge_older_than("inbound", date!(2030 - 01 - 01))
            .await
            .expect("purge"),
        0
    );
    assert_eq!(b.delete_tenant("ten_1").await.expect("delete tenant"), 0);
    assert_eq!(a.get(&k).await.expect("a kept"), Bytes::from_static(b"a"));
}

async fn open_s3_with_prefix(
    url: &str,
    bucket: &str,
    prefix: &str,
    dir: &std::path::Path,
) -> BlobStore {
    let BlobConfig::S3(base) = harness::s3_config(url, bucket) else {
        unreachable!()
    };
    let config = BlobConfig::S3(S3BlobConfig {
        prefix: Some(prefix.to_owned()),
        ..base
    });
    BlobStore::open(&config, dir).await.expect("open")
}

#[tokio::test]
async fn azure_missing_container_and_wrong_key_fail_check() {
    let Some(url) = switchyard_test_support::required_test_server("SWITCHYARD_TEST_AZURITE_URL")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let missing = BlobStore::open(
        &harness::azure_config(&url, "sy-no-such-container"),
        dir.path(),
    )
    .await
    .expect("open");
    assert_eq!(
        missing.check().await.expect_err("missing").code(),
        "blob_unavailable"
    );

    // A wrong (but well-formed) key for an existing account is refused, and never echoed.
    let wrong_key = "d3Jvbmcta2V5LXZhbHVlLXRoYXQtaXMtbG9uZy1lbm91Z2g=";
    let config = BlobConfig::Azure(AzureBlobConfig {
        access_key: Some(SecretString::from(wrong_key)),
        ..harness_azure_base(&url)
    });
    let store = BlobStore::open(&config, dir.path()).await.expect("open");
    let error = store.check().await.expect_err("wrong key");
    assert_eq!(error.code(), "blob_unauthorized", "{error:?}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains(wrong_key), "{text}");

    let invalid = BlobConfig::Azure(AzureBlobConfig {
        access_key: Some(SecretString::from("not base64 secret!")),
        ..harness_azure_base(&url)
    });
    let error = BlobStore::open(&invalid, dir.path())
        .await
        .expect_err("invalid key");
    assert_eq!(error.code(), "blob_config");
    assert!(!format!("{error} {error:?}").contains("secret!"));
}

fn harness_azure_base(url: &str) -> AzureBlobConfig {
    match harness::azure_config(url, "sy-unused") {
        BlobConfig::Azure(config) => config,
        _ => unreachable!(),
    }
}
