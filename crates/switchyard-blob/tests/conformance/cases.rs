//! The behaviour every backend must have. Each case gets a fresh, empty store.

use bytes::Bytes;
use switchyard_blob::{BlobError, BlobKey, BlobStore};
use time::Date;
use time::macros::date;

fn key(tenant: &str, kind: &str, day: Date, id: &str) -> BlobKey {
    BlobKey::for_date(tenant, kind, day, id).expect("valid key")
}

const DAY: Date = date!(2024 - 03 - 15);

/// Deterministic pseudo-random bytes (xorshift), full of invalid UTF-8.
fn noise(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

async fn exists(store: &BlobStore, key: &BlobKey) -> bool {
    match store.get(key).await {
        Ok(_) => true,
        Err(BlobError::NotFound { .. }) => false,
        Err(e) => panic!("get {key}: {e:?}"),
    }
}

pub async fn round_trip_binary(store: &BlobStore) {
    let body = Bytes::from_static(b"\x00\xff\xfe{\"a\":1}\xc3\x28\x80\n\r\x00");
    assert!(std::str::from_utf8(&body).is_err());
    let k = key("ten_01", "inbound", DAY, "evt_01");
    store.put(&k, body.clone()).await.expect("put");
    assert_eq!(store.get(&k).await.expect("get"), body);

    // The empty body is a body too.
    let empty = key("ten_01", "inbound", DAY, "evt_empty");
    store.put(&empty, Bytes::new()).await.expect("put empty");
    assert_eq!(store.get(&empty).await.expect("get empty"), Bytes::new());
}

pub async fn overwrite(store: &BlobStore) {
    let k = key("ten_01", "delivery-response", DAY, "dlv_01");
    store
        .put(&k, Bytes::from_static(b"first, and longer"))
        .await
        .expect("put");
    store
        .put(&k, Bytes::from_static(b"second"))
        .await
        .expect("overwrite");
    assert_eq!(
        store.get(&k).await.expect("get"),
        Bytes::from_static(b"second")
    );
}

pub async fn missing_is_not_found(store: &BlobStore) {
    let k = key("ten_01", "inbound", DAY, "nothing");
    let error = store.get(&k).await.expect_err("missing");
    assert!(
        matches!(&error, BlobError::NotFound { key } if *key == k.to_string()),
        "{error:?}"
    );
    assert_eq!(error.code(), "blob_not_found");
    assert!(!error.is_transient());
    // A missing tenant prefix is just as missing.
    let other = key("ten_never", "inbound", DAY, "nothing");
    assert!(matches!(
        store.get(&other).await,
        Err(BlobError::NotFound { .. })
    ));
}

pub async fn delete_is_idempotent(store: &BlobStore) {
    let k = key("ten_01", "inbound", DAY, "evt_del");
    store
        .delete(&k)
        .await
        .expect("delete of a key never written");
    store.put(&k, Bytes::from_static(b"x")).await.expect("put");
    store.delete(&k).await.expect("delete");
    store.delete(&k).await.expect("delete again");
    assert!(!exists(store, &k).await);
}

pub async fn delete_tenant_isolation(store: &BlobStore) {
    // `ten_a` is a string prefix of `ten_ab`: deletion must work by path segment.
    let mut a = Vec::new();
    for (i, kind) in ["inbound", "delivery-response"].iter().enumerate() {
        for day in [date!(2023 - 12 - 31), DAY] {
            let k = key("ten_a", kind, day, &format!("id{i}"));
            store
                .put(&k, Bytes::from_static(b"a"))
                .await
                .expect("put a");
            a.push(k);
        }
    }
    let ab = key("ten_ab", "inbound", DAY, "id0");
    let b = key("ten_b", "inbound", DAY, "id0");
    store
        .put(&ab, Bytes::from_static(b"ab"))
        .await
        .expect("put ab");
    store
        .put(&b, Bytes::from_static(b"b"))
        .await
        .expect("put b");

    assert_eq!(
        store.delete_tenant("ten_a").await.expect("delete tenant"),
        a.len() as u64
    );
    for k in &a {
        assert!(!exists(store, k).await, "{k} survived");
    }
    assert_eq!(
        store.get(&ab).await.expect("ab kept"),
        Bytes::from_static(b"ab")
    );
    assert_eq!(
        store.get(&b).await.expect("b kept"),
        Bytes::from_static(b"b")
    );
    assert_eq!(store.delete_tenant("ten_a").await.expect("again"), 0);
    assert_eq!(
        store.delete_tenant("ten_unknown").await.expect("unknown"),
        0
    );

    // The tenant can write again afterwards.
    store
        .put(&a[0], Bytes::from_static(b"again"))
        .await
        .expect("put after delete");
    assert!(exists(store, &a[0]).await);
}

pub async fn purge_older_than(store: &BlobStore) {
    let cutoff = date!(2024 - 03 - 15);
    let old = [
        date!(2023 - 12 - 31),
        date!(2024 - 02 - 10),
        date!(2024 - 03 - 01),
        date!(2024 - 03 - 14),
    ];
    let kept = [
        cutoff,
        date!(2024 - 03 - 16),
        date!(2024 - 04 - 01),
        date!(2025 - 01 - 01),
    ];
    for tenant in ["ten_1", "ten_2"] {
        for (i, day) in old.iter().chain(&kept).enumerate() {
            for kind in ["inbound", "delivery-response"] {
                let k = key(tenant, kind, *day, &format!("id{i}"));
                store.put(&k, Bytes::from_static(b"p")).await.expect("put");
            }
        }
    }

    let removed = store
        .purge_older_than("inbound", cutoff)
        .await
        .expect("purge");
    assert_eq!(removed, 2 * old.len() as u64);
    for tenant in ["ten_1", "ten_2"] {
        for (i, day) in old.iter().chain(&kept).enumerate() {
            let inbound = key(tenant, "inbound", *day, &format!("id{i}"));
            assert_eq!(exists(store, &inbound).await, *day >= cutoff, "{inbound}");
            let other = key(tenant, "delivery-response", *day, &format!("id{i}"));
            assert!(exists(store, &other).await, "{other} is another kind");
        }
    }
    assert_eq!(
        store
            .purge_older_than("inbound", cutoff)
            .await
            .expect("again"),
        0
    );
    assert_eq!(
        store
            .purge_older_than("never-written", cutoff)
            .await
            .expect("none"),
        0
    );

    // Everything of the other kind before a later cutoff.
    let removed = store
        .purge_older_than("delivery-response", date!(2030 - 01 - 01))
        .await
        .expect("purge all");
    assert_eq!(removed, 2 * (old.len() + kept.len()) as u64);
}

pub async fn key_validation_rejects_traversal(store: &BlobStore) {
    for bad in [
        "../ten_b/inbound/2024/03/15/id",
        "ten_a/../ten_b/2024/03/15/id",
        "ten_a/inbound/2024/03/15/../../x",
        "ten_a/inbound/2024/03/15/a/b",
        "ten_a//inbound/2024/03/15/id",
        "ten_a/inbound/2024/03/15/",
    ] {
        let error = bad.parse::<BlobKey>().expect_err(bad);
        assert_eq!(error.code(), "blob_invalid_key");
    }
    for tenant in ["", ".", "..", "ten_a/inbound", "ten_a/..", "*"] {
        assert!(matches!(
            store.delete_tenant(tenant).await,
            Err(BlobError::InvalidKey(_))
        ));
    }
    assert!(matches!(
        store.purge_older_than("../inbound", DAY).await,
        Err(BlobError::InvalidKey(_))
    ));
    // A parsed key is usable and formats back to itself.
    let text = "ten_01/inbound/2024/03/15/evt_01JABC";
    let parsed: BlobKey = text.parse().expect("parse");
    store
        .put(&parsed, Bytes::from_static(b"k"))
        .await
        .expect("put parsed");
    assert_eq!(parsed.to_string(), text);
    assert!(exists(store, &key("ten_01", "inbound", DAY, "evt_01JABC")).await);
}

pub async fn large_blob(store: &BlobStore) {
    let body = noise(5 * 1024 * 1024 + 17, 42);
    let k = key("ten_01", "inbound", DAY, "large");
    store.put(&k, body.clone()).await.expect("put large");
    let read = store.get(&k).await.expect("get large");
    assert_eq!(read.len(), body.len());
    assert!(read == body, "large blob differs");
}

pub async fn concurrent_puts(store: &BlobStore) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32u64 {
        let store = store.clone();
        tasks.spawn(async move {
            // Several days so directories are created concurrently too.
            let day = date!(2024 - 03 - 01).saturating_add(time::Duration::days((i % 4) as i64));
            let k = key("ten_01", "inbound", day, &format!("evt_{i}"));
            store.put(&k, noise(4096, i + 1)).await.expect("put");
            // And everyone overwrites one shared key.
            let shared = key("ten_01", "inbound", DAY, "shared");
            store
                .put(&shared, noise(1024, 1000 + i))
                .await
                .expect("put shared");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
    for i in 0..32u64 {
        let day = date!(2024 - 03 - 01).saturating_add(time::Duration::days((i % 4) as i64));
        let k = key("ten_01", "inbound", day, &format!("evt_{i}"));
        assert_eq!(store.get(&k).await.expect("get"), noise(4096, i + 1));
    }
    let shared = store
        .get(&key("ten_01", "inbound", DAY, "shared"))
        .await
        .expect("shared");
    assert!(
        (0..32u64).any(|i| shared == noise(1024, 1000 + i)),
        "shared is one whole write"
    );
}

pub async fn check_is_ready(store: &BlobStore) {
    store.check().await.expect("check on an empty store");
    store
        .put(
            &key("ten_01", "inbound", DAY, "x"),
            Bytes::from_static(b"x"),
        )
        .await
        .expect("put");
    store.check().await.expect("check on a non-empty store");
}
