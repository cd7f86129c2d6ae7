//! The OAuth tables: client registrations, connect sessions, single-use states, and the
//! credential compare-and-swap of connections.

use std::sync::Arc;

use serde_json::json;
use switchyard_connectors::store::{
    ConnectSessionStore, ConnectionUpdate, CredentialRef, CredentialStatus, NewConnectSession,
    NewConnection, NewOAuthClient, OAuthClientStore, OAuthClientUpdate, OAuthState,
    SecretReference, SessionStatus, StateLookup, StoreError,
};
use switchyard_core::{ConnectSessionId, OAuthClientId, TenantId};
use switchyard_store::Database;
use switchyard_test_support::backend_tests;
use time::{Duration, OffsetDateTime};

use crate::support::Fixture;

fn secret(version: u32) -> SecretReference {
    SecretReference {
        name: "oauth-github-client".to_owned(),
        version,
        fingerprint: format!("sha256:{version:04}"),
    }
}

fn new_client(tenant: TenantId, provider: &str) -> NewOAuthClient {
    NewOAuthClient {
        tenant_id: tenant,
        id: OAuthClientId::generate(),
        provider: provider.to_owned(),
        client_id: format!("{provider}-client"),
        secret: Some(secret(1)),
        scopes: vec!["repo".to_owned(), "read:org".to_owned()],
        redirect_uri: None,
    }
}

fn new_session(tenant: TenantId, token_hash: &str) -> NewConnectSession {
    NewConnectSession {
        tenant_id: tenant,
        id: ConnectSessionId::generate(),
        token_hash: token_hash.to_owned(),
        end_user: json!({"id": "user-7", "email": "ada@example.com"}),
        allowed_providers: vec!["github".to_owned()],
        redirect_url: Some("https://app.example/done".to_owned()),
        connection_id: None,
        expires_at: OffsetDateTime::now_utc() + Duration::minutes(30),
    }
}

fn state(session: &NewConnectSession, hash: &str, expires_in: Duration) -> OAuthState {
    let now = OffsetDateTime::now_utc();
    OAuthState {
        state_hash: hash.to_owned(),
        tenant_id: session.tenant_id,
        session_id: session.id,
        provider: "github".to_owned(),
        sealed_verifier: Some("c2VhbGVk".to_owned()),
        redirect_uri: "https://switchyard.example/v1/connect/callback".to_owned(),
        expires_at: now + expires_in,
        used_at: None,
        created_at: now,
    }
}

fn credential(version: u32) -> CredentialRef {
    CredentialRef {
        name: "conn-github-oauth".to_owned(),
        version,
        fingerprint: format!("sha256:{version:04}"),
        mode: "oauth2".to_owned(),
        expires_at: None,
        refreshed_at: None,
    }
}

fn stores(database: &Database) -> (OAuthClientStore, ConnectSessionStore) {
    (
        OAuthClientStore::new(database.clone()),
        ConnectSessionStore::new(database.clone()),
    )
}

/// Rows of an OAuth table whose tenant is `tenant`, counted under the stores.
async fn tenant_rows(database: &Database, table: &str, tenant: &TenantId) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1");
    match database {
        Database::Sqlite(pool) => {
            sqlx::query_scalar(&sql)
                .bind(tenant.to_string())
                .fetch_one(pool)
                .await
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar(&sql)
                .bind(tenant.to_string())
                .fetch_one(pool)
                .await
        }
    }
    .unwrap()
}

backend_tests! { Fixture;
    async fn oauth_clients_crud_and_one_per_provider(fx) {
        let (clients, _) = stores(&fx.database);
        let tenant = TenantId::generate();
        let new = new_client(tenant, "github");
        let created = clients.create(new.clone()).await.unwrap();
        assert_eq!(created.id, new.id);
        assert_eq!(created.tenant_id, tenant);
        assert_eq!(created.client_id, "github-client");
        assert_eq!(created.secret, Some(secret(1)));
        assert_eq!(created.scopes, vec!["repo", "read:org"]);
        assert_eq!(created.redirect_uri, None);
        assert_eq!(created.created_at, created.updated_at);
        assert_eq!(clients.get(&tenant, &created.id).await.unwrap(), Some(created.clone()));
        assert_eq!(clients.for_provider(&tenant, "github").await.unwrap(), Some(created.clone()));
        assert_eq!(clients.for_provider(&tenant, "gitlab").await.unwrap(), None);

        // One registration per tenant and provider; another tenant may register it too.
        let error = clients.create(new_client(tenant, "github")).await.unwrap_err();
        assert!(matches!(&error, StoreError::ProviderTaken { provider } if provider == "github"), "{error:?}");
        assert!(error.is_conflict());
        assert_eq!(error.code(), "conflict");
        clients.create(new_client(TenantId::generate(), "github")).await.unwrap();

        let updated = clients
            .update(&tenant, &created.id, OAuthClientUpdate {
                secret: Some(Some(secret(2))),
                scopes: Some(vec!["repo".to_owned()]),
                redirect_uri: Some(Some("https://custom.example/callback".to_owned())),
                ..OAuthClientUpdate::default()
            })
            .await
            .unwrap()
            .expect("the registration exists");
        assert_eq!(updated.client_id, "github-client", "kept");
        assert_eq!(updated.secret, Some(secret(2)));
        assert_eq!(updated.scopes, vec!["repo"]);
        assert_eq!(updated.redirect_uri.as_deref(), Some("https://custom.example/callback"));
        assert!(updated.updated_at >= created.updated_at);
        let cleared = clients
            .update(&tenant, &created.id, OAuthClientUpdate {
                client_id: Some("rotated".to_owned()),
                secret: Some(None),
                redirect_uri: Some(None),
                ..OAuthClientUpdate::default()
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!((cleared.client_id.as_str(), cleared.secret, cleared.redirect_uri), ("rotated", None, None));
        assert_eq!(cleared.scopes, vec!["repo"], "kept");
        let error = clients
            .update(&tenant, &created.id, OAuthClientUpdate {
                client_id: Some(" ".to_owned()),
                ..OAuthClientUpdate::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Invalid { field: "client_id", .. }), "{error:?}");

        // Paging by id.
        let second = clients.create(new_client(tenant, "gitlab")).await.unwrap();
        let third = clients.create(new_client(tenant, "okta")).await.unwrap();
        let first_page = clients.list(&tenant, None, 2).await.unwrap();
        let ids: Vec<_> = first_page.items.iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![created.id, second.id]);
        assert_eq!(first_page.next_after, Some(second.id));
        let last_page = clients.list(&tenant, first_page.next_after.as_ref(), 2).await.unwrap();
        assert_eq!(last_page.items, vec![third.clone()]);
        assert_eq!(last_page.next_after, None);

        let deleted = clients.delete(&tenant, &created.id).await.unwrap().expect("deleted");
        assert_eq!(deleted.id, created.id);
        assert_eq!(clients.get(&tenant, &created.id).await.unwrap(), None);
        assert_eq!(clients.delete(&tenant, &created.id).await.unwrap(), None);
        // The provider is free again.
        clients.create(new_client(tenant, "github")).await.unwrap();
    }

    async fn oauth_clients_are_isolated_by_tenant(fx) {
        let (clients, _) = stores(&fx.database);
        let owner = TenantId::generate();
        let intruder = TenantId::generate();
        let created = clients.create(new_client(owner, "github")).await.unwrap();
        assert_eq!(clients.get(&intruder, &created.id).await.unwrap(), None);
        assert_eq!(clients.for_provider(&intruder, "github").await.unwrap(), None);
        assert!(clients.list(&intruder, None, 100).await.unwrap().items.is_empty());
        let update = OAuthClientUpdate {
            client_id: Some("hijacked".to_owned()),
            ..OAuthClientUpdate::default()
        };
        assert_eq!(clients.update(&intruder, &created.id, update).await.unwrap(), None);
        assert_eq!(clients.delete(&intruder, &created.id).await.unwrap(), None);
        assert_eq!(clients.get(&owner, &created.id).await.unwrap(), Some(created));
    }

    async fn sessions_are_found_by_token_and_isolated_by_tenant(fx) {
        let (_, sessions) = stores(&fx.database);
        let owner = TenantId::generate();
        let intruder = TenantId::generate();
        let mut new = new_session(owner, "aa11");
        let (connection_tenant, connection) = fx.tenant_with_connection().await;
        new.tenant_id = connection_tenant;
        new.connection_id = Some(connection);
        let repair = sessions.create(new.clone()).await.unwrap();
        assert_eq!(repair.connection_id, Some(connection));
        assert_eq!(repair.tenant_id, connection_tenant);

        let new = new_session(owner, "bb22");
        let created = sessions.create(new.clone()).await.unwrap();
        assert_eq!(created.id, new.id);
        assert_eq!(created.status, SessionStatus::Pending);
        assert_eq!(created.end_user, new.end_user);
        assert_eq!(created.allowed_providers, vec!["github"]);
        assert_eq!(created.redirect_url, new.redirect_url);
        assert_eq!(created.connection_id, None);
        assert_eq!(created.result, None);
        assert_eq!(created.expires_at, switchyard_store::DbTime::new(new.expires_at).get());

        // The token is the capability: the lookup needs no tenant, and says whose it is.
        let found = sessions.by_token_hash("bb22").await.unwrap().expect("found");
        assert_eq!(found, created);
        assert_eq!(found.tenant_id, owner);
        assert_eq!(sessions.by_token_hash("cc33").await.unwrap(), None);
        // Token hashes are unique.
        assert!(sessions.create(new_session(intruder, "bb22")).await.is_err());

        assert_eq!(sessions.get(&owner, &created.id).await.unwrap(), Some(created.clone()));
        assert_eq!(sessions.get(&intruder, &created.id).await.unwrap(), None);
        assert!(sessions.list(&intruder, None, 100).await.unwrap().items.is_empty());
        let listed = sessions.list(&owner, None, 100).await.unwrap();
        assert_eq!(listed.items, vec![created.clone()]);
        assert_eq!(
            sessions.finish(&intruder, &created.id, SessionStatus::Failed, json!({})).await.unwrap(),
            None
        );
        assert_eq!(sessions.get(&owner, &created.id).await.unwrap().unwrap().status, SessionStatus::Pending);
    }

    async fn a_session_finishes_once_and_only_from_pending(fx) {
        let (_, sessions) = stores(&fx.database);
        let tenant = TenantId::generate();
        let created = sessions.create(new_session(tenant, "dd44")).await.unwrap();
        let error = sessions
            .finish(&tenant, &created.id, SessionStatus::Pending, json!({}))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Invalid { field: "status", .. }), "{error:?}");

        let result = json!({"connection_id": "conn_01JD2S5W8X3Q4R5T6V7W8X9Y0Z"});
        let finished = sessions
            .finish(&tenant, &created.id, SessionStatus::Completed, result.clone())
            .await
            .unwrap()
            .expect("pending until now");
        assert_eq!(finished.status, SessionStatus::Completed);
        assert_eq!(finished.result, Some(result.clone()));
        assert!(finished.updated_at >= created.updated_at);
        for status in [SessionStatus::Failed, SessionStatus::Expired, SessionStatus::Completed] {
            let again = sessions
                .finish(&tenant, &created.id, status, json!({"error": "late"}))
                .await
                .unwrap();
            assert_eq!(again, None, "{status:?} after completed");
        }
        let stored = sessions.get(&tenant, &created.id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.result), (SessionStatus::Completed, Some(result)));

        let other = sessions.create(new_session(tenant, "ee55")).await.unwrap();
        let expired = sessions
            .finish(&tenant, &other.id, SessionStatus::Expired, json!({"error": "expired"}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(expired.status, SessionStatus::Expired);
        assert_eq!(expired.status.as_str(), "expired");
        assert_eq!(serde_json::to_value(SessionStatus::Completed).unwrap(), json!("completed"));
    }

    async fn a_state_is_taken_once(fx) {
        let (_, sessions) = stores(&fx.database);
        let tenant = TenantId::generate();
        let session = new_session(tenant, "ff66");
        sessions.create(session.clone()).await.unwrap();
        let issued = state(&session, "state-1", Duration::minutes(10));
        sessions.create_state(issued.clone()).await.unwrap();

        let now = OffsetDateTime::now_utc();
        let StateLookup::Valid(taken) = sessions.take_state("state-1", now).await.unwrap() else {
            panic!("the first take is valid");
        };
        assert_eq!(taken.state_hash, "state-1");
        assert_eq!((taken.tenant_id, taken.session_id), (tenant, session.id));
        assert_eq!(taken.provider, "github");
        assert_eq!(taken.sealed_verifier, issued.sealed_verifier);
        assert_eq!(taken.redirect_uri, issued.redirect_uri);
        assert_eq!(taken.used_at, Some(switchyard_store::DbTime::new(now).get()));
        assert_eq!(sessions.take_state("state-1", now).await.unwrap(), StateLookup::Used);
        // Still used, not expired, once its expiry has passed too.
        assert_eq!(
            sessions.take_state("state-1", now + Duration::hours(1)).await.unwrap(),
            StateLookup::Used
        );

        sessions.create_state(state(&session, "state-2", Duration::minutes(10))).await.unwrap();
        assert_eq!(
            sessions.take_state("state-2", now + Duration::minutes(11)).await.unwrap(),
            StateLookup::Expired
        );
        assert!(matches!(sessions.take_state("state-2", now).await.unwrap(), StateLookup::Valid(_)), "unused while not expired");
        assert_eq!(sessions.take_state("never-issued", now).await.unwrap(), StateLookup::Unknown);
        // State hashes are unique.
        assert!(sessions.create_state(state(&session, "state-1", Duration::minutes(10))).await.is_err());
    }

    async fn of_concurrent_takers_exactly_one_gets_the_state(fx) {
        let (_, sessions) = stores(&fx.database);
        let tenant = TenantId::generate();
        let session = new_session(tenant, "gg77");
        sessions.create(session.clone()).await.unwrap();
        sessions.create_state(state(&session, "raced", Duration::minutes(10))).await.unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let takers: Vec<_> = (0..20)
            .map(|_| {
                let (sessions, barrier) = (sessions.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    sessions.take_state("raced", OffsetDateTime::now_utc()).await.unwrap()
                })
            })
            .collect();
        let mut valid = 0;
        for taker in takers {
            match taker.await.unwrap() {
                StateLookup::Valid(_) => valid += 1,
                StateLookup::Used => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(valid, 1);
    }

    async fn purging_keeps_only_states_a_callback_can_take(fx) {
        let (_, sessions) = stores(&fx.database);
        let tenant = TenantId::generate();
        let pending = new_session(tenant, "hh88");
        sessions.create(pending.clone()).await.unwrap();
        let finished = new_session(tenant, "ii99");
        sessions.create(finished.clone()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        sessions.create_state(state(&pending, "live", Duration::minutes(10))).await.unwrap();
        sessions.create_state(state(&pending, "expired", Duration::seconds(-1))).await.unwrap();
        sessions.create_state(state(&pending, "used", Duration::minutes(10))).await.unwrap();
        sessions.create_state(state(&finished, "of-finished", Duration::minutes(10))).await.unwrap();
        assert!(matches!(sessions.take_state("used", now).await.unwrap(), StateLookup::Valid(_)));
        sessions.finish(&tenant, &finished.id, SessionStatus::Failed, json!({})).await.unwrap().unwrap();

        // Nothing is older than a cut-off in the past.
        assert_eq!(sessions.purge_states(now - Duration::hours(1)).await.unwrap(), 0);
        let purged = sessions.purge_states(OffsetDateTime::now_utc() + Duration::seconds(1)).await.unwrap();
        assert_eq!(purged, 3);
        assert!(matches!(sessions.take_state("live", OffsetDateTime::now_utc()).await.unwrap(), StateLookup::Valid(_)));
        for gone in ["expired", "used", "of-finished"] {
            assert_eq!(sessions.take_state(gone, now).await.unwrap(), StateLookup::Unknown, "{gone}");
        }
    }

    async fn swapping_a_credential_needs_the_expected_version(fx) {
        let tenant = TenantId::generate();
        let mut new = NewConnection::new(tenant, "github", "oauth");
        new.credential = Some(credential(1));
        let created = fx.connections.create(new).await.unwrap();
        assert_eq!(created.credential_status, CredentialStatus::Valid);

        let flagged = fx
            .connections
            .set_credential_status(&tenant, &created.id, CredentialStatus::ReauthorizationRequired)
            .await
            .unwrap()
            .expect("the connection exists");
        assert_eq!(flagged.credential_status, CredentialStatus::ReauthorizationRequired);
        assert_eq!(flagged.version, created.version + 1);

        // A stale expected version changes nothing.
        assert_eq!(fx.connections.swap_credential(&tenant, &created.id, 7, credential(8)).await.unwrap(), None);
        assert_eq!(fx.connections.get(&tenant, &created.id).await.unwrap(), Some(flagged.clone()));

        let swapped = fx
            .connections
            .swap_credential(&tenant, &created.id, 1, credential(2))
            .await
            .unwrap()
            .expect("at the expected version");
        assert_eq!(swapped.credential, Some(credential(2)));
        assert_eq!(swapped.credential_status, CredentialStatus::Valid);
        assert_eq!(swapped.version, flagged.version + 1);
        // The loser of a race read version 1 too: it no longer matches.
        assert_eq!(fx.connections.swap_credential(&tenant, &created.id, 1, credential(3)).await.unwrap(), None);
        assert_eq!(fx.connections.get(&tenant, &created.id).await.unwrap().unwrap().credential, Some(credential(2)));

        // Another tenant, a missing connection, or no credential at all: nothing to swap.
        let intruder = TenantId::generate();
        assert_eq!(fx.connections.swap_credential(&intruder, &created.id, 2, credential(3)).await.unwrap(), None);
        assert_eq!(
            fx.connections.set_credential_status(&intruder, &created.id, CredentialStatus::Valid).await.unwrap(),
            None
        );
        let (_, bare) = fx.tenant_with_connection().await;
        assert_eq!(fx.connections.swap_credential(&tenant, &bare, 1, credential(3)).await.unwrap(), None);
    }

    async fn concurrent_swaps_from_one_version_let_one_win(fx) {
        let tenant = TenantId::generate();
        let mut new = NewConnection::new(tenant, "github", "raced");
        new.credential = Some(credential(1));
        let created = fx.connections.create(new).await.unwrap();
        let swaps: Vec<_> = (2..12)
            .map(|version| {
                let connections = fx.connections.clone();
                tokio::spawn(async move {
                    connections.swap_credential(&tenant, &created.id, 1, credential(version)).await.unwrap()
                })
            })
            .collect();
        let mut winners = Vec::new();
        for swap in swaps {
            if let Some(row) = swap.await.unwrap() {
                winners.push(row);
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let stored = fx.connections.get(&tenant, &created.id).await.unwrap().unwrap();
        assert_eq!(stored.credential, winners[0].credential);
        assert_eq!(stored.version, created.version + 1);
    }

    async fn an_update_can_mark_the_credential_valid_again(fx) {
        let (tenant, id) = fx.tenant_with_connection().await;
        fx.connections
            .set_credential_status(&tenant, &id, CredentialStatus::ReauthorizationRequired)
            .await
            .unwrap()
            .unwrap();
        let untouched = fx
            .connections
            .update(&tenant, &id, ConnectionUpdate::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(untouched.credential_status, CredentialStatus::ReauthorizationRequired, "kept");
        let repaired = fx
            .connections
            .update(&tenant, &id, ConnectionUpdate {
                credential: Some(Some(credential(5))),
                credential_status: Some(CredentialStatus::Valid),
                ..ConnectionUpdate::default()
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(repaired.credential_status, CredentialStatus::Valid);
        assert_eq!(repaired.credential, Some(credential(5)));
        assert_eq!(
            serde_json::to_value(CredentialStatus::ReauthorizationRequired).unwrap(),
            json!("reauthorization_required")
        );
    }

    async fn deleting_a_tenant_removes_its_oauth_rows(fx) {
        let (clients, sessions) = stores(&fx.database);
        let tenant = TenantId::generate();
        let other = TenantId::generate();
        for owner in [tenant, other] {
            clients.create(new_client(owner, "github")).await.unwrap();
            let session = new_session(owner, &format!("tok-{owner}"));
            sessions.create(session.clone()).await.unwrap();
            sessions.create_state(state(&session, &format!("st-{owner}"), Duration::minutes(5))).await.unwrap();
        }
        fx.connections.delete_tenant(&tenant).await.unwrap();
        for table in ["oauth_clients", "connect_sessions", "oauth_states"] {
            assert_eq!(tenant_rows(&fx.database, table, &tenant).await, 0, "{table}");
            assert_eq!(tenant_rows(&fx.database, table, &other).await, 1, "{table} of the other tenant");
        }
    }
}
