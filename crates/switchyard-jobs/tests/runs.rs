//! Runs and attempts on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use switchyard_core::TenantId;
use switchyard_jobs::{
    runs::{
        AttemptOutcome, AttemptResult, Counters, Failure, FailureClass, NewRun, Run, RunError,
        RunFilter, RunId, RunOrder, RunStatus, RunStore, RunTrigger,
    },
    schedule::ManualClock,
};
use switchyard_store::{Database, NewTenant};
use switchyard_test_support::{TestStore, backend_tests};
use time::{Duration, OffsetDateTime, macros::datetime};

const START: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);

fn runs(test: &TestStore) -> (RunStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START));
    (
        RunStore::new(test.database()).with_clock(Arc::<ManualClock>::clone(&clock)),
        clock,
    )
}

async fn tenant(test: &TestStore, name: &str) -> TenantId {
    test.create_tenant(NewTenant {
        name: name.to_owned(),
        environment: None,
    })
    .await
    .unwrap()
    .id
}

fn new_run(tenant: Option<TenantId>, subject: &str, trigger: RunTrigger) -> NewRun {
    NewRun {
        tenant,
        subject: subject.to_owned(),
        trigger,
        kind: "sync".to_owned(),
        payload: json!({"stream": "users"}),
        job_id: None,
    }
}

fn counters(pairs: &[(&str, i64)]) -> Counters {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), *value))
        .collect()
}

fn failed(class: FailureClass, will_retry: bool) -> AttemptResult {
    AttemptResult::Failed {
        failure: Failure {
            class,
            message: format!("{class} happened"),
        },
        will_retry,
    }
}

fn ids(runs: &[Run]) -> Vec<RunId> {
    runs.iter().map(|run| run.id).collect()
}

backend_tests! { TestStore;
    async fn creates_and_reads_a_run(test) {
        let (store, _) = runs(&test);
        let a = tenant(&test, "A").await;
        let run = store.create_run(new_run(Some(a), "connection:con_1/stream:users", RunTrigger::Manual)).await.unwrap();
        assert_eq!((run.status, run.trigger, run.created_at), (RunStatus::Queued, RunTrigger::Manual, START));
        assert!(run.id.to_string().starts_with("run_"));
        let read = store.get_run(Some(a), run.id).await.unwrap().unwrap();
        assert_eq!(read.run, run, "a run reads back exactly as created");
        assert!(read.attempts.is_empty());

        let attached = store.attach_job(Some(a), run.id, "job_01").await.unwrap();
        assert_eq!(attached.job_id.as_deref(), Some("job_01"));
        assert_eq!(store.get_run(Some(a), run.id).await.unwrap().unwrap().run, attached);
    }

    async fn attempts_drive_the_run(test) {
        let (store, clock) = runs(&test);
        let run = store.create_run(new_run(None, "purge", RunTrigger::Schedule)).await.unwrap();

        clock.advance(Duration::seconds(1));
        let first = store.start_attempt(None, run.id).await.unwrap();
        assert_eq!(first.attempt, 1);
        let running = store.get_run(None, run.id).await.unwrap().unwrap().run;
        assert_eq!((running.status, running.started_at), (RunStatus::Running, Some(START + Duration::seconds(1))));

        clock.advance(Duration::milliseconds(2_500));
        let after_first = store.finish_attempt(
            None, run.id, 1, failed(FailureClass::RateLimited, true), counters(&[("pages", 2)]),
        ).await.unwrap();
        assert_eq!(after_first.status, RunStatus::Queued, "a failure the queue retries sends the run back to queued");
        assert_eq!(after_first.error.as_ref().unwrap().class, FailureClass::RateLimited);
        assert_eq!(after_first.finished_at, None);

        clock.advance(Duration::seconds(10));
        assert_eq!(store.start_attempt(None, run.id).await.unwrap().attempt, 2);
        clock.advance(Duration::seconds(4));
        let done = store.finish_attempt(
            None, run.id, 2, AttemptResult::Succeeded, counters(&[("pages", 3), ("records_added", 10)]),
        ).await.unwrap();
        assert_eq!(done.status, RunStatus::Succeeded);
        assert_eq!(done.error, None, "success clears the error");
        assert_eq!(done.counters, counters(&[("pages", 5), ("records_added", 10)]), "counters add up");
        assert_eq!(done.started_at, Some(START + Duration::seconds(1)), "started at the first attempt");
        assert_eq!(done.finished_at, Some(clock_now(&clock)));

        let read = store.get_run(None, run.id).await.unwrap().unwrap();
        assert_eq!(read.run, done);
        let summary: Vec<_> = read.attempts.iter()
            .map(|a| (a.attempt, a.outcome, a.error.as_ref().map(|e| e.class), a.duration_ms))
            .collect();
        assert_eq!(summary, [
            (1, Some(AttemptOutcome::Failed), Some(FailureClass::RateLimited), Some(2_500)),
            (2, Some(AttemptOutcome::Succeeded), None, Some(4_000)),
        ]);
        assert_eq!(read.attempts[0].error.as_ref().unwrap().message, "rate_limited happened");
        assert_eq!(read.attempts[1].counters, counters(&[("pages", 3), ("records_added", 10)]));

        assert!(matches!(store.start_attempt(None, run.id).await,
            Err(RunError::RunFinished { status: RunStatus::Succeeded })));
        assert!(matches!(store.finish_attempt(None, run.id, 2, AttemptResult::Succeeded, Counters::new()).await,
            Err(RunError::AttemptFinished { attempt: 2 })));
        assert!(matches!(store.finish_attempt(None, run.id, 9, AttemptResult::Succeeded, Counters::new()).await,
            Err(RunError::AttemptNotFound { attempt: 9 })));
        assert!(matches!(store.start_attempt(None, RunId::generate()).await, Err(RunError::RunNotFound)));
    }

    async fn a_new_attempt_abandons_an_unfinished_one(test) {
        let (store, clock) = runs(&test);
        let run = store.create_run(new_run(None, "s", RunTrigger::Manual)).await.unwrap();
        store.start_attempt(None, run.id).await.unwrap();
        clock.advance(Duration::seconds(30));
        assert_eq!(store.start_attempt(None, run.id).await.unwrap().attempt, 2);
        let attempts = store.get_run(None, run.id).await.unwrap().unwrap().attempts;
        assert_eq!(attempts[0].outcome, Some(AttemptOutcome::Abandoned));
        assert_eq!(attempts[0].duration_ms, Some(30_000));
        assert_eq!(attempts[1].outcome, None);
        // The abandoned attempt can no longer report.
        assert!(matches!(store.finish_attempt(None, run.id, 1, AttemptResult::Succeeded, Counters::new()).await,
            Err(RunError::AttemptFinished { attempt: 1 })));
    }

    async fn a_final_failure_is_retried_as_a_new_run(test) {
        let (store, clock) = runs(&test);
        let a = tenant(&test, "A").await;
        let run = store.create_run(new_run(Some(a), "s", RunTrigger::Schedule)).await.unwrap();
        store.start_attempt(Some(a), run.id).await.unwrap();
        let long_message = "x".repeat(10_000);
        let failed_run = store.finish_attempt(Some(a), run.id, 1, AttemptResult::Failed {
            failure: Failure { class: FailureClass::Auth, message: long_message },
            will_retry: false,
        }, Counters::new()).await.unwrap();
        assert_eq!(failed_run.status, RunStatus::Failed);
        assert_eq!(failed_run.error.as_ref().unwrap().message.len(), 4_000, "messages are capped");
        assert!(!FailureClass::Auth.is_retryable());

        clock.advance(Duration::minutes(5));
        let retry = store.retry_run(Some(a), run.id).await.unwrap();
        assert_eq!(retry.original.retried_by, Some(retry.retry.id));
        assert_eq!(retry.original.status, RunStatus::Failed, "the original stays as it was");
        let new = &retry.retry;
        assert_eq!((new.status, new.trigger, new.retry_of), (RunStatus::Queued, RunTrigger::Retry, Some(run.id)));
        assert_eq!((new.tenant, new.subject.as_str(), new.kind.as_str()), (Some(a), "s", "sync"));
        assert_eq!(new.payload, json!({"stream": "users"}), "what the caller re-enqueues");
        assert_eq!(new.created_at, START + Duration::minutes(5));
        assert_eq!(store.get_run(Some(a), new.id).await.unwrap().unwrap().run, *new);
        assert_eq!(store.get_run(Some(a), run.id).await.unwrap().unwrap().run, retry.original);

        assert!(matches!(store.retry_run(Some(a), run.id).await,
            Err(RunError::AlreadyRetried { retry }) if retry == new.id));
        assert!(matches!(store.retry_run(Some(a), new.id).await,
            Err(RunError::NotRetryable { status: RunStatus::Queued })));
    }

    async fn cancelling_is_final(test) {
        let (store, _) = runs(&test);
        let run = store.create_run(new_run(None, "s", RunTrigger::Webhook)).await.unwrap();
        store.start_attempt(None, run.id).await.unwrap();
        let cancelled = store.cancel_run(None, run.id).await.unwrap();
        assert_eq!(cancelled.status, RunStatus::Cancelled);
        assert!(cancelled.finished_at.is_some());
        // The worker finishes its attempt afterwards: recorded, but the run stays cancelled.
        let after = store.finish_attempt(None, run.id, 1, AttemptResult::Succeeded, counters(&[("pages", 1)])).await.unwrap();
        assert_eq!((after.status, after.finished_at), (RunStatus::Cancelled, cancelled.finished_at));
        assert_eq!(after.counters, counters(&[("pages", 1)]));
        assert!(matches!(store.start_attempt(None, run.id).await,
            Err(RunError::RunFinished { status: RunStatus::Cancelled })));
        assert_eq!(store.retry_run(None, run.id).await.unwrap().retry.retry_of, Some(run.id));
    }

    async fn lists_with_filters_and_pages(test) {
        let (store, clock) = runs(&test);
        let a = tenant(&test, "A").await;
        let mut all = Vec::new();
        for index in 0..7 {
            let subject = if index % 2 == 0 { "stream:users" } else { "stream:orders" };
            let run = store.create_run(new_run(Some(a), subject, RunTrigger::Schedule)).await.unwrap();
            if index < 3 {
                store.start_attempt(Some(a), run.id).await.unwrap();
                store.finish_attempt(Some(a), run.id, 1, AttemptResult::Succeeded, Counters::new()).await.unwrap();
            }
            all.push(run);
            clock.advance(Duration::minutes(10));
        }

        // Newest first, in pages of 3.
        let filter = RunFilter::default();
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_runs(Some(a), &filter, after, 3).await.unwrap();
            pages.push(ids(&page.items));
            match page.next_after { Some(next) => after = Some(next), None => break }
        }
        let newest_first: Vec<RunId> = all.iter().rev().map(|run| run.id).collect();
        assert_eq!(pages, [newest_first[..3].to_vec(), newest_first[3..6].to_vec(), newest_first[6..].to_vec()]);

        let oldest = RunFilter { order: RunOrder::OldestFirst, ..RunFilter::default() };
        let first = store.list_runs(Some(a), &oldest, None, 4).await.unwrap();
        assert_eq!(ids(&first.items), ids(&all[..4]));
        let rest = store.list_runs(Some(a), &oldest, first.next_after, 4).await.unwrap();
        assert_eq!((ids(&rest.items), rest.next_after), (ids(&all[4..]), None));

        let users = RunFilter { subject: Some("stream:users".into()), order: RunOrder::OldestFirst, ..RunFilter::default() };
        let listed = store.list_runs(Some(a), &users, None, 100).await.unwrap().items;
        assert_eq!(ids(&listed), [all[0].id, all[2].id, all[4].id, all[6].id]);

        let succeeded = RunFilter { status: Some(RunStatus::Succeeded), order: RunOrder::OldestFirst, ..RunFilter::default() };
        assert_eq!(ids(&store.list_runs(Some(a), &succeeded, None, 100).await.unwrap().items), ids(&all[..3]));

        // Created in [START + 20 min, START + 50 min): runs 2, 3, 4. Bounds are exact instants.
        let window = RunFilter {
            created_since: Some(START + Duration::minutes(20)),
            created_until: Some(START + Duration::minutes(50)),
            order: RunOrder::OldestFirst,
            ..RunFilter::default()
        };
        assert_eq!(ids(&store.list_runs(Some(a), &window, None, 100).await.unwrap().items), ids(&all[2..5]));

        let combined = RunFilter { status: Some(RunStatus::Queued), ..users };
        assert_eq!(ids(&store.list_runs(Some(a), &combined, None, 100).await.unwrap().items), [all[4].id, all[6].id]);
    }

    async fn tenants_never_see_each_others_runs(test) {
        let (store, _) = runs(&test);
        let (a, b) = (tenant(&test, "A").await, tenant(&test, "B").await);
        let run = store.create_run(new_run(Some(a), "s", RunTrigger::Manual)).await.unwrap();
        let platform = store.create_run(new_run(None, "s", RunTrigger::Manual)).await.unwrap();

        assert!(store.get_run(Some(b), run.id).await.unwrap().is_none());
        assert!(store.get_run(None, run.id).await.unwrap().is_none(), "the platform scope is not a wildcard");
        assert!(store.get_run(Some(a), platform.id).await.unwrap().is_none());
        assert!(store.list_runs(Some(b), &RunFilter::default(), None, 100).await.unwrap().items.is_empty());
        assert_eq!(ids(&store.list_runs(None, &RunFilter::default(), None, 100).await.unwrap().items), [platform.id]);
        assert!(matches!(store.start_attempt(Some(b), run.id).await, Err(RunError::RunNotFound)));
        assert!(matches!(store.cancel_run(Some(b), run.id).await, Err(RunError::RunNotFound)));
        assert!(matches!(store.attach_job(Some(b), run.id, "job_x").await, Err(RunError::RunNotFound)));

        store.start_attempt(Some(a), run.id).await.unwrap();
        assert!(matches!(store.finish_attempt(Some(b), run.id, 1, AttemptResult::Succeeded, Counters::new()).await,
            Err(RunError::RunNotFound)));
        store.finish_attempt(Some(a), run.id, 1, failed(FailureClass::Timeout, false), Counters::new()).await.unwrap();
        assert!(matches!(store.retry_run(Some(b), run.id).await, Err(RunError::RunNotFound)));
        let unchanged = store.get_run(Some(a), run.id).await.unwrap().unwrap();
        assert_eq!((unchanged.run.status, unchanged.run.retried_by, unchanged.attempts.len()), (RunStatus::Failed, None, 1));

        // A tenant's runs go when it is purged.
        let purge = "DELETE FROM tenants WHERE id = $1";
        match test.database() {
            Database::Sqlite(pool) => sqlx::query(purge).bind(a.to_string()).execute(pool).await.map(drop),
            Database::Postgres(pool) => sqlx::query(purge).bind(a.to_string()).execute(pool).await.map(drop),
        }.unwrap();
        assert!(store.get_run(Some(a), run.id).await.unwrap().is_none());
    }
}

fn clock_now(clock: &ManualClock) -> OffsetDateTime {
    use switchyard_jobs::schedule::Clock;
    clock.now()
}
