//! The scheduler and schedule store on SQLite and PostgreSQL, with a real table-backed sink
//! and a manual clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use async_trait::async_trait;
use serde_json::json;
use switchyard_core::TenantId;
use switchyard_jobs::schedule::{
    CatchUp, Clock, DueTick, ManualClock, NewSchedule, Schedule, ScheduleError, ScheduleSpec,
    ScheduleStore, ScheduleUpdate, Scheduler, SchedulerOptions, TickSink,
};
use switchyard_store::{Database, DatabaseOptions, NewTenant};
use switchyard_test_support::{TestStore, backend_tests};
use time::{Duration, OffsetDateTime, macros::datetime};
use tokio_util::sync::CancellationToken;

/// A sink like the queue's unique-key enqueue: a table with a primary key on the key, insert
/// `ON CONFLICT DO NOTHING`. Counts calls, so tests can tell races happened.
struct TableSink {
    database: Database,
    calls: AtomicUsize,
}

const SINK_TABLE: &str = "CREATE TABLE IF NOT EXISTS test_ticks (unique_key TEXT PRIMARY KEY, \
    schedule_id TEXT NOT NULL, tick BIGINT NOT NULL, covered BIGINT NOT NULL)";
const SINK_INSERT: &str = "INSERT INTO test_ticks (unique_key, schedule_id, tick, covered) \
    VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
const SINK_SELECT: &str =
    "SELECT unique_key, schedule_id, tick, covered FROM test_ticks ORDER BY tick, unique_key";

/// One enqueued job: key, schedule id, tick (Unix seconds), ticks covered.
type SinkRow = (String, String, i64, i64);

impl TableSink {
    async fn new(database: &Database) -> Arc<Self> {
        match database {
            Database::Sqlite(pool) => sqlx::query(SINK_TABLE).execute(pool).await.map(drop),
            Database::Postgres(pool) => sqlx::query(SINK_TABLE).execute(pool).await.map(drop),
        }
        .unwrap();
        Arc::new(Self {
            database: database.clone(),
            calls: AtomicUsize::new(0),
        })
    }

    async fn rows(&self) -> Vec<SinkRow> {
        match &self.database {
            Database::Sqlite(pool) => sqlx::query_as(SINK_SELECT).fetch_all(pool).await,
            Database::Postgres(pool) => sqlx::query_as(SINK_SELECT).fetch_all(pool).await,
        }
        .unwrap()
    }

    async fn rows_of(&self, schedule: &Schedule) -> Vec<SinkRow> {
        let id = schedule.id.to_string();
        self.rows()
            .await
            .into_iter()
            .filter(|row| row.1 == id)
            .collect()
    }
}

#[async_trait]
impl TickSink for TableSink {
    async fn enqueue_tick(&self, tick: &DueTick) -> Result<(), ScheduleError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let covered = i64::from(tick.ticks_covered);
        let unix = tick.tick.unix_timestamp();
        let id = tick.schedule_id.to_string();
        match &self.database {
            Database::Sqlite(pool) => sqlx::query(SINK_INSERT)
                .bind(&tick.unique_key)
                .bind(&id)
                .bind(unix)
                .bind(covered)
                .execute(pool)
                .await
                .map(drop),
            Database::Postgres(pool) => sqlx::query(SINK_INSERT)
                .bind(&tick.unique_key)
                .bind(&id)
                .bind(unix)
                .bind(covered)
                .execute(pool)
                .await
                .map(drop),
        }
        .map_err(|error| ScheduleError::Sink(Box::new(error)))
    }
}

/// Everything a scheduler test needs, on one database and one manual clock.
struct Fixture {
    clock: Arc<ManualClock>,
    store: ScheduleStore,
    sink: Arc<TableSink>,
    scheduler: Scheduler,
    database: Database,
}

const START: OffsetDateTime = datetime!(2024-01-01 00:00:00 UTC);

async fn fixture(test: &TestStore, start: OffsetDateTime) -> Fixture {
    let database = test.database().clone();
    let clock = Arc::new(ManualClock::new(start));
    let sink = TableSink::new(&database).await;
    let options = SchedulerOptions {
        clock: Arc::<ManualClock>::clone(&clock),
        ..SchedulerOptions::default()
    };
    Fixture {
        store: ScheduleStore::new(&database).with_clock(Arc::<ManualClock>::clone(&clock)),
        scheduler: Scheduler::new(&database, Arc::<TableSink>::clone(&sink), options),
        sink,
        clock,
        database,
    }
}

fn new_schedule(tenant: Option<TenantId>, spec: ScheduleSpec, catch_up: CatchUp) -> NewSchedule {
    NewSchedule {
        tenant,
        subject: "connection:con_1/stream:users".to_owned(),
        kind: "sync".to_owned(),
        payload: json!({"stream": "users"}),
        spec,
        catch_up,
        enabled: true,
    }
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

fn key(schedule: &Schedule, tick: OffsetDateTime) -> String {
    format!("schedule:{}:{}", schedule.id, tick.unix_timestamp())
}

backend_tests! { TestStore;
    async fn interval_schedule_fires_each_tick_once(test) {
        let f = fixture(&test, START).await;
        let schedule = f.store.create(new_schedule(None, ScheduleSpec::every(60), CatchUp::Skip)).await.unwrap();
        assert_eq!(schedule.next_tick, START + Duration::seconds(60));

        assert_eq!(f.scheduler.poll_once().await.unwrap().due, 0, "nothing is due before the first tick");
        let mut expected = Vec::new();
        for n in 1..=10 {
            f.clock.set(START + Duration::seconds(60 * n) + Duration::milliseconds(300));
            let report = f.scheduler.poll_once().await.unwrap();
            assert_eq!((report.due, report.fired), (1, 1), "tick {n}");
            // Polling again at the same time finds nothing due.
            assert_eq!(f.scheduler.poll_once().await.unwrap().due, 0);
            expected.push(key(&schedule, START + Duration::seconds(60 * n)));
        }
        let keys: Vec<_> = f.sink.rows().await.into_iter().map(|row| row.0).collect();
        assert_eq!(keys, expected);
        let stored = f.store.get(None, schedule.id).await.unwrap().unwrap();
        assert_eq!(stored.last_tick, Some(START + Duration::seconds(600)));
        assert_eq!(stored.next_tick, START + Duration::seconds(660));
    }

    async fn cron_follows_the_time_zone_across_dst(test) {
        // `0 2 * * *` in Europe/Berlin. Spring forward (2024-03-31, 02:00 CET → 03:00 CEST):
        // 02:00 does not exist, the job runs at 03:00 CEST. Fall back (2024-10-27, 03:00 CEST
        // → 02:00 CET): 02:00 happens twice, the job runs once, at the first (02:00 CEST).
        let f = fixture(&test, datetime!(2024-03-29 12:00 UTC)).await;
        let spec = ScheduleSpec::cron("0 2 * * *", "Europe/Berlin");
        let spring = f.store.create(new_schedule(None, spec.clone(), CatchUp::Skip)).await.unwrap();
        step_hourly_until(&f, datetime!(2024-04-02 12:00 UTC)).await;
        let ticks: Vec<i64> = f.sink.rows_of(&spring).await.iter().map(|row| row.2).collect();
        assert_eq!(ticks, [
            datetime!(2024-03-30 01:00 UTC).unix_timestamp(), // 02:00 CET
            datetime!(2024-03-31 01:00 UTC).unix_timestamp(), // 03:00 CEST: 02:00 was skipped by the clock
            datetime!(2024-04-01 00:00 UTC).unix_timestamp(), // 02:00 CEST
            datetime!(2024-04-02 00:00 UTC).unix_timestamp(),
        ]);

        f.clock.set(datetime!(2024-10-25 12:00 UTC));
        let fall = f.store.create(new_schedule(None, spec, CatchUp::Skip)).await.unwrap();
        step_hourly_until(&f, datetime!(2024-10-29 12:00 UTC)).await;
        let ticks: Vec<i64> = f.sink.rows_of(&fall).await.iter().map(|row| row.2).collect();
        assert_eq!(ticks, [
            datetime!(2024-10-26 00:00 UTC).unix_timestamp(), // 02:00 CEST
            datetime!(2024-10-27 00:00 UTC).unix_timestamp(), // 02:00 CEST, and not again at 02:00 CET
            datetime!(2024-10-28 01:00 UTC).unix_timestamp(), // 02:00 CET
            datetime!(2024-10-29 01:00 UTC).unix_timestamp(),
        ]);

        // Created during the second pass of the repeated hour (02:10 CET), `15 2 * * *` next
        // fires at 02:15 CET, not at the 02:15 CEST that already passed.
        f.clock.set(datetime!(2024-10-27 01:10 UTC));
        let late = f.store.create(new_schedule(
            None, ScheduleSpec::cron("15 2 * * *", "Europe/Berlin"), CatchUp::Skip,
        )).await.unwrap();
        assert_eq!(late.next_tick, datetime!(2024-10-27 01:15 UTC));
    }

    async fn interval_jitter_stays_within_bounds(test) {
        let f = fixture(&test, START).await;
        let spec = ScheduleSpec::Interval { every_seconds: 900, jitter_percent: 10 };
        let schedule = f.store.create(new_schedule(None, spec, CatchUp::Skip)).await.unwrap();
        for _ in 0..60 {
            let current = f.store.get(None, schedule.id).await.unwrap().unwrap();
            f.clock.set(current.next_tick);
            assert_eq!(f.scheduler.poll_once().await.unwrap().fired, 1);
        }
        let ticks: Vec<i64> = f.sink.rows().await.iter().map(|row| row.2).collect();
        assert_eq!(ticks.len(), 60);
        let gaps: BTreeSet<i64> = ticks.windows(2).map(|pair| pair[1] - pair[0]).collect();
        assert!(gaps.iter().all(|gap| (810..=990).contains(gap)), "every 15 min ± 10 %: {gaps:?}");
        assert!(gaps.len() > 10, "the gaps vary: {gaps:?}");
        let first = ticks[0] - START.unix_timestamp();
        assert!((810..=990).contains(&first), "the first tick is jittered too: {first}");
    }

    async fn skip_and_run_once_differ_after_downtime(test) {
        let f = fixture(&test, START).await;
        let hourly = ScheduleSpec::every(3600);
        let skip = f.store.create(new_schedule(None, hourly.clone(), CatchUp::Skip)).await.unwrap();
        let once = f.store.create(new_schedule(None, hourly, CatchUp::RunOnce)).await.unwrap();

        // Down from before the first tick (01:00) until 05:30: ticks 01:00 … 05:00 missed.
        f.clock.set(START + Duration::minutes(330));
        let report = f.scheduler.poll_once().await.unwrap();
        assert_eq!((report.fired, report.skipped), (1, 1));
        assert!(f.sink.rows_of(&skip).await.is_empty(), "skip enqueues nothing for missed ticks");
        assert_eq!(
            f.sink.rows_of(&once).await,
            [(key(&once, START + Duration::hours(5)), once.id.to_string(),
              (START + Duration::hours(5)).unix_timestamp(), 5)],
            "run_once enqueues one job for the five missed ticks"
        );
        for schedule in [&skip, &once] {
            let stored = f.store.get(None, schedule.id).await.unwrap().unwrap();
            assert_eq!(stored.next_tick, START + Duration::hours(6), "both continue with the next future tick");
        }

        // Seen 30 s late, within the default one-minute grace: on time, both fire it.
        f.clock.set(START + Duration::hours(6) + Duration::seconds(30));
        assert_eq!(f.scheduler.poll_once().await.unwrap().fired, 2);
        assert_eq!(f.sink.rows_of(&skip).await.len(), 1);
        assert_eq!(f.sink.rows_of(&once).await.last().unwrap().3, 1);
    }

    async fn two_schedulers_fire_each_tick_exactly_once(test) {
        let f = fixture(&test, START).await;
        // A second scheduler with its own pool, as another process would have.
        let other_pool = Database::connect(test.database.url(), &DatabaseOptions::default()).await.unwrap();
        let options = SchedulerOptions { clock: Arc::<ManualClock>::clone(&f.clock), ..SchedulerOptions::default() };
        let other = Scheduler::new(&other_pool, Arc::<TableSink>::clone(&f.sink), options.clone());

        let specs = [
            ScheduleSpec::every(60),
            ScheduleSpec::Interval { every_seconds: 90, jitter_percent: 20 },
            ScheduleSpec::cron("*/5 * * * *", "UTC"),
            ScheduleSpec::cron("*/2 * * * *", "America/New_York"),
        ];
        let mut schedules = Vec::new();
        for spec in specs {
            schedules.push(f.store.create(new_schedule(None, spec, CatchUp::RunOnce)).await.unwrap());
        }

        // Phase 1: both poll at the same instants, 150 steps of 37 s (< every gap, so no
        // catch-up is involved: each tick is one job).
        let mut lost = 0;
        for _ in 0..150 {
            f.clock.advance(Duration::seconds(37));
            let (a, b) = tokio::join!(f.scheduler.poll_once(), other.poll_once());
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a.failed + b.failed, 0);
            lost += a.lost_race + b.lost_race;
        }

        // Phase 2: both as running tasks polling every millisecond while the clock moves.
        let shutdown = CancellationToken::new();
        let fast = SchedulerOptions { poll_interval: std::time::Duration::from_millis(1), ..options };
        let tasks = [
            Scheduler::start(&f.database, Arc::<TableSink>::clone(&f.sink), fast.clone(), shutdown.clone()),
            Scheduler::start(&other_pool, Arc::<TableSink>::clone(&f.sink), fast, shutdown.clone()),
        ];
        for _ in 0..40 {
            f.clock.advance(Duration::seconds(45));
            let now = f.clock.now();
            // Wait until every schedule has moved past now: all due ticks handled.
            tokio::time::timeout(std::time::Duration::from_secs(20), async {
                loop {
                    let page = f.store.list(None, None, None, 100).await.unwrap();
                    if page.items.iter().all(|s| s.next_tick > now) {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            })
            .await
            .expect("the schedulers keep up");
        }
        shutdown.cancel();
        for task in tasks {
            task.await.unwrap();
        }

        // Every tick up to now has exactly one job, and nothing else was enqueued.
        let end = f.clock.now();
        let mut expected = BTreeSet::new();
        for schedule in &schedules {
            let spec = schedule.spec.compile().unwrap();
            let mut tick = schedule.next_tick;
            while tick <= end {
                expected.insert(key(schedule, tick));
                tick = spec.next_after(&schedule.id.to_string(), tick).unwrap();
            }
        }
        let rows = f.sink.rows().await;
        let keys: BTreeSet<String> = rows.iter().map(|row| row.0.clone()).collect();
        assert_eq!(keys, expected);
        assert_eq!(rows.len(), expected.len());
        assert!(rows.iter().all(|row| row.3 == 1), "no tick was covered by a catch-up job");
        assert!(expected.len() > 200, "a meaningful number of ticks: {}", expected.len());
        let calls = f.sink.calls.load(Ordering::SeqCst);
        assert!(lost > 0 && calls > rows.len(), "the schedulers did race (lost {lost}, calls {calls})");
        other_pool.close().await;
    }

    async fn disabled_schedules_do_not_fire(test) {
        let f = fixture(&test, START).await;
        let mut new = new_schedule(None, ScheduleSpec::every(60), CatchUp::RunOnce);
        new.enabled = false;
        let schedule = f.store.create(new).await.unwrap();
        f.clock.advance(Duration::minutes(30));
        assert_eq!(f.scheduler.poll_once().await.unwrap().due, 0);
        assert!(f.sink.rows().await.is_empty());

        // Enabling starts from now: the disabled half hour is not caught up.
        let enabled = f.store.update(None, schedule.id, ScheduleUpdate { enabled: Some(true), ..Default::default() })
            .await.unwrap().unwrap();
        assert_eq!(enabled.next_tick, START + Duration::minutes(31));
        f.clock.advance(Duration::minutes(1));
        assert_eq!(f.scheduler.poll_once().await.unwrap().fired, 1);
        assert_eq!(f.sink.rows().await[0].3, 1);

        // Disabling stops it again.
        f.store.update(None, schedule.id, ScheduleUpdate { enabled: Some(false), ..Default::default() })
            .await.unwrap().unwrap();
        f.clock.advance(Duration::minutes(10));
        assert_eq!(f.scheduler.poll_once().await.unwrap().due, 0);
    }

    async fn invalid_specs_are_typed_errors(test) {
        let f = fixture(&test, START).await;
        let create = |spec| f.store.create(new_schedule(None, spec, CatchUp::Skip));
        assert!(matches!(
            create(ScheduleSpec::cron("0 25 * * *", "UTC")).await,
            Err(ScheduleError::InvalidCron { expression, .. }) if expression == "0 25 * * *"
        ));
        assert!(matches!(
            create(ScheduleSpec::cron("every day", "UTC")).await,
            Err(ScheduleError::InvalidCron { .. })
        ));
        assert!(matches!(
            create(ScheduleSpec::cron("0 2 * * *", "Mars/Olympus_Mons")).await,
            Err(ScheduleError::UnknownTimeZone { zone }) if zone == "Mars/Olympus_Mons"
        ));
        assert!(matches!(create(ScheduleSpec::every(0)).await, Err(ScheduleError::InvalidInterval { .. })));
        assert!(matches!(
            create(ScheduleSpec::Interval { every_seconds: 60, jitter_percent: 51 }).await,
            Err(ScheduleError::InvalidInterval { .. })
        ));
        assert!(f.store.list(None, None, None, 10).await.unwrap().items.is_empty());

        let schedule = create(ScheduleSpec::every(60)).await.unwrap();
        let bad = ScheduleUpdate { spec: Some(ScheduleSpec::cron("0 2 * *", "UTC")), ..Default::default() };
        assert!(matches!(f.store.update(None, schedule.id, bad).await, Err(ScheduleError::InvalidCron { .. })));
        assert_eq!(f.store.get(None, schedule.id).await.unwrap().unwrap(), schedule, "unchanged");
    }

    async fn schedules_are_tenant_scoped(test) {
        let f = fixture(&test, START).await;
        let (a, b) = (tenant(&test, "A").await, tenant(&test, "B").await);
        let mut a_ids = Vec::new();
        for subject in ["s1", "s2", "s1"] {
            let mut new = new_schedule(Some(a), ScheduleSpec::every(60), CatchUp::Skip);
            new.subject = subject.to_owned();
            a_ids.push(f.store.create(new).await.unwrap().id);
        }
        let b_id = f.store.create(new_schedule(Some(b), ScheduleSpec::every(60), CatchUp::Skip)).await.unwrap().id;
        let platform = f.store.create(new_schedule(None, ScheduleSpec::every(60), CatchUp::Skip)).await.unwrap().id;

        assert!(f.store.get(Some(b), a_ids[0]).await.unwrap().is_none(), "B cannot read A's schedule");
        assert!(f.store.get(None, a_ids[0]).await.unwrap().is_none(), "the platform scope is not a wildcard");
        assert!(f.store.get(Some(a), platform).await.unwrap().is_none());
        assert_eq!(f.store.get(Some(a), a_ids[0]).await.unwrap().unwrap().tenant, Some(a));

        // Pages of one, in creation order.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = f.store.list(Some(a), None, after, 1).await.unwrap();
            seen.extend(page.items.iter().map(|s| s.id));
            match page.next_after { Some(next) => after = Some(next), None => break }
        }
        assert_eq!(seen, a_ids);
        let s1: Vec<_> = f.store.list(Some(a), Some("s1"), None, 10).await.unwrap().items.iter().map(|s| s.id).collect();
        assert_eq!(s1, [a_ids[0], a_ids[2]]);
        let b_list: Vec<_> = f.store.list(Some(b), None, None, 10).await.unwrap().items.iter().map(|s| s.id).collect();
        assert_eq!(b_list, [b_id]);

        let disable = ScheduleUpdate { enabled: Some(false), ..Default::default() };
        assert!(f.store.update(Some(b), a_ids[0], disable.clone()).await.unwrap().is_none());
        assert!(f.store.get(Some(a), a_ids[0]).await.unwrap().unwrap().enabled, "B's update did nothing");
        assert!(!f.store.delete(Some(b), a_ids[0]).await.unwrap());
        assert!(f.store.delete(Some(a), a_ids[0]).await.unwrap());
        assert!(f.store.get(Some(a), a_ids[0]).await.unwrap().is_none());

        let updated = f.store.update(Some(a), a_ids[1], ScheduleUpdate {
            spec: Some(ScheduleSpec::cron("30 6 * * 1-5", "Europe/Berlin")),
            payload: Some(json!({"full": true})),
            catch_up: Some(CatchUp::RunOnce),
            ..Default::default()
        }).await.unwrap().unwrap();
        assert_eq!(updated.next_tick, datetime!(2024-01-01 05:30 UTC), "Monday 06:30 CET");
        assert_eq!(f.store.get(Some(a), a_ids[1]).await.unwrap().unwrap(), updated);
    }

    async fn deleted_tenants_schedules_do_not_fire(test) {
        let f = fixture(&test, START).await;
        let (kept, deleted) = (tenant(&test, "kept").await, tenant(&test, "gone").await);
        f.store.create(new_schedule(Some(kept), ScheduleSpec::every(60), CatchUp::Skip)).await.unwrap();
        f.store.create(new_schedule(Some(deleted), ScheduleSpec::every(60), CatchUp::Skip)).await.unwrap();
        test.mark_tenant_deleted(deleted).await.unwrap();
        f.clock.advance(Duration::minutes(1));
        assert_eq!(f.scheduler.poll_once().await.unwrap().fired, 1);
    }
}

/// Moves the clock an hour at a time up to `end`, polling after each step.
async fn step_hourly_until(f: &Fixture, end: OffsetDateTime) {
    while f.clock.now() < end {
        f.clock.advance(Duration::hours(1));
        let report = f.scheduler.poll_once().await.unwrap();
        assert_eq!(report.failed, 0);
    }
}
