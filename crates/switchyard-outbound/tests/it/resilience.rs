//! Isolation between endpoints: circuit breakers, rate limits, ordering by key, a hanging
//! endpoint next to a healthy one, and disabling an endpoint that keeps failing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_core::TenantId;
use switchyard_http::{BreakerConfig, BreakerState, JitteredSchedule};
use switchyard_outbound::{
    DeliveryStatus, ManualClock, NewEndpoint, NewEvent, Ordering as KeyOrdering, get_delivery,
    list_deliveries, publish,
};
use switchyard_test_support::backend_tests;

use crate::support::{Fixture, Receiver, Reply, eventually, test_config};

const WAIT: Duration = Duration::from_secs(15);

backend_tests! { Fixture;
    async fn breaker_opens_postpones_and_probes(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        let (endpoint, _) = fx.endpoint(tenant, &receiver.url("/down"), &["a.*"]).await;
        let healthy = Arc::new(AtomicBool::new(false));
        receiver.rule("/down", {
            let healthy = Arc::clone(&healthy);
            move |_| Reply::status(if healthy.load(Ordering::SeqCst) { 204 } else { 503 })
        });
        let clock = ManualClock::new();
        let mut config = test_config(&clock);
        config.per_endpoint_concurrency = 1;
        config.breaker = Some(BreakerConfig {
            failure_rate: 0.5,
            window: Duration::from_secs(600),
            min_calls: 2,
            cool_down: Duration::from_secs(30),
            half_open_probes: 1,
        });
        let running = fx.dispatcher(config);
        let mut deliveries = Vec::new();
        for n in 0..5 {
            let p = publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({"n": n}))).await.unwrap();
            deliveries.push(p.deliveries[0]);
        }
        receiver.wait_for("/down", 2, WAIT).await;
        eventually(WAIT, "the breaker to open", || async {
            (running.dispatcher.breaker_state(endpoint) == Some(BreakerState::Open)).then_some(())
        }).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.received("/down").len(), 2, "an open breaker sends nothing");
        // Postponed, not failed: no attempt recorded, still pending.
        let waiting = eventually(WAIT, "postponed deliveries to be pending", || async {
            let page = list_deliveries(&fx.database, tenant, endpoint, Some(DeliveryStatus::Pending), None, 10).await.unwrap();
            (page.items.len() == 5).then_some(page.items)
        }).await;
        assert_eq!(waiting.iter().filter(|d| d.attempts == 0).count(), 3);

        healthy.store(true, Ordering::SeqCst);
        clock.advance(Duration::from_secs(31));
        running.dispatcher.wake();
        // The probe succeeds, the breaker closes and the three waiting deliveries go out.
        receiver.wait_for("/down", 5, WAIT).await;
        eventually(WAIT, "the breaker to close", || async {
            (running.dispatcher.breaker_state(endpoint) == Some(BreakerState::Closed)).then_some(())
        }).await;
        for id in &deliveries[2..] {
            eventually(WAIT, "delivery success", || async {
                let d = get_delivery(&fx.database, tenant, *id).await.unwrap();
                (d.delivery.status == DeliveryStatus::Succeeded).then_some(())
            }).await;
        }
        running.stop().await;
    }

    async fn rate_limit_spaces_deliveries(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        let mut new = NewEndpoint::new(receiver.url("/limited"));
        new.rate_limit = Some(5);
        fx.endpoints.create(&fx.context, tenant, new).await.unwrap();
        let clock = ManualClock::new();
        let running = fx.dispatcher(test_config(&clock));
        for n in 0..15 {
            publish(&fx.database, &fx.vault, tenant, NewEvent::new("a.b", json!({"n": n}))).await.unwrap();
        }
        let got = receiver.wait_for("/limited", 15, WAIT).await;
        let first = got[0].at;
        let span = got[14].at - first;
        assert!(span >= Duration::from_millis(2500), "15 deliveries at 5/s took only {span:?}");
        // At most 5 (one of slack for scheduling jitter) in any one-second window.
        for (i, start) in got.iter().enumerate() {
            let in_window = got[i..].iter().take_while(|r| r.at - start.at < Duration::from_secs(1)).count();
            assert!(in_window <= 6, "{in_window} arrivals within one second");
        }
        running.stop().await;
    }

    async fn ordering_by_key_blocks_only_the_failing_key(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        let mut new = NewEndpoint::new(receiver.url("/ordered"));
        new.ordering = KeyOrdering::Key;
        new.event_types = vec!["a.*".to_owned()];
        fx.endpoints.create(&fx.context, tenant, new).await.unwrap();
        receiver.rule("/ordered", |r| {
            Reply::status(if r.json()["data"]["key"] == "a" { 500 } else { 204 })
        });
        let mut ids = Vec::new();
        for n in 0..4 {
            for key in ["a", "b"] {
                let event = NewEvent::new("a.b", json!({"key": key, "n": n})).ordering_key(key);
                ids.push((key, publish(&fx.database, &fx.vault, tenant, event).await.unwrap().deliveries[0]));
            }
        }
        let clock = ManualClock::new();
        let running = fx.dispatcher(test_config(&clock));
        receiver.wait_for("/ordered", 5, WAIT).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got = receiver.received("/ordered");
        let keys: Vec<(String, i64)> = got.iter().map(|r| {
            let data = &r.json()["data"];
            (data["key"].as_str().unwrap().to_owned(), data["n"].as_i64().unwrap())
        }).collect();
        let b: Vec<i64> = keys.iter().filter(|(k, _)| k == "b").map(|(_, n)| *n).collect();
        assert_eq!(b, [0, 1, 2, 3], "key b in order");
        let a: Vec<i64> = keys.iter().filter(|(k, _)| k == "a").map(|(_, n)| *n).collect();
        assert_eq!(a, [0], "key a stops at its failing head");
        for (key, id) in &ids[2..] {
            if *key == "a" {
                let d = get_delivery(&fx.database, tenant, *id).await.unwrap();
                assert_eq!((d.delivery.status, d.delivery.attempts), (DeliveryStatus::Pending, 0));
            }
        }
        running.stop().await;
    }

    async fn a_hanging_endpoint_does_not_delay_a_healthy_one(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        fx.endpoint(tenant, &receiver.url("/hang"), &["slow.*"]).await;
        fx.endpoint(tenant, &receiver.url("/fast"), &["fast.*"]).await;
        receiver.reply("/hang", Reply::status(200).delay(Duration::from_secs(30)));
        let clock = ManualClock::new();
        let mut config = test_config(&clock);
        config.concurrency = 16;
        config.per_endpoint_concurrency = 4;
        config.timeout = Duration::from_secs(20);
        let running = fx.dispatcher(config);
        for n in 0..40 {
            publish(&fx.database, &fx.vault, tenant, NewEvent::new("slow.x", json!({"n": n}))).await.unwrap();
        }
        receiver.wait_for("/hang", 4, WAIT).await;
        let mut latencies = Vec::new();
        for n in 0..20 {
            let sent = Instant::now();
            publish(&fx.database, &fx.vault, tenant, NewEvent::new("fast.x", json!({"n": n}))).await.unwrap();
            let got = receiver.wait_for("/fast", n + 1, WAIT).await;
            latencies.push(got[n].at - sent);
        }
        let worst = latencies.iter().max().unwrap();
        assert!(*worst < Duration::from_millis(1000), "healthy endpoint waited {worst:?}");
        assert!(receiver.received("/hang").len() <= 4, "the hanging endpoint holds only its share");
        running.cancel.cancel();
    }

    async fn an_endpoint_failing_too_long_is_disabled_and_recovery_is_reported(fx) {
        let receiver = Receiver::start().await;
        let tenant = TenantId::generate();
        let (broken, _) = fx.endpoint(tenant, &receiver.url("/broken"), &["work.*"]).await;
        let (flaky, _) = fx.endpoint(tenant, &receiver.url("/flaky"), &["chores.*"]).await;
        fx.endpoint(tenant, &receiver.url("/ops"), &["switchyard.endpoint.*"]).await;
        receiver.reply("/broken", Reply::status(500));
        receiver.rule("/flaky", {
            let count = std::sync::atomic::AtomicUsize::new(0);
            move |_| Reply::status(if count.fetch_add(1, Ordering::SeqCst) == 0 { 500 } else { 204 })
        });
        let clock = ManualClock::new();
        let mut config = test_config(&clock);
        config.schedule = JitteredSchedule::new(vec![Duration::ZERO, Duration::from_secs(60), Duration::from_secs(7200)], 0.0);
        config.disable_after = Duration::from_secs(3600);
        let running = fx.dispatcher(config);

        publish(&fx.database, &fx.vault, tenant, NewEvent::new("work.a", json!({}))).await.unwrap();
        publish(&fx.database, &fx.vault, tenant, NewEvent::new("chores.a", json!({}))).await.unwrap();
        receiver.wait_for("/broken", 1, WAIT).await;
        receiver.wait_for("/flaky", 1, WAIT).await;
        eventually(WAIT, "the failure streak to start", || async {
            fx.endpoints.get(tenant, broken).await.unwrap().failing_since.map(|_| ())
        }).await;
        // The flaky endpoint recovers on its retry a minute later; the broken one keeps failing.
        clock.advance(Duration::from_secs(61));
        running.dispatcher.wake();
        receiver.wait_for("/flaky", 2, WAIT).await;
        receiver.wait_for("/broken", 2, WAIT).await;
        let ops = receiver.wait_for("/ops", 1, WAIT).await;
        assert_eq!(ops[0].json()["type"], "switchyard.endpoint.recovered");
        assert_eq!(ops[0].json()["data"]["endpoint_id"], flaky.to_string());
        assert!(fx.endpoints.get(tenant, flaky).await.unwrap().failing_since.is_none());
        // Two hours later, still failing: disabled.
        clock.advance(Duration::from_secs(7300));
        running.dispatcher.wake();
        receiver.wait_for("/broken", 3, WAIT).await;
        let ops = receiver.wait_for("/ops", 2, WAIT).await;
        assert_eq!(ops[1].json()["type"], "switchyard.endpoint.disabled");
        assert_eq!(ops[1].json()["data"]["reason"], "failing");
        let endpoint = fx.endpoints.get(tenant, broken).await.unwrap();
        assert!(!endpoint.enabled);
        assert_eq!(endpoint.disabled_reason.as_deref(), Some("failing"));
        running.stop().await;
    }
}
