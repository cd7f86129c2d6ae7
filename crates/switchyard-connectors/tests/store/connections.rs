//! Connection CRUD: conflicts on name and version, keyset paging, and deletion with
//! everything the connection owns.

use serde_json::json;
use switchyard_connectors::store::{
    ConnectionStatus, ConnectionUpdate, CredentialRef, NewConnection, StoreError,
};
use switchyard_core::{ConnectionId, RunId, TenantId};
use switchyard_test_support::backend_tests;

use crate::support::{Fixture, page, record};

fn credential(version: u32) -> CredentialRef {
    CredentialRef {
        name: "conn-github-token".to_owned(),
        version,
        fingerprint: format!("sha256:{version:04}"),
        mode: "bearer".to_owned(),
        expires_at: None,
        refreshed_at: None,
    }
}

backend_tests! { Fixture;
    async fn creates_reads_lists_and_updates(fx) {
        let tenant = TenantId::generate();
        let mut new = NewConnection::new(tenant, "github", "acme org");
        new.config = json!({"org": "acme", "include_archived": false});
        new.base_url = Some("https://github.acme.example/api/v3".to_owned());
        new.credential = Some(credential(1));
        let created = fx.connections.create(new.clone()).await.unwrap();
        assert_eq!(created.id, new.id);
        assert_eq!(created.tenant_id, tenant);
        assert_eq!(created.provider, "github");
        assert_eq!(created.config, new.config);
        assert_eq!(created.credential, Some(credential(1)));
        assert_eq!(created.status, ConnectionStatus::Active);
        assert_eq!(created.version, 1);
        assert_eq!(created.created_at, created.updated_at);
        assert_eq!(
            fx.connections.get(&tenant, &created.id).await.unwrap(),
            Some(created.clone())
        );

        let updated = fx
            .connections
            .update(&tenant, &created.id, ConnectionUpdate {
                name: Some("acme".to_owned()),
                config: Some(json!({"org": "acme-inc"})),
                base_url: Some(None),
                credential: Some(Some(credential(2))),
                status: Some(ConnectionStatus::Disabled),
                credential_status: None,
                expected_version: Some(1),
            })
            .await
            .unwrap()
            .expect("the connection exists");
        assert_eq!(updated.name, "acme");
        assert_eq!(updated.config, json!({"org": "acme-inc"}));
        assert_eq!(updated.base_url, None);
        assert_eq!(updated.credential, Some(credential(2)));
        assert_eq!(updated.status, ConnectionStatus::Disabled);
        assert_eq!(updated.version, 2);
        assert_eq!(updated.created_at, created.created_at);
        assert!(updated.updated_at >= created.updated_at);

        // An empty update still bumps the version and keeps every field.
        let touched = fx
            .connections
            .update(&tenant, &created.id, ConnectionUpdate::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(touched.version, 3);
        assert_eq!((touched.name, touched.credential), (updated.name, updated.credential));
        let cleared = fx
            .connections
            .update(&tenant, &created.id, ConnectionUpdate {
                credential: Some(None),
                ..ConnectionUpdate::default()
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cleared.credential, None);

        assert!(fx
            .connections
            .update(&tenant, &ConnectionId::generate(), ConnectionUpdate::default())
            .await
            .unwrap()
            .is_none());
    }

    async fn lists_in_id_order_with_keyset_paging(fx) {
        let tenant = TenantId::generate();
        let mut ids = Vec::new();
        for name in ["one", "two", "three"] {
            let created = fx
                .connections
                .create(NewConnection::new(tenant, "okta", name))
                .await
                .unwrap();
            ids.push(created.id);
        }
        let first = fx.connections.list(&tenant, None, 2).await.unwrap();
        let first_ids: Vec<ConnectionId> = first.items.iter().map(|c| c.id).collect();
        assert_eq!(first_ids, ids[..2]);
        assert_eq!(first.next_after, Some(ids[1]));
        let rest = fx.connections.list(&tenant, first.next_after.as_ref(), 2).await.unwrap();
        assert_eq!(rest.items.iter().map(|c| c.id).collect::<Vec<_>>(), ids[2..]);
        assert_eq!(rest.next_after, None);
    }

    async fn a_duplicate_name_is_a_conflict(fx) {
        let tenant = TenantId::generate();
        fx.connections.create(NewConnection::new(tenant, "github", "main")).await.unwrap();
        let error = fx
            .connections
            .create(NewConnection::new(tenant, "gitlab", "main"))
            .await
            .unwrap_err();
        assert!(matches!(&error, StoreError::NameTaken { name } if name == "main"), "{error:?}");
        assert!(error.is_conflict());

        // Names are unique per tenant only.
        fx.connections
            .create(NewConnection::new(TenantId::generate(), "github", "main"))
            .await
            .unwrap();

        // Renaming onto a taken name is refused too, and changes nothing.
        let other = fx
            .connections
            .create(NewConnection::new(tenant, "github", "other"))
            .await
            .unwrap();
        let error = fx
            .connections
            .update(&tenant, &other.id, ConnectionUpdate {
                name: Some("main".to_owned()),
                ..ConnectionUpdate::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::NameTaken { .. }), "{error:?}");
        assert_eq!(fx.connections.get(&tenant, &other.id).await.unwrap(), Some(other));
    }

    async fn a_stale_version_is_a_conflict(fx) {
        let (tenant, id) = fx.tenant_with_connection().await;
        let stale = ConnectionUpdate {
            status: Some(ConnectionStatus::Disabled),
            expected_version: Some(1),
            ..ConnectionUpdate::default()
        };
        fx.connections.update(&tenant, &id, stale.clone()).await.unwrap().unwrap();
        let error = fx.connections.update(&tenant, &id, stale.clone()).await.unwrap_err();
        assert!(
            matches!(error, StoreError::VersionMismatch { expected: 1, current: 2 }),
            "{error:?}"
        );
        assert!(error.is_conflict());
        assert_eq!(fx.connections.get(&tenant, &id).await.unwrap().unwrap().version, 2);
        // An unknown connection is not a conflict.
        assert!(fx
            .connections
            .update(&tenant, &ConnectionId::generate(), stale)
            .await
            .unwrap()
            .is_none());
    }

    async fn refuses_invalid_input(fx) {
        let tenant = TenantId::generate();
        let mut new = NewConnection::new(tenant, "github", "x");
        new.config = json!(["not", "an", "object"]);
        let error = fx.connections.create(new).await.unwrap_err();
        assert!(matches!(error, StoreError::Invalid { field: "config", .. }), "{error:?}");
        let error = fx
            .connections
            .create(NewConnection::new(tenant, "github", "  "))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Invalid { field: "name", .. }), "{error:?}");
        assert!(fx.connections.list(&tenant, None, 10).await.unwrap().items.is_empty());
    }

    async fn delete_removes_everything_the_connection_owns(fx) {
        let (tenant, id) = fx.tenant_with_connection().await;
        let mut new = NewConnection::new(tenant, "github", "kept");
        new.credential = Some(credential(4));
        let kept = fx.connections.create(new).await.unwrap().id;
        let run = RunId::generate();
        for connection in [&id, &kept] {
            for stream in ["repos", "teams"] {
                let mut write = page(&tenant, connection, stream, Some(&run));
                write.upserts = vec![record("1", json!({"n": 1})), record("2", json!({"n": 2}))];
                write.deletions = vec!["1".to_owned()];
                write.checkpoint = Some(json!({"since": "2026-01-01"}));
                fx.records.write_page(write).await.unwrap();
            }
        }
        fx.connections
            .update(&tenant, &kept, ConnectionUpdate::default())
            .await
            .unwrap();

        let deleted = fx.connections.delete(&tenant, &id).await.unwrap().expect("it existed");
        assert_eq!(deleted.id, id);
        for table in ["connections", "sync_streams", "records", "record_changes"] {
            assert_eq!(fx.rows(table, &tenant, &id).await, 0, "{table}");
        }
        // The other connection of the tenant keeps all of its rows.
        let expected = [("connections", 1), ("sync_streams", 2), ("records", 4), ("record_changes", 6)];
        for (table, count) in expected {
            assert_eq!(fx.rows(table, &tenant, &kept).await, count, "{table}");
        }

        // The caller gets the credential reference back, to destroy the secret.
        let deleted = fx.connections.delete(&tenant, &kept).await.unwrap().unwrap();
        assert_eq!(deleted.credential, Some(credential(4)));
        assert_eq!(deleted.version, 2);
        assert!(fx.connections.delete(&tenant, &kept).await.unwrap().is_none());

        // Nothing can be written for a deleted connection.
        let mut write = page(&tenant, &id, "repos", None);
        write.upserts = vec![record("3", json!({}))];
        let error = fx.records.write_page(write).await.unwrap_err();
        assert!(matches!(error, StoreError::ConnectionNotFound), "{error:?}");
        assert_eq!(fx.rows("records", &tenant, &id).await, 0);
    }
}

backend_tests! { Fixture;
    async fn a_deleted_tenants_connections_and_records_go(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let (other, kept) = fx.tenant_with_connection().await;
        for (t, c) in [(&tenant, &connection), (&other, &kept)] {
            let mut page = page(t, c, "repos", None);
            page.upserts = vec![record("a", json!({"v": 1}))];
            page.checkpoint = Some(json!({"at": 1}));
            fx.records.write_page(page).await.unwrap();
        }
        assert_eq!(fx.connections.delete_tenant(&tenant).await.unwrap(), 1);
        assert!(fx.connections.get(&tenant, &connection).await.unwrap().is_none());
        assert!(fx.records.records(&tenant, &connection, "repos", None, 10).await.unwrap().items.is_empty());
        assert!(fx.records.changes(&tenant, &connection, "repos", None, 10).await.unwrap().items.is_empty());
        assert!(fx.records.checkpoint(&tenant, &connection, "repos").await.unwrap().is_none());
        // The other tenant keeps everything.
        assert_eq!(fx.records.records(&other, &kept, "repos", None, 10).await.unwrap().items.len(), 1);
        assert!(fx.records.checkpoint(&other, &kept, "repos").await.unwrap().is_some());
    }
}
