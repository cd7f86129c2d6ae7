//! The job engine's retention classes on SQLite and PostgreSQL: finished runs (with their
//! attempts), succeeded and dead jobs go; unfinished work stays whatever its age.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchyard_jobs::{
    queue::{self, ClaimRequest, JobError, JobStatus, NewJob},
    retention::{self, RetentionPeriods},
    runs::{AttemptResult, NewRun, RunStore, RunTrigger},
    schedule::ManualClock,
};
use switchyard_store::{
    Database,
    retention::{RetentionClass, count_expired, purge_expired},
};
use switchyard_test_support::{TestStore, backend_tests};
use time::{OffsetDateTime, macros::datetime};

const DAY: Duration = Duration::from_secs(86_400);

fn classes() -> Vec<RetentionClass> {
    retention::classes(RetentionPeriods {
        runs: 180 * DAY,
        jobs_succeeded: 7 * DAY,
        jobs_dead: 180 * DAY,
    })
}

fn class(name: &str) -> RetentionClass {
    classes()
        .into_iter()
        .find(|class| class.name == name)
        .unwrap()
}

fn claim_request(limit: u32) -> ClaimRequest {
    ClaimRequest {
        owner: "wrk_retention".to_owned(),
        kinds: vec!["test".to_owned()],
        exclude_tenants: Vec::new(),
        limit,
        per_tenant: limit,
        lease: time::Duration::minutes(5),
    }
}

async fn purge(db: &Database, name: &str, cutoff: OffsetDateTime) -> (u64, u64) {
    let class = class(name);
    let counted = count_expired(db, &class, cutoff).await.unwrap().rows;
    let purged = purge_expired(db, &class, cutoff, 2).await.unwrap().rows;
    (counted, purged)
}

backend_tests! { TestStore;
    async fn finished_jobs_go_and_unfinished_stay(store) {
        let db = store.store.database().clone();
        for n in 0..5 {
            queue::enqueue(&db, NewJob::new("test", json!(n)).max_attempts(1)).await.unwrap();
        }
        let queued = queue::enqueue(
            &db,
            NewJob::new("test", json!("later")).run_at(OffsetDateTime::now_utc() + time::Duration::hours(1)),
        ).await.unwrap().id;
        let claimed = queue::claim(&db, &claim_request(5)).await.unwrap();
        assert_eq!(claimed.len(), 5);
        // Three succeed, one dies, one stays running.
        for job in &claimed[..3] {
            assert!(queue::complete(&db, job, "wrk_retention").await.unwrap());
        }
        let dead = &claimed[3];
        assert!(queue::fail(&db, dead, "wrk_retention", &JobError::internal("boom"), None).await.unwrap());
        let running = claimed[4].id;

        // Nothing is old enough yet.
        let now = OffsetDateTime::now_utc();
        assert_eq!(purge(&db, "jobs_succeeded", now - time::Duration::days(7)).await, (0, 0));

        // With the cut-off after they finished: the three succeeded go in batches of two…
        let later = now + time::Duration::seconds(1);
        assert_eq!(purge(&db, "jobs_succeeded", later).await, (3, 3));
        for job in &claimed[..3] {
            assert!(queue::get(&db, job.id).await.unwrap().is_none());
        }
        // …the dead one only by its own class, and the running and queued ones never.
        assert_eq!(queue::get(&db, dead.id).await.unwrap().unwrap().status, JobStatus::Dead);
        assert_eq!(purge(&db, "jobs_dead", later).await, (1, 1));
        assert!(queue::get(&db, dead.id).await.unwrap().is_none());
        assert_eq!(queue::get(&db, running).await.unwrap().unwrap().status, JobStatus::Running);
        assert_eq!(queue::get(&db, queued).await.unwrap().unwrap().status, JobStatus::Queued);
    }

    async fn finished_runs_go_with_their_attempts(store) {
        let db = store.store.database().clone();
        let clock = Arc::new(ManualClock::new(datetime!(2024-05-01 12:00:00 UTC)));
        let runs = RunStore::new(&db).with_clock(Arc::<ManualClock>::clone(&clock));
        let new_run = |subject: &str| NewRun {
            tenant: None,
            subject: subject.to_owned(),
            trigger: RunTrigger::Manual,
            kind: "sync".to_owned(),
            payload: json!({}),
            job_id: None,
        };
        let finished = runs.create_run(new_run("finished")).await.unwrap().id;
        runs.start_attempt(None, finished).await.unwrap();
        runs.finish_attempt(None, finished, 1, AttemptResult::Succeeded, Default::default()).await.unwrap();
        let unfinished = runs.create_run(new_run("unfinished")).await.unwrap().id;
        runs.start_attempt(None, unfinished).await.unwrap();
        let fresh = {
            clock.advance(time::Duration::days(200));
            let id = runs.create_run(new_run("fresh")).await.unwrap().id;
            runs.start_attempt(None, id).await.unwrap();
            runs.finish_attempt(None, id, 1, AttemptResult::Succeeded, Default::default()).await.unwrap();
            id
        };

        let cutoff = datetime!(2024-05-01 12:00:00 UTC) + time::Duration::days(20);
        assert_eq!(purge(&db, "runs", cutoff).await, (1, 1));
        assert!(runs.get_run(None, finished).await.unwrap().is_none());
        assert!(runs.get_run(None, unfinished).await.unwrap().is_some(), "running runs stay");
        assert!(runs.get_run(None, fresh).await.unwrap().is_some(), "younger runs stay");

        // The attempts went with their run.
        let attempts = "SELECT COUNT(*) FROM run_attempts WHERE run_id = $1";
        let left: i64 = match &db {
            Database::Sqlite(pool) => sqlx::query_scalar(attempts).bind(finished.to_string()).fetch_one(pool).await,
            Database::Postgres(pool) => sqlx::query_scalar(attempts).bind(finished.to_string()).fetch_one(pool).await,
        }.unwrap();
        assert_eq!(left, 0);
    }
}
