//! Conformance of the queue on SQLite and PostgreSQL: ordering, unique keys, transactional
//! enqueue, leases and their expiry, fairness across tenants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use switchyard_core::TenantId;
use switchyard_jobs::queue::{self, ClaimRequest, JobId, JobStatus, NewJob};
use switchyard_store::Database;
use switchyard_test_support::{TestStore, backend_tests};
use time::OffsetDateTime;

fn database(store: &TestStore) -> Database {
    store.store.database().clone()
}

fn request(owner: &str, limit: u32) -> ClaimRequest {
    ClaimRequest {
        owner: owner.to_owned(),
        kinds: vec!["test".to_owned()],
        exclude_tenants: Vec::new(),
        limit,
        per_tenant: u32::MAX,
        lease: time::Duration::seconds(30),
    }
}

async fn claim_one(db: &Database, owner: &str) -> Option<JobId> {
    let jobs = queue::claim(db, &request(owner, 1)).await.unwrap();
    assert!(jobs.len() <= 1);
    jobs.first().map(|job| job.id)
}

backend_tests! { TestStore;
    async fn claims_by_priority_then_run_at(store) {
        let db = database(&store);
        let now = OffsetDateTime::now_utc();
        let low = queue::enqueue(&db, NewJob::new("test", json!(1)).priority(-1)).await.unwrap().id;
        let late = queue::enqueue(&db, NewJob::new("test", json!(2)).run_at(now - time::Duration::seconds(5))).await.unwrap().id;
        let early = queue::enqueue(&db, NewJob::new("test", json!(3)).run_at(now - time::Duration::seconds(10))).await.unwrap().id;
        let high = queue::enqueue(&db, NewJob::new("test", json!(4)).priority(10)).await.unwrap().id;
        let future = queue::enqueue(&db, NewJob::new("test", json!(5)).priority(100).run_at(now + time::Duration::hours(1))).await.unwrap().id;
        let other_kind = queue::enqueue(&db, NewJob::new("other", json!(6))).await.unwrap().id;

        let mut order = Vec::new();
        while let Some(id) = claim_one(&db, "wrk_a").await {
            order.push(id);
        }
        assert_eq!(order, vec![high, early, late, low]);
        let future = queue::get(&db, future).await.unwrap().unwrap();
        assert_eq!(future.status, JobStatus::Queued, "a job is not claimed before its run_at");
        let other = queue::get(&db, other_kind).await.unwrap().unwrap();
        assert_eq!(other.status, JobStatus::Queued, "only the requested kinds are claimed");

        let claimed = queue::get(&db, high).await.unwrap().unwrap();
        assert_eq!(claimed.status, JobStatus::Running);
        assert_eq!(claimed.attempts, 1);
        assert_eq!(claimed.lease_owner.as_deref(), Some("wrk_a"));
        assert!(claimed.lease_expires_at.is_some());
        assert_eq!(claimed.payload, json!(4));
    }

    async fn unique_key_enqueues_once(store) {
        let db = database(&store);
        let tenant = TenantId::generate();
        let first = queue::enqueue(&db, NewJob::new("test", json!({"a": 1})).tenant(tenant).unique_key("sync:conn_1")).await.unwrap();
        let second = queue::enqueue(&db, NewJob::new("test", json!({"a": 2})).unique_key("sync:conn_1")).await.unwrap();
        assert!(first.created);
        assert!(!second.created);
        assert_eq!(first.id, second.id);
        let job = queue::get(&db, first.id).await.unwrap().unwrap();
        assert_eq!(job.payload, json!({"a": 1}));
        assert_eq!(job.tenant, Some(tenant));
        assert_eq!(job.unique_key.as_deref(), Some("sync:conn_1"));
        let queued = queue::list(&db, JobStatus::Queued, None, None, 100).await.unwrap();
        assert_eq!(queued.len(), 1);

        // In a transaction, too, and mixed with new keys.
        let mut tx = db.begin().await.unwrap();
        let again = queue::enqueue_in(&mut tx, NewJob::new("test", json!(3)).unique_key("sync:conn_1")).await.unwrap();
        let fresh = queue::enqueue_in(&mut tx, NewJob::new("test", json!(4)).unique_key("sync:conn_2")).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(again.id, first.id);
        assert!(fresh.created);

        // A key repeated within one batch: the first job wins, as if enqueued one by one.
        let batch = vec![
            NewJob::new("test", json!(5)).unique_key("sync:conn_3"),
            NewJob::new("test", json!(6)),
            NewJob::new("test", json!(7)).unique_key("sync:conn_3"),
            NewJob::new("test", json!(8)).unique_key("sync:conn_1"),
        ];
        let results = queue::enqueue_many(&db, batch).await.unwrap();
        assert_eq!(results.iter().map(|r| r.created).collect::<Vec<_>>(), vec![true, true, false, false]);
        assert_eq!(results[2].id, results[0].id);
        assert_eq!(results[3].id, first.id);
        assert_eq!(queue::get(&db, results[0].id).await.unwrap().unwrap().payload, json!(5));
    }

    async fn enqueue_follows_the_callers_transaction(store) {
        let db = database(&store);
        let mut tx = db.begin().await.unwrap();
        let rolled_back = queue::enqueue_in(&mut tx, NewJob::new("test", json!("no"))).await.unwrap();
        tx.rollback().await.unwrap();
        assert!(queue::get(&db, rolled_back.id).await.unwrap().is_none());

        // Dropping without commit is a rollback too.
        {
            let mut tx = db.begin().await.unwrap();
            queue::enqueue_in(&mut tx, NewJob::new("test", json!("dropped"))).await.unwrap();
        }
        assert!(queue::claim(&db, &request("wrk_a", 10)).await.unwrap().is_empty());

        let mut tx = db.begin().await.unwrap();
        let committed = queue::enqueue_in(&mut tx, NewJob::new("test", json!("yes"))).await.unwrap();
        // Invisible to others until the commit.
        tx.commit().await.unwrap();
        let claimed = queue::claim(&db, &request("wrk_a", 10)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, committed.id);
    }

    async fn expired_lease_is_claimed_again(store) {
        let db = database(&store);
        let id = queue::enqueue(&db, NewJob::new("test", json!(null))).await.unwrap().id;
        let mut short = request("wrk_dead", 1);
        // Generous margins: a loaded CI machine may pause any step by a few hundred ms. The
        // "still leased" checks have 500 ms of slack; the "expired" check can only wait longer.
        short.lease = time::Duration::milliseconds(1_000);
        let job = queue::claim(&db, &short).await.unwrap().pop().unwrap();
        assert_eq!(job.id, id);

        // Not expired yet: nobody else can take it, the reaper leaves it alone.
        assert!(queue::reap_expired(&db).await.unwrap().is_empty());
        assert!(claim_one(&db, "wrk_b").await.is_none());

        // A heartbeat extends the lease.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(queue::heartbeat(&db, "wrk_dead", time::Duration::milliseconds(1_000)).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(queue::reap_expired(&db).await.unwrap().is_empty(), "the heartbeat kept it");

        // The process "dies": no more heartbeats. 500 + 700 ms after the heartbeat its
        // one-second lease has certainly expired.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(queue::reap_expired(&db).await.unwrap(), vec!["test".to_owned()]);
        let reaped = queue::get(&db, id).await.unwrap().unwrap();
        assert_eq!(reaped.status, JobStatus::Queued);
        assert_eq!(reaped.last_error.as_deref(), Some("lease expired"));
        let again = queue::claim(&db, &request("wrk_b", 1)).await.unwrap().pop().unwrap();
        assert_eq!(again.id, id);
        assert_eq!(again.attempts, 2, "the lost attempt counts");

        // The old owner's late completion is refused; the new owner's is recorded.
        assert!(!queue::complete(&db, &job, "wrk_dead").await.unwrap());
        assert!(queue::complete(&db, &again, "wrk_b").await.unwrap());
        let done = queue::get(&db, id).await.unwrap().unwrap();
        assert_eq!(done.status, JobStatus::Succeeded);
        assert!(done.lease_owner.is_none());
        assert!(done.finished_at.is_some());
    }

    async fn release_returns_jobs_uncounted(store) {
        let db = database(&store);
        for n in 0..3 {
            queue::enqueue(&db, NewJob::new("test", json!(n))).await.unwrap();
        }
        let claimed = queue::claim(&db, &request("wrk_a", 10)).await.unwrap();
        assert_eq!(claimed.len(), 3);
        assert_eq!(queue::release(&db, "wrk_a", Some(claimed[0].id)).await.unwrap(), 1);
        assert_eq!(queue::release(&db, "wrk_a", None).await.unwrap(), 2);
        let again = queue::claim(&db, &request("wrk_b", 10)).await.unwrap();
        assert_eq!(again.len(), 3);
        assert!(again.iter().all(|job| job.attempts == 1));
    }

    async fn a_backlog_does_not_starve_another_tenant(store) {
        let db = database(&store);
        let big = TenantId::generate();
        let small = TenantId::generate();
        let backlog: Vec<NewJob> = (0..5_000)
            .map(|n| NewJob::new("test", json!(n)).tenant(big))
            .collect();
        queue::enqueue_many(&db, backlog).await.unwrap();
        let mut small_ids = Vec::new();
        for n in 0..10 {
            small_ids.push(queue::enqueue(&db, NewJob::new("test", json!(n)).tenant(small)).await.unwrap().id);
        }
        // Claims of 10, like a worker with 10 free slots.
        let mut claims = 0;
        let mut pending: std::collections::HashSet<JobId> = small_ids.into_iter().collect();
        while !pending.is_empty() {
            claims += 1;
            assert!(claims <= 2, "tenant B waited more than 2 claims of 10 behind 5,000 jobs of A");
            for job in queue::claim(&db, &request("wrk_a", 10)).await.unwrap() {
                pending.remove(&job.id);
            }
        }
    }

    async fn every_tenant_gets_its_turn_in_each_claim(store) {
        let db = database(&store);
        let big = TenantId::generate();
        let small: Vec<TenantId> = (0..3).map(|_| TenantId::generate()).collect();
        // The big tenant's backlog spans two kinds; its rank counts across both.
        let backlog: Vec<NewJob> = (0..3_000)
            .map(|n| NewJob::new(if n % 2 == 0 { "test" } else { "other" }, json!(n)).tenant(big))
            .collect();
        queue::enqueue_many(&db, backlog).await.unwrap();
        let mut few = Vec::new();
        for tenant in &small {
            few.extend((0..4).map(|n| NewJob::new("test", json!(n)).tenant(*tenant)));
        }
        few.extend((0..4).map(|n| NewJob::new("other", json!(n)))); // platform jobs
        queue::enqueue_many(&db, few).await.unwrap();

        let mut req = request("wrk_a", 10);
        req.kinds = vec!["test".to_owned(), "other".to_owned()];
        let per_tenant = |jobs: &[queue::Job]| {
            let mut counts = std::collections::HashMap::new();
            for job in jobs {
                *counts.entry(job.tenant.map(|t| t.to_string()).unwrap_or_default()).or_insert(0) += 1;
            }
            counts
        };
        // Five tenants (platform jobs count as one): every claim of 10 takes each one's first
        // two jobs, whatever the backlog behind them.
        for round in 0..2 {
            let claimed = queue::claim(&db, &req).await.unwrap();
            let counts = per_tenant(&claimed);
            assert_eq!(counts.len(), 5, "round {round}: {counts:?}");
            assert!(counts.values().all(|n| *n == 2), "round {round}: {counts:?}");
        }
        // Only the big tenant is left: a claim is full again.
        let claimed = queue::claim(&db, &req).await.unwrap();
        assert_eq!(claimed.len(), 10);
        assert!(claimed.iter().all(|job| job.tenant == Some(big)));

        // The per-tenant cap holds within a claim, and platform jobs can be excluded too.
        queue::enqueue(&db, NewJob::new("test", json!("s")).tenant(small[0])).await.unwrap();
        queue::enqueue(&db, NewJob::new("test", json!("p"))).await.unwrap();
        let mut capped = request("wrk_b", 10);
        capped.kinds = req.kinds.clone();
        capped.per_tenant = 1;
        capped.exclude_tenants = vec![String::new()];
        let claimed = queue::claim(&db, &capped).await.unwrap();
        let counts = per_tenant(&claimed);
        assert_eq!(counts.len(), 2, "{counts:?}");
        assert!(counts.values().all(|n| *n == 1));
        assert!(!counts.contains_key(""), "platform jobs were excluded");
    }

    async fn priority_orders_a_tenants_jobs_across_kinds(store) {
        let db = database(&store);
        let tenant = TenantId::generate();
        let now = OffsetDateTime::now_utc();
        let early = queue::enqueue(&db, NewJob::new("test", json!(1)).tenant(tenant).run_at(now - time::Duration::seconds(10))).await.unwrap().id;
        let urgent = queue::enqueue(&db, NewJob::new("other", json!(2)).tenant(tenant).priority(5)).await.unwrap().id;
        let late = queue::enqueue(&db, NewJob::new("other", json!(3)).tenant(tenant).run_at(now - time::Duration::seconds(5))).await.unwrap().id;
        let mut req = request("wrk_a", 1);
        req.kinds = vec!["test".to_owned(), "other".to_owned()];
        let mut order = Vec::new();
        while let Some(job) = queue::claim(&db, &req).await.unwrap().pop() {
            order.push(job.id);
        }
        assert_eq!(order, vec![urgent, early, late]);
    }

    async fn excluded_tenants_are_skipped(store) {
        let db = database(&store);
        let busy = TenantId::generate();
        queue::enqueue(&db, NewJob::new("test", json!(1)).tenant(busy)).await.unwrap();
        let platform = queue::enqueue(&db, NewJob::new("test", json!(2))).await.unwrap().id;
        let mut req = request("wrk_a", 10);
        req.exclude_tenants = vec![busy.to_string()];
        let claimed = queue::claim(&db, &req).await.unwrap();
        assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![platform]);
    }
}
