//! The per-endpoint backlog gauge as `/metrics` renders it (the server's process-wide
//! recorder): one series per rank whatever the endpoints, so an endpoint that drops out of the
//! top N leaves nothing behind. Every other test's dispatcher publishes no ranks.

use std::time::Duration;

use serde_json::json;
use switchyard_core::TenantId;
use switchyard_outbound::{DispatcherConfig, ManualClock, NewEvent, publish};
use switchyard_test_support::backend_tests;

use crate::support::{Fixture, eventually, test_config};

const WAIT: Duration = Duration::from_secs(10);

/// The SQLite and PostgreSQL halves share the process's gauges: one at a time.
static GAUGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every `switchyard_outbound_backlog` series, by its rendered labels.
fn backlog_series() -> Vec<(String, f64)> {
    let text = switchyard_server::metrics::install_recorder()
        .unwrap()
        .render();
    let mut series: Vec<(String, f64)> = text
        .lines()
        .filter_map(|line| line.strip_prefix("switchyard_outbound_backlog{"))
        .filter_map(|rest| {
            let (labels, value) = rest.split_once("} ")?;
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    series
}

fn ranks(first: f64, second: f64) -> Vec<(String, f64)> {
    vec![
        (r#"rank="1""#.to_owned(), first),
        (r#"rank="2""#.to_owned(), second),
    ]
}

async fn until_ranks(first: f64, second: f64) {
    let wanted = ranks(first, second);
    let what = format!("backlog ranks {wanted:?}");
    eventually(WAIT, &what, || {
        let got = backlog_series();
        let done = got == wanted;
        async move { done.then_some(()) }
    })
    .await;
}

async fn publish_n(fx: &Fixture, tenant: TenantId, event_type: &str, n: usize) {
    for _ in 0..n {
        let event = NewEvent::new(event_type, json!({}));
        publish(&fx.database, &fx.vault, tenant, event)
            .await
            .unwrap();
    }
}

backend_tests! { Fixture;
    async fn the_endpoint_backlog_is_the_top_n_by_rank(fx) {
        let _gauges = GAUGES.lock().await;
        switchyard_server::metrics::install_recorder().unwrap();
        let tenant = TenantId::generate();
        let mut endpoints = Vec::new();
        for (name, n) in [("a", 3), ("b", 2), ("c", 1)] {
            let event_type = format!("{name}.x");
            let url = format!("https://example.com/{name}");
            let (id, _) = fx.endpoint(tenant, &url, &[event_type.as_str()]).await;
            publish_n(&fx, tenant, &event_type, n).await;
            // Disabled after the fan-out: its deliveries wait, so the backlog holds still.
            fx.endpoints.disable(tenant, id, "test").await.unwrap();
            endpoints.push(id);
        }
        let clock = ManualClock::new();
        let config = || DispatcherConfig {
            backlog_top: 2,
            housekeeping_interval: Duration::from_millis(50),
            ..test_config(&clock)
        };
        let running = fx.dispatcher(config());
        until_ranks(3.0, 2.0).await;
        running.stop().await;

        // c overtakes a; b drops out of the top 2 and leaves no series behind.
        fx.endpoints.enable(tenant, endpoints[2]).await.unwrap();
        publish_n(&fx, tenant, "c.x", 3).await;
        fx.endpoints.disable(tenant, endpoints[2], "test").await.unwrap();
        let running = fx.dispatcher(config());
        until_ranks(4.0, 3.0).await;

        // Deleting the endpoints empties the queue: every rank reads 0, still two series.
        for id in endpoints {
            fx.endpoints.delete(&fx.context, tenant, id).await.unwrap();
        }
        until_ranks(0.0, 0.0).await;
        running.stop().await;
    }
}
