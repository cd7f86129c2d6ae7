//! Lookups for unified `related` fields: which keys a live record of another stream matches,
//! scoped by tenant and connection, and only once that stream has completed a sync.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use switchyard_connectors::store::{NewConnection, RelatedQuery};
use switchyard_core::{ConnectionId, TenantId};
use switchyard_test_support::backend_tests;

use crate::support::{Fixture, page, record};

const FACTORS: &str = "user_factors";
const DISABLED: &str = "members_2fa_disabled";

fn keys(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

impl Fixture {
    /// Stores `records` (key, data) in `stream` and marks the stream completed.
    async fn synced(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
        records: Vec<(&str, Value)>,
    ) {
        let mut write = page(tenant, connection, stream, None);
        write.upserts = records
            .into_iter()
            .map(|(key, data)| record(key, data))
            .collect();
        self.records.write_page(write).await.unwrap();
        self.records
            .mark_completed(tenant, connection, stream)
            .await
            .unwrap();
    }

    async fn matches(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        query: RelatedQuery<'_>,
        asked: &[&str],
    ) -> Option<BTreeSet<String>> {
        self.records
            .related_matches(tenant, connection, &query, &keys(asked))
            .await
            .unwrap()
    }
}

fn by_key(stream: &str) -> RelatedQuery<'_> {
    RelatedQuery {
        stream,
        matches: None,
        filter: None,
    }
}

backend_tests! { Fixture;
    async fn nothing_is_known_before_the_stream_completes_a_sync(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        assert_eq!(fx.matches(&tenant, &connection, by_key(DISABLED), &["1"]).await, None);

        // Records stored by a sync still under way (or a webhook) are not the whole list.
        let mut write = page(&tenant, &connection, DISABLED, None);
        write.upserts = vec![record("1", json!({"id": 1}))];
        fx.records.write_page(write).await.unwrap();
        assert_eq!(fx.matches(&tenant, &connection, by_key(DISABLED), &["1"]).await, None);
        assert_eq!(fx.records.completed_at(&tenant, &connection, DISABLED).await.unwrap(), None);

        fx.records.mark_completed(&tenant, &connection, DISABLED).await.unwrap();
        assert!(fx.records.completed_at(&tenant, &connection, DISABLED).await.unwrap().is_some());
        assert_eq!(
            fx.matches(&tenant, &connection, by_key(DISABLED), &["1", "2"]).await,
            Some(keys(&["1"]))
        );
        // No keys to ask about: the answer is known, and empty.
        assert_eq!(fx.matches(&tenant, &connection, by_key(DISABLED), &[]).await, Some(keys(&[])));

        // A reset makes the next sync read everything again; the records stay, and so does
        // what they prove.
        fx.records.reset_checkpoint(&tenant, &connection, DISABLED).await.unwrap();
        assert_eq!(
            fx.matches(&tenant, &connection, by_key(DISABLED), &["1"]).await,
            Some(keys(&["1"]))
        );
    }

    async fn by_primary_key_live_records_only(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        fx.synced(&tenant, &connection, DISABLED, vec![
            ("1", json!({"id": 1, "login": "ada"})),
            ("3", json!({"id": 3, "login": "grace"})),
            ("o'brien; DROP TABLE records", json!({"id": "x"})),
            ("ü-ß", json!({"id": "y"})),
        ]).await;
        assert_eq!(
            fx.matches(&tenant, &connection, by_key(DISABLED), &["1", "2", "3", "4"]).await,
            Some(keys(&["1", "3"]))
        );
        // Keys are data, never SQL.
        assert_eq!(
            fx.matches(
                &tenant, &connection, by_key(DISABLED),
                &["o'brien; DROP TABLE records", "ü-ß", "\"1\""],
            ).await,
            Some(keys(&["o'brien; DROP TABLE records", "ü-ß"]))
        );
        // A deleted record does not count.
        let mut delete = page(&tenant, &connection, DISABLED, None);
        delete.deletions = vec!["3".into()];
        fx.records.write_page(delete).await.unwrap();
        assert_eq!(
            fx.matches(&tenant, &connection, by_key(DISABLED), &["1", "3"]).await,
            Some(keys(&["1"]))
        );
    }

    async fn by_member_with_a_where_filter(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        fx.synced(&tenant, &connection, FACTORS, vec![
            ("f1", json!({"id": "f1", "user_id": "u1", "status": "ACTIVE"})),
            ("f2", json!({"id": "f2", "user_id": "u2", "status": "PENDING_ACTIVATION"})),
            ("f3", json!({"id": "f3", "user_id": "u1", "status": "ACTIVE"})),
            ("f4", json!({"id": "f4", "user_id": 7, "status": "ACTIVE"})),
            ("f5", json!({"id": "f5", "user_id": true, "status": "ACTIVE"})),
            ("f6", json!({"id": "f6", "user_id": ["u6"], "status": "ACTIVE"})),
            ("f7", json!({"id": "f7", "status": "ACTIVE"})),
            ("f8", json!({"id": "f8", "user_id": "u8", "status": "active"})),
        ]).await;
        let (user_id, status) = (names(&["user_id"]), names(&["status"]));
        let active = json!("ACTIVE");
        let query = RelatedQuery {
            stream: FACTORS,
            matches: Some(&user_id),
            filter: Some((&status, &active)),
        };
        assert_eq!(
            fx.matches(&tenant, &connection, query, &["u1", "u2", "7", "true", "u6", "u8", "f7"]).await,
            // u2's factor is not ACTIVE; `true` and `["u6"]` are not keys; f7 has no user_id;
            // the comparison is exact (`active` is not `ACTIVE`).
            Some(keys(&["u1", "7"]))
        );
        let unfiltered = RelatedQuery { filter: None, ..query };
        assert_eq!(
            fx.matches(&tenant, &connection, unfiltered, &["u1", "u2", "u8", "f7"]).await,
            Some(keys(&["u1", "u2", "u8"]))
        );
    }

    async fn where_compares_type_and_value(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        fx.synced(&tenant, &connection, FACTORS, vec![
            ("a", json!({"owner": {"id": "a"}, "flag": true, "n": 1})),
            ("b", json!({"owner": {"id": "b"}, "flag": "true", "n": "1"})),
            ("c", json!({"owner": {"id": "c"}, "flag": false, "n": 2})),
        ]).await;
        let owner = names(&["owner", "id"]);
        let ask = &["a", "b", "c"];
        for (member, equals, expected) in [
            ("flag", json!(true), &["a"][..]),
            ("flag", json!("true"), &["b"][..]),
            ("flag", json!(false), &["c"][..]),
            ("n", json!(1), &["a"][..]),
            ("n", json!("1"), &["b"][..]),
            ("n", json!(2), &["c"][..]),
        ] {
            let path = names(&[member]);
            let query = RelatedQuery {
                stream: FACTORS,
                matches: Some(&owner),
                filter: Some((&path, &equals)),
            };
            assert_eq!(
                fx.matches(&tenant, &connection, query, ask).await,
                Some(keys(expected)),
                "{member} = {equals}"
            );
        }
    }

    async fn another_tenants_or_connections_records_do_not_count(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let (other_tenant, other_tenants_connection) = fx.tenant_with_connection().await;
        let sibling = fx
            .connections
            .create(NewConnection::new(tenant, "github", "github-2"))
            .await
            .unwrap()
            .id;
        fx.synced(&tenant, &connection, DISABLED, vec![("1", json!({"id": 1}))]).await;
        for (t, c) in [(&other_tenant, &other_tenants_connection), (&tenant, &sibling)] {
            fx.synced(t, c, DISABLED, vec![
                ("2", json!({"id": 2})),
                ("3", json!({"id": 3})),
            ]).await;
        }
        assert_eq!(
            fx.matches(&tenant, &connection, by_key(DISABLED), &["1", "2", "3"]).await,
            Some(keys(&["1"]))
        );
        // Nor does another connection's completed sync stand for this one's.
        let (lonely_tenant, lonely) = fx.tenant_with_connection().await;
        assert_eq!(fx.matches(&lonely_tenant, &lonely, by_key(DISABLED), &["2"]).await, None);
        // Nor does a connection id under the wrong tenant reach anything.
        assert_eq!(
            fx.matches(&other_tenant, &connection, by_key(DISABLED), &["1"]).await,
            None
        );
    }
}
