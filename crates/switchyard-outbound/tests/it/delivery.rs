//! Sending: headers and signatures, success and failure classes, retry timing on a manual
//! clock, Retry-After, 410, dead letters and operational events, retry and replay.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;
use switchyard_core::{DeliveryId, TenantId};
use switchyard_outbound::{
    DeliveryDetail, DeliveryStatus, EndpointUpdate, ManualClock, NewEndpoint, NewEvent,
    ReplayFilter, get_delivery, publish, replay, retry_delivery,
};
use switchyard_test_support::backend_tests;
use switchyard_webhooks::standard_webhooks::{SigningSecret, sign};
use time::OffsetDateTime;

use crate::support::{Fixture, Receiver, Reply, eventually, test_config};

const WAIT: Duration = Duration::from_secs(10);

async fn settled(fx: &Fixture, tenant: TenantId, id: DeliveryId, attempts: u32) -> DeliveryDetail {
    eventually(WAIT, "the delivery's attempts to be recorded", || async {
        let detail = get_delivery(&fx.database, tenant, id).await.unwrap();
        // The delivery row and its attempts are two reads: on PostgreSQL the outcome's commit
        // can fall between them, so wait until both tell the same number of attempts.
        (detail.attempts.len() as u32 >= attempts
            && detail.delivery.attempts == detail.attempts.len() as u32
            && detail.delivery.status != DeliveryStatus::Sending)
            .then_some(detail)
    })
    .await
}

backend_tests! { Fixture;
    async fn custom_headers_are_resolved_from_the_vault(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        let mut new = NewEndpoint::new(receiver.url("/auth"));
        new.headers.insert("authorization".into(), "Bearer one".into());
        let id = fx.endpoints.create(&fx.context, tenant, new).await.unwrap().endpoint.id;
        let clock = ManualClock::new();
        let running = fx.dispatcher(test_config(&clock));
        let event = || NewEvent::new("a.b", json!({}));
        publish(&fx.database, &fx.vault, tenant, event()).await.unwrap();
        let got = receiver.wait_for("/auth", 1, WAIT).await;
        assert_eq!(got[0].header("authorization"), "Bearer one");

        // A new set is sent from the next claim on: the cache keys on the vault version.
        fx.endpoints.update(&fx.context, tenant, id, EndpointUpdate {
            headers: Some(Some([("x-api-key".to_owned(), "two".into())].into())),
            ..EndpointUpdate::default()
        }).await.unwrap();
        publish(&fx.database, &fx.vault, tenant, event()).await.unwrap();
        let got = receiver.wait_for("/auth", 2, WAIT).await;
        assert_eq!(got[1].header("x-api-key"), "two");
        assert!(got[1].headers.get("authorization").is_none(), "{:?}", got[1].headers);

        // A row saved before the values moved to the vault delivers them once moved.
        fx.set_legacy_headers(id, r#"{"authorization":"Bearer legacy"}"#).await;
        assert_eq!(fx.endpoints.move_legacy_headers(&fx.context).await.unwrap(), 1);
        publish(&fx.database, &fx.vault, tenant, event()).await.unwrap();
        let got = receiver.wait_for("/auth", 3, WAIT).await;
        assert_eq!(got[2].header("authorization"), "Bearer legacy");
        assert!(got[2].headers.get("x-api-key").is_none(), "{:?}", got[2].headers);
        running.stop().await;
    }

    async fn sends_signed_standard_webhooks(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        let mut new = NewEndpoint::new(receiver.url("/hook"));
        new.headers.insert("x-custom".into(), "yes".into());
        let created = fx.endpoints.create(&fx.context, tenant, new).await.unwrap();
        let clock = ManualClock::new();
        let running = fx.dispatcher(test_config(&clock));

        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("order.created", json!({"id": 7})).id("evt_7")).await.unwrap();
        let got = receiver.wait_for("/hook", 1, WAIT).await;
        let request = &got[0];
        assert_eq!(request.header("webhook-id"), "evt_7");
        assert_eq!(request.header("content-type"), "application/json");
        assert!(request.header("user-agent").starts_with("Switchyard-Webhooks/"));
        assert_eq!(request.header("x-custom"), "yes");
        assert_eq!(request.body.as_ref(), p.event.body.as_bytes());
        let timestamp: i64 = request.header("webhook-timestamp").parse().unwrap();
        assert!((timestamp - OffsetDateTime::now_utc().unix_timestamp()).abs() < 60);
        let secret = SigningSecret::parse(created.secret.expose_secret()).unwrap();
        assert_eq!(request.header("webhook-signature"), sign("evt_7", timestamp, &request.body, &secret));

        let detail = settled(&fx, tenant, p.deliveries[0], 1).await;
        assert_eq!(detail.delivery.status, DeliveryStatus::Succeeded);
        assert_eq!(detail.delivery.attempts, 1);
        assert_eq!(detail.attempts[0].status_code, Some(204));
        assert!(detail.attempts[0].succeeded);
        assert!(detail.delivery.finished_at.is_some());
        running.stop().await;
    }

    async fn an_unreadable_body_is_postponed_not_sent(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        fx.endpoint(tenant, &receiver.url("/hook"), &[]).await;
        let bad = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.bad", json!({}))).await.unwrap();
        let good = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.good", json!({}))).await.unwrap();
        let sealed = fx.stored_body(bad.event.id).await;
        // Another row's sealed body: it does not decrypt under this row's id.
        fx.set_stored_body(bad.event.id, &fx.stored_body(good.event.id).await).await;
        let clock = ManualClock::new();
        let running = fx.dispatcher(test_config(&clock));

        // The other event goes out; the unreadable one is given back, uncounted, for later.
        let got = receiver.wait_for("/hook", 1, WAIT).await;
        assert_eq!(got[0].body.as_ref(), good.event.body.as_bytes());
        let postponed = eventually(WAIT, "the unreadable delivery to be postponed", || async {
            let detail = get_delivery(&fx.database, tenant, bad.deliveries[0]).await.unwrap();
            (detail.delivery.status == DeliveryStatus::Pending
                && detail.delivery.next_attempt_at > OffsetDateTime::now_utc() + time::Duration::seconds(10))
                .then_some(detail)
        })
        .await;
        assert_eq!(postponed.delivery.attempts, 0);
        assert!(postponed.attempts.is_empty());

        // Once the body reads again (a vault outage ended, a restore was fixed), it is sent.
        fx.set_stored_body(bad.event.id, &sealed).await;
        clock.advance(Duration::from_secs(60));
        running.dispatcher.wake();
        let detail = settled(&fx, tenant, bad.deliveries[0], 1).await;
        assert_eq!(detail.delivery.status, DeliveryStatus::Succeeded);
        let got = receiver.wait_for("/hook", 2, WAIT).await;
        assert_eq!(got[1].body.as_ref(), bad.event.body.as_bytes());
        running.stop().await;
    }

    async fn retries_follow_the_schedule_on_a_manual_clock(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        fx.endpoint(tenant, &receiver.url("/flaky"), &["a.*"]).await;
        receiver.rule("/flaky", {
            let count = std::sync::atomic::AtomicUsize::new(0);
            move |_| {
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Reply::status(if n < 2 { 500 } else { 200 })
            }
        });
        let clock = ManualClock::new();
        let mut config = test_config(&clock);
        config.schedule = switchyard_http::JitteredSchedule::new(
            vec![Duration::ZERO, Duration::from_secs(5), Duration::from_secs(300)],
            0.2,
        );
        let running = fx.dispatcher(config);
        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({}))).await.unwrap();
        let id = p.deliveries[0];

        let first = settled(&fx, tenant, id, 1).await;
        assert_eq!(first.delivery.status, DeliveryStatus::Pending);
        assert_eq!(first.attempts[0].error_class.as_deref(), Some("server_error"));
        let wait = first.delivery.next_attempt_at - first.attempts[0].started_at;
        assert!(wait >= time::Duration::seconds(4) && wait <= time::Duration::seconds(6), "{wait}");
        // Nothing happens until the clock gets there.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.received("/flaky").len(), 1);

        clock.advance(Duration::from_secs(7));
        running.dispatcher.wake();
        let second = settled(&fx, tenant, id, 2).await;
        let wait = second.delivery.next_attempt_at - second.attempts[1].started_at;
        assert!(wait >= time::Duration::seconds(240) && wait <= time::Duration::seconds(360), "{wait}");
        clock.advance(Duration::from_secs(400));
        running.dispatcher.wake();
        let third = settled(&fx, tenant, id, 3).await;
        assert_eq!(third.delivery.status, DeliveryStatus::Succeeded);
        assert_eq!(third.delivery.attempts, 3);
        // Every attempt carries the same webhook-id and a fresh timestamp.
        let got = receiver.received("/flaky");
        assert!(got.iter().all(|r| r.header("webhook-id") == p.event.webhook_id));
        let stamps: Vec<i64> = got.iter().map(|r| r.header("webhook-timestamp").parse().unwrap()).collect();
        assert!(stamps[2] > stamps[0] + 400, "{stamps:?}");
        running.stop().await;
    }

    async fn retry_after_is_honoured_and_throttles_the_endpoint(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        fx.endpoint(tenant, &receiver.url("/busy"), &[]).await;
        receiver.rule("/busy", {
            let count = std::sync::atomic::AtomicUsize::new(0);
            move |_| {
                if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    Reply::status(429).header("retry-after", "120")
                } else {
                    Reply::status(200)
                }
            }
        });
        let clock = ManualClock::new();
        let mut config = test_config(&clock);
        config.schedule = switchyard_http::JitteredSchedule::new(vec![Duration::ZERO, Duration::from_secs(5)], 0.0);
        let running = fx.dispatcher(config);
        let first = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({}))).await.unwrap();
        let detail = settled(&fx, tenant, first.deliveries[0], 1).await;
        assert_eq!(detail.attempts[0].status_code, Some(429));
        assert_eq!(detail.attempts[0].response_headers.get("retry-after").map(String::as_str), Some("120"));
        let wait = detail.delivery.next_attempt_at - detail.attempts[0].started_at;
        assert!(wait >= time::Duration::seconds(119) && wait <= time::Duration::seconds(121), "{wait}");

        // The endpoint is paused: a new event waits too.
        let second = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({}))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.received("/busy").len(), 1);
        clock.advance(Duration::from_secs(125));
        running.dispatcher.wake();
        receiver.wait_for("/busy", 3, WAIT).await;
        assert_eq!(settled(&fx, tenant, first.deliveries[0], 2).await.delivery.status, DeliveryStatus::Succeeded);
        assert_eq!(settled(&fx, tenant, second.deliveries[0], 1).await.delivery.status, DeliveryStatus::Succeeded);
        running.stop().await;
    }

    async fn gone_disables_and_failures_are_reported(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        let (gone, _) = fx.endpoint(tenant, &receiver.url("/gone"), &["orders.*"]).await;
        let (dead, _) = fx.endpoint(tenant, &receiver.url("/dead"), &["invoices.*"]).await;
        fx.endpoint(tenant, &receiver.url("/ops"), &["switchyard.*"]).await;
        receiver.reply("/gone", Reply::status(410));
        receiver.reply("/dead", Reply::status(500).body("broken"));
        let clock = ManualClock::new();
        let mut config = test_config(&clock);
        config.schedule = switchyard_http::JitteredSchedule::new(vec![Duration::ZERO], 0.0);
        let running = fx.dispatcher(config);

        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("orders.created", json!({}))).await.unwrap();
        let detail = settled(&fx, tenant, p.deliveries[0], 1).await;
        assert_eq!(detail.delivery.status, DeliveryStatus::Failed);
        let endpoint = fx.endpoints.get(tenant, gone).await.unwrap();
        assert!(!endpoint.enabled);
        assert_eq!(endpoint.disabled_reason.as_deref(), Some("gone"));

        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("invoices.paid", json!({}))).await.unwrap();
        let detail = settled(&fx, tenant, p.deliveries[0], 1).await;
        assert_eq!(detail.delivery.status, DeliveryStatus::Failed, "dead letter");
        assert_eq!(detail.attempts[0].response_body_len, 6);
        assert!(fx.endpoints.get(tenant, dead).await.unwrap().enabled);

        let ops = receiver.wait_for("/ops", 3, WAIT).await;
        let mut types: Vec<String> = ops.iter().map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect();
        types.sort();
        assert_eq!(types, ["switchyard.delivery.exhausted", "switchyard.delivery.exhausted", "switchyard.endpoint.disabled"]);
        let disabled = ops.iter().find(|r| r.json()["type"] == "switchyard.endpoint.disabled").unwrap();
        assert_eq!(disabled.json()["data"]["endpoint_id"], gone.to_string());
        assert_eq!(disabled.json()["data"]["reason"], "gone");

        // A disabled endpoint gets no new deliveries; enabling it again works.
        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("orders.created", json!({}))).await.unwrap();
        assert!(p.deliveries.is_empty());
        fx.endpoints.enable(tenant, gone).await.unwrap();
        running.stop().await;
    }

    async fn redirects_and_timeouts_are_failures(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        fx.endpoint(tenant, &receiver.url("/moved"), &["moved.*"]).await;
        fx.endpoint(tenant, &receiver.url("/slow"), &["slow.*"]).await;
        receiver.reply("/moved", Reply::status(302).header("location", receiver.url("/elsewhere")));
        receiver.reply("/slow", Reply::status(200).delay(Duration::from_secs(3)));
        let clock = ManualClock::new();
        let mut config = test_config(&clock);
        config.timeout = Duration::from_millis(500);
        let running = fx.dispatcher(config);

        let moved = publish(&fx.database, &fx.vault, tenant, NewEvent::new("moved.x", json!({}))).await.unwrap();
        let slow = publish(&fx.database, &fx.vault, tenant, NewEvent::new("slow.x", json!({}))).await.unwrap();
        let detail = settled(&fx, tenant, moved.deliveries[0], 1).await;
        assert_eq!(detail.delivery.status, DeliveryStatus::Pending, "a redirect is retried, not followed");
        assert_eq!(detail.attempts[0].status_code, Some(302));
        assert_eq!(detail.attempts[0].error_class.as_deref(), Some("redirect"));
        assert!(receiver.received("/elsewhere").is_empty());

        let detail = settled(&fx, tenant, slow.deliveries[0], 1).await;
        assert_eq!(detail.attempts[0].error_class.as_deref(), Some("timeout"));
        assert!(detail.attempts[0].duration_ms < 2500, "{}", detail.attempts[0].duration_ms);
        assert_eq!(detail.delivery.status, DeliveryStatus::Pending);
        running.stop().await;
    }

    async fn retry_and_replay_resend_with_the_same_id(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        let (endpoint, _) = fx.endpoint(tenant, &receiver.url("/r"), &["a.*"]).await;
        receiver.reply("/r", Reply::status(500));
        let clock = ManualClock::new();
        let mut config = test_config(&clock);
        config.schedule = switchyard_http::JitteredSchedule::new(vec![Duration::ZERO], 0.0);
        let running = fx.dispatcher(config);
        let started = OffsetDateTime::now_utc() - time::Duration::seconds(1);

        let failed = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({"n": 1}))).await.unwrap();
        assert_eq!(settled(&fx, tenant, failed.deliveries[0], 1).await.delivery.status, DeliveryStatus::Failed);
        receiver.reply("/r", Reply::status(200));
        let retried = retry_delivery(&fx.database, tenant, failed.deliveries[0]).await.unwrap();
        // A polling dispatcher may claim it between the update and the read.
        assert!(matches!(retried.status, DeliveryStatus::Pending | DeliveryStatus::Sending), "{:?}", retried.status);
        let detail = settled(&fx, tenant, failed.deliveries[0], 2).await;
        assert_eq!(detail.delivery.status, DeliveryStatus::Succeeded);

        let mut ids = vec![failed.event.webhook_id.clone()];
        for n in 2..=3 {
            let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({"n": n}))).await.unwrap();
            settled(&fx, tenant, p.deliveries[0], 1).await;
            ids.push(p.event.webhook_id);
        }
        assert_eq!(receiver.received("/r").len(), 4);
        // Rotate: replays are signed with the current secret.
        fx.endpoints.rotate_secret(&fx.context, tenant, endpoint, switchyard_outbound::RotateSecret {
            grace: Some(Duration::ZERO),
            ..Default::default()
        }).await.unwrap();
        let current = fx.endpoints.get_secret(&fx.context, tenant, endpoint).await.unwrap();
        let replayed = replay(&fx.database, tenant, endpoint, ReplayFilter {
            since: started,
            until: None,
            statuses: vec![DeliveryStatus::Succeeded],
        }).await.unwrap();
        assert_eq!(replayed, 3);
        let got = receiver.wait_for("/r", 7, WAIT).await;
        let mut replay_ids: Vec<String> = got[4..].iter().map(|r| r.header("webhook-id").to_owned()).collect();
        replay_ids.sort();
        ids.sort();
        assert_eq!(replay_ids, ids);
        let secret = SigningSecret::parse(current.secret.expose_secret()).unwrap();
        for request in &got[4..] {
            let ts: i64 = request.header("webhook-timestamp").parse().unwrap();
            assert_eq!(request.header("webhook-signature"), sign(request.header("webhook-id"), ts, &request.body, &secret));
        }
        // An empty range replays nothing.
        let none = replay(&fx.database, tenant, endpoint, ReplayFilter {
            since: started - time::Duration::hours(2),
            until: Some(started - time::Duration::hours(1)),
            statuses: vec![],
        }).await.unwrap();
        assert_eq!(none, 0);
        running.stop().await;
    }

    async fn keeps_response_bodies_in_the_blob_store(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        fx.endpoint(tenant, &receiver.url("/talk"), &["a.*"]).await;
        let long = "x".repeat(70 * 1024);
        receiver.reply("/talk", Reply::status(200).body(long));
        let dir = tempfile::tempdir().unwrap();
        let config = switchyard_blob::BlobConfig::Local(switchyard_blob::LocalBlobConfig {
            path: Some(dir.path().join("blobs")),
        });
        let store = switchyard_blob::BlobStore::open(&config, dir.path()).await.unwrap();
        let bodies = switchyard_outbound::ResponseBodies::new(store, None);
        let clock = ManualClock::new();
        let dispatcher = switchyard_outbound::Dispatcher::with_response_bodies(
            fx.database.clone(), fx.vault.clone(), test_config(&clock), bodies.clone(),
        ).unwrap();
        let cancel = tokio_util::sync::CancellationToken::new();
        let handle = dispatcher.start(cancel.clone());
        let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({}))).await.unwrap();
        let detail = settled(&fx, tenant, p.deliveries[0], 1).await;
        let attempt = &detail.attempts[0];
        assert_eq!(attempt.response_body_len, 64 * 1024, "only the first 64 KiB are kept");
        let key = attempt.response_body_key.clone().expect("a blob key");
        assert!(key.starts_with(&format!("{tenant}/delivery-response/")));
        let body = bodies.get(tenant, &key).await.unwrap();
        assert_eq!(body.len(), 64 * 1024);
        assert!(bodies.get(TenantId::generate(), &key).await.is_err(), "another tenant cannot read it");
        cancel.cancel();
        handle.await.unwrap();
    }
}
