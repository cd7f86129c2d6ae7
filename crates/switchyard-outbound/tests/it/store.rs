//! Endpoints, publishing and fan-out, idempotency, transactions, tenant isolation, re-sealing
//! event bodies onto a new data key.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use serde_json::json;
use switchyard_core::{DeliveryId, EndpointId, MessageId, TenantId};
use switchyard_outbound::{
    DeliveryStatus, EndpointUpdate, NewEndpoint, NewEvent, OutboundError, ReplayFilter,
    RotateSecret, get_delivery, get_event, get_event_metadata, list_deliveries, publish,
    publish_in, replay, reseal, retry_delivery,
};
use switchyard_test_support::backend_tests;
use switchyard_vault::SecretRef;
use time::OffsetDateTime;

use crate::support::Fixture;

async fn endpoints_of(fx: &Fixture, tenant: TenantId, event: MessageId) -> BTreeSet<EndpointId> {
    get_event(&fx.database, &fx.vault, tenant, event)
        .await
        .unwrap()
        .deliveries
        .into_iter()
        .map(|d| d.endpoint_id)
        .collect()
}

fn not_found<T: std::fmt::Debug>(result: Result<T, OutboundError>) {
    match result {
        Err(OutboundError::NotFound { .. }) => {}
        other => panic!("expected not_found, got {other:?}"),
    }
}

backend_tests! { Fixture;
    async fn fans_out_by_filters_with_wildcards(fx) {
        let tenant = TenantId::generate();
        let url = "https://example.com/hook";
        let (all, _) = fx.endpoint(tenant, url, &[]).await;
        let (github, _) = fx.endpoint(tenant, url, &["github.*"]).await;
        let (push, _) = fx.endpoint(tenant, url, &["github.push"]).await;
        let (ops, _) = fx.endpoint(tenant, url, &["switchyard.endpoint.*"]).await;
        let (off, _) = fx.endpoint(tenant, url, &["github.*"]).await;
        fx.endpoints.disable(tenant, off, "test").await.unwrap();
        let other_tenant = TenantId::generate();
        fx.endpoint(other_tenant, url, &[]).await;

        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("github.push", json!({"n": 1}))).await.unwrap();
        assert_eq!(p.deliveries.len(), 3);
        assert_eq!(endpoints_of(&fx, tenant, p.event.id).await, BTreeSet::from([all, github, push]));
        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("github.pull_request.opened", json!({}))).await.unwrap();
        assert_eq!(endpoints_of(&fx, tenant, p.event.id).await, BTreeSet::from([all, github]));
        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("switchyard.endpoint.disabled", json!({}))).await.unwrap();
        assert_eq!(endpoints_of(&fx, tenant, p.event.id).await, BTreeSet::from([all, ops]));
        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("githubx.push", json!({}))).await.unwrap();
        assert_eq!(endpoints_of(&fx, tenant, p.event.id).await, BTreeSet::from([all]));

        // The body is the Standard Webhooks payload, serialised once.
        let body: serde_json::Value = serde_json::from_str(&p.event.body).unwrap();
        assert_eq!(body["type"], "githubx.push");
        assert!(body["timestamp"].is_string());
        assert_eq!(body["data"], json!({}));
        assert!(p.event.body.starts_with(r#"{"type":"githubx.push","timestamp":"#));
        assert_eq!(p.event.webhook_id, p.event.id.to_string());

        assert!(publish(&fx.database, &fx.vault, tenant, NewEvent::new("bad type", json!({}))).await.is_err());
    }

    async fn publish_is_idempotent_by_id(fx) {
        let tenant = TenantId::generate();
        fx.endpoint(tenant, "https://example.com/a", &[]).await;
        let first = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({"v": 1})).id("order-42")).await.unwrap();
        assert!(first.created);
        assert_eq!(first.event.webhook_id, "order-42");
        let again = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({"v": 2})).id("order-42")).await.unwrap();
        assert!(!again.created);
        assert!(again.deliveries.is_empty());
        assert_eq!(again.event, first.event);
        assert_eq!(get_event(&fx.database, &fx.vault, tenant, first.event.id).await.unwrap().deliveries.len(), 1);
        // Ids are per tenant.
        let other = TenantId::generate();
        let theirs = publish(&fx.database, &fx.vault, other, NewEvent::new("a.b", json!({})).id("order-42")).await.unwrap();
        assert!(theirs.created);
    }

    async fn publish_in_a_rolled_back_transaction_leaves_nothing(fx) {
        let tenant = TenantId::generate();
        let (endpoint, _) = fx.endpoint(tenant, "https://example.com/a", &[]).await;
        let mut tx = fx.database.begin().await.unwrap();
        let p = publish_in(&mut tx, &fx.vault, tenant, NewEvent::new("a.b", json!({})).id("tx-1")).await.unwrap();
        assert_eq!(p.deliveries.len(), 1);
        tx.rollback().await.unwrap();
        not_found(get_event(&fx.database, &fx.vault, tenant, p.event.id).await);
        not_found(get_delivery(&fx.database, tenant, p.deliveries[0]).await);
        let page = list_deliveries(&fx.database, tenant, endpoint, None, None, 100).await.unwrap();
        assert!(page.items.is_empty());

        let mut tx = fx.database.begin().await.unwrap();
        let p = publish_in(&mut tx, &fx.vault, tenant, NewEvent::new("a.b", json!({})).id("tx-1")).await.unwrap();
        assert!(p.created, "the rolled-back id is free again");
        tx.commit().await.unwrap();
        assert_eq!(get_event(&fx.database, &fx.vault, tenant, p.event.id).await.unwrap().deliveries.len(), 1);
    }

    async fn event_bodies_are_sealed_at_rest(fx) {
        let tenant = TenantId::generate();
        fx.endpoint(tenant, "https://example.com/a", &[]).await;
        let canary = "canary-8d41c2-card-4242";
        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({"card": canary})).id("sealed-1")).await.unwrap();
        assert!(p.event.body.contains(canary), "the published event carries the plaintext");
        let stored = fx.stored_body(p.event.id).await;
        assert!(!stored.contains(canary), "stored in plaintext: {stored}");
        assert_eq!(get_event(&fx.database, &fx.vault, tenant, p.event.id).await.unwrap().event, p.event);
        // A duplicate publish returns the stored event, decrypted.
        let again = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({})).id("sealed-1")).await.unwrap();
        assert_eq!(again.event, p.event);

        // A sealed body copied onto another event's row does not open there: an error, no panic.
        let other = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({}))).await.unwrap();
        fx.set_stored_body(other.event.id, &stored).await;
        let result = get_event(&fx.database, &fx.vault, tenant, other.event.id).await;
        assert!(matches!(result, Err(OutboundError::Vault(_))), "{result:?}");
        // The metadata never opens the body, so it reads even then.
        let metadata = get_event_metadata(&fx.database, tenant, other.event.id).await.unwrap();
        assert_eq!(metadata.event, switchyard_outbound::EventMetadata::from(&other.event));
        assert_eq!(metadata.deliveries.len(), 1);
        // Nor under another tenant's key.
        let intruder = TenantId::generate();
        let theirs = publish(&fx.database, &fx.vault, intruder, NewEvent::new("a.b", json!({}))).await.unwrap();
        fx.set_stored_body(theirs.event.id, &stored).await;
        assert!(get_event(&fx.database, &fx.vault, intruder, theirs.event.id).await.is_err());
        // A plaintext (or otherwise mangled) value is a corrupt row.
        fx.set_stored_body(other.event.id, &p.event.body).await;
        let result = get_event(&fx.database, &fx.vault, tenant, other.event.id).await;
        assert!(matches!(result, Err(OutboundError::Corrupt { .. })), "{result:?}");
    }

    async fn event_bodies_are_resealed_onto_a_new_data_key(fx) {
        let (tenant, other) = (TenantId::generate(), TenantId::generate());
        let version = |stored: String| {
            let sealed = base64::engine::general_purpose::STANDARD.decode(stored).unwrap();
            switchyard_vault::Vault::blob_data_key_version(&sealed).unwrap()
        };
        let mut events = Vec::new();
        for n in 0..3 {
            events.push(publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({"n": n}))).await.unwrap().event);
        }
        let theirs = publish(&fx.database, &fx.vault, other, NewEvent::new("a.b", json!({}))).await.unwrap().event;
        let target = fx.vault.rotate_dek(&fx.context, tenant).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = switchyard_blob::BlobStore::open(&switchyard_blob::BlobConfig::default(), dir.path()).await.unwrap();
        let bodies = switchyard_outbound::ResponseBodies::new(store, None);

        let report = reseal::reseal_tenant(&fx.database, &fx.vault, &bodies, tenant, target).await.unwrap();
        assert_eq!(report, reseal::ResealReport { event_bodies: 3, response_bodies: 0 });
        let again = reseal::reseal_tenant(&fx.database, &fx.vault, &bodies, tenant, target).await.unwrap();
        assert_eq!(again, reseal::ResealReport::default(), "idempotent");
        for event in &events {
            assert_eq!(version(fx.stored_body(event.id).await), target);
            assert_eq!(&get_event(&fx.database, &fx.vault, tenant, event.id).await.unwrap().event, event);
        }
        assert_eq!(version(fx.stored_body(theirs.id).await), 1, "another tenant's body is not touched");
    }

    async fn endpoint_crud_and_secrets(fx) {
        let tenant = TenantId::generate();
        let (id, secret) = fx.endpoint(tenant, "https://example.com/a", &["a.*"]).await;
        let shown = fx.endpoints.get_secret(&fx.context, tenant, id).await.unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(shown.secret.expose_secret(), secret.expose_secret());
        assert!(secret.expose_secret().starts_with("whsec_"));
        assert!(shown.previous.is_none());

        let updated = fx.endpoints.update(&fx.context, tenant, id, EndpointUpdate {
            description: Some("orders".into()),
            rate_limit: Some(Some(10)),
            ..EndpointUpdate::default()
        }).await.unwrap();
        assert_eq!(updated.description, "orders");
        assert_eq!(updated.rate_limit, Some(10));
        assert_eq!(updated.event_types, vec!["a.*".to_owned()]);
        assert!(fx.endpoints.update(&fx.context, tenant, id, EndpointUpdate {
            url: Some("ftp://x".into()),
            ..EndpointUpdate::default()
        }).await.is_err());

        let rotated = fx.endpoints.rotate_secret(&fx.context, tenant, id, RotateSecret::default()).await.unwrap();
        assert_ne!(rotated.secret.expose_secret(), secret.expose_secret());
        assert_eq!(rotated.previous.as_ref().unwrap().expose_secret(), secret.expose_secret());
        let no_grace = fx.endpoints.rotate_secret(&fx.context, tenant, id, RotateSecret {
            grace: Some(Duration::ZERO),
            ..RotateSecret::default()
        }).await.unwrap();
        assert!(no_grace.previous.is_none());

        let page = fx.endpoints.list(tenant, None, 1).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(page.next_after.is_none());
        let (second, _) = fx.endpoint(tenant, "https://example.com/b", &[]).await;
        let page = fx.endpoints.list(tenant, None, 1).await.unwrap();
        assert_eq!(page.next_after, Some(id));
        let page = fx.endpoints.list(tenant, page.next_after, 1).await.unwrap();
        assert_eq!(page.items[0].id, second);

        fx.endpoints.delete(&fx.context, tenant, id).await.unwrap();
        not_found(fx.endpoints.get(tenant, id).await);
    }

    async fn header_values_live_only_in_the_vault(fx) {
        let tenant = TenantId::generate();
        let canary = "Bearer canary-0f3c9a";
        let mut new = NewEndpoint::new("https://example.com/a");
        new.headers.insert("Authorization".into(), canary.into());
        new.headers.insert("x-team".into(), "billing".into());
        let created = fx.endpoints.create(&fx.context, tenant, new).await.unwrap();
        let id = created.endpoint.id;
        assert_eq!(created.endpoint.header_names, ["Authorization", "x-team"]);
        assert!(!format!("{created:?}").contains("canary"), "{created:?}");
        let (legacy, names, version) = fx.header_columns(id).await;
        assert_eq!((legacy.as_str(), version), ("{}", Some(1)));
        assert!(!names.contains("canary") && names.contains("Authorization"), "{names}");
        let listed = fx.endpoints.list(tenant, None, 10).await.unwrap();
        assert_eq!(listed.items[0].header_names, ["Authorization", "x-team"]);

        // A new set replaces the old one, whose vault version is destroyed.
        let replaced = fx.endpoints.update(&fx.context, tenant, id, EndpointUpdate {
            headers: Some(Some([("x-other".to_owned(), "2".into())].into())),
            ..EndpointUpdate::default()
        }).await.unwrap();
        assert_eq!(replaced.header_names, ["x-other"]);
        assert_eq!(fx.header_columns(id).await.2, Some(2));
        let name = format!("outbound/{id}/headers");
        let old = SecretRef::new(tenant.to_string(), name.clone(), 1);
        assert!(fx.vault.resolve(&fx.context, &old).await.is_err(), "the old values are destroyed");
        let current = SecretRef::new(tenant.to_string(), name.clone(), 2);
        assert!(fx.vault.resolve(&fx.context, &current).await.is_ok());
        // Other changes keep the headers; a bad value is refused without being echoed.
        let described = fx.endpoints.update(&fx.context, tenant, id, EndpointUpdate {
            description: Some("x".into()),
            ..EndpointUpdate::default()
        }).await.unwrap();
        assert_eq!(described.header_names, ["x-other"]);
        let bad = fx.endpoints.update(&fx.context, tenant, id, EndpointUpdate {
            headers: Some(Some([("x-bad".to_owned(), "canary\n".into())].into())),
            ..EndpointUpdate::default()
        }).await.unwrap_err();
        assert!(!bad.to_string().contains("canary"), "{bad}");

        // `None` clears them, in the row and in the vault.
        let cleared = fx.endpoints.update(&fx.context, tenant, id, EndpointUpdate {
            headers: Some(None),
            ..EndpointUpdate::default()
        }).await.unwrap();
        assert!(cleared.header_names.is_empty());
        assert_eq!(fx.header_columns(id).await, ("{}".to_owned(), "[]".to_owned(), None));
        assert!(fx.vault.resolve(&fx.context, &current).await.is_err());

        // Deleting the endpoint destroys its header secret.
        let mut new = NewEndpoint::new("https://example.com/b");
        new.headers.insert("authorization".into(), canary.into());
        let second = fx.endpoints.create(&fx.context, tenant, new).await.unwrap().endpoint.id;
        fx.endpoints.delete(&fx.context, tenant, second).await.unwrap();
        let gone = SecretRef::new(tenant.to_string(), format!("outbound/{second}/headers"), 1);
        assert!(fx.vault.resolve(&fx.context, &gone).await.is_err());
    }

    async fn legacy_header_values_move_to_the_vault(fx) {
        let tenant = TenantId::generate();
        let (id, _) = fx.endpoint(tenant, "https://example.com/a", &[]).await;
        let (untouched, _) = fx.endpoint(tenant, "https://example.com/b", &[]).await;
        fx.set_legacy_headers(id, r#"{"authorization":"Bearer legacy-canary"}"#).await;
        assert_eq!(fx.endpoints.move_legacy_headers(&fx.context).await.unwrap(), 1);
        let (legacy, names, version) = fx.header_columns(id).await;
        assert_eq!((legacy.as_str(), names.as_str(), version), ("{}", r#"["authorization"]"#, Some(1)));
        let stored = SecretRef::new(tenant.to_string(), format!("outbound/{id}/headers"), 1);
        let value = fx.vault.resolve(&fx.context, &stored).await.unwrap();
        assert_eq!(value.expose_str(), Some(r#"{"authorization":"Bearer legacy-canary"}"#));
        assert_eq!(fx.header_columns(untouched).await, ("{}".to_owned(), "[]".to_owned(), None));
        // Nothing left to move: a second start does nothing.
        assert_eq!(fx.endpoints.move_legacy_headers(&fx.context).await.unwrap(), 0);
    }

    async fn tenants_cannot_reach_each_other(fx) {
        let owner = TenantId::generate();
        let intruder = TenantId::generate();
        let (endpoint, _) = fx.endpoint(owner, "https://example.com/a", &[]).await;
        let p = publish(&fx.database, &fx.vault, owner, NewEvent::new("a.b", json!({}))).await.unwrap();
        let delivery: DeliveryId = p.deliveries[0];
        let ctx = &fx.context;

        not_found(fx.endpoints.get(intruder, endpoint).await);
        not_found(fx.endpoints.update(ctx, intruder, endpoint, EndpointUpdate::default()).await);
        let headers = EndpointUpdate { headers: Some(None), ..EndpointUpdate::default() };
        not_found(fx.endpoints.update(ctx, intruder, endpoint, headers).await);
        not_found(fx.endpoints.enable(intruder, endpoint).await);
        not_found(fx.endpoints.disable(intruder, endpoint, "x").await);
        not_found(fx.endpoints.get_secret(ctx, intruder, endpoint).await);
        not_found(fx.endpoints.rotate_secret(ctx, intruder, endpoint, RotateSecret::default()).await);
        not_found(fx.endpoints.delete(ctx, intruder, endpoint).await);
        assert!(fx.endpoints.list(intruder, None, 100).await.unwrap().items.is_empty());
        not_found(get_event(&fx.database, &fx.vault, intruder, p.event.id).await);
        not_found(get_event_metadata(&fx.database, intruder, p.event.id).await);
        not_found(get_delivery(&fx.database, intruder, delivery).await);
        not_found(list_deliveries(&fx.database, intruder, endpoint, None, None, 10).await);
        not_found(retry_delivery(&fx.database, intruder, delivery).await);
        not_found(replay(&fx.database, intruder, endpoint, ReplayFilter {
            since: OffsetDateTime::UNIX_EPOCH,
            until: None,
            statuses: vec![],
        }).await);
        // The intruder's events never reach the owner's endpoint.
        let theirs = publish(&fx.database, &fx.vault, intruder, NewEvent::new("a.b", json!({}))).await.unwrap();
        assert!(theirs.deliveries.is_empty());
        // And everything of the owner is intact.
        assert!(fx.endpoints.get(owner, endpoint).await.unwrap().enabled);
        let detail = get_delivery(&fx.database, owner, delivery).await.unwrap();
        assert_eq!(detail.delivery.status, DeliveryStatus::Pending);
    }
}
