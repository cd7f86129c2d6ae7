//! The scheduler task: turns due ticks into jobs, exactly once per tick however many
//! schedulers run.
//!
//! # Exactly once per tick
//! Each poll reads the due schedules and, for each, works out from the row alone which tick to
//! fire and which tick comes next (tick times are deterministic, see [`super::spec`]). It then
//! 1. enqueues the tick's job through the [`TickSink`] under the unique key
//!    `schedule:{id}:{tick_unix_seconds}`, which the queue turns into a no-op when the key
//!    exists, and
//! 2. advances `next_tick` with a compare-and-swap on the value (and revision) it read.
//!
//! Enqueue comes first so a crash between the two steps loses nothing: the row stays due and
//! the next poll (here or in another process) enqueues the same key again, a no-op. Two
//! schedulers reading the same row compute the same tick, hence the same key; exactly one of
//! them wins the swap. Should two schedulers read the row a tick boundary apart, they fire
//! two different ticks, each once.
//!
//! No row locks are taken (no `FOR UPDATE SKIP LOCKED`): the sink call sits between read and
//! swap and is not in the scheduler's transaction, and the swap already settles every race.
//! The cost is that racing schedulers both do the (cheap) work of a due row.
//!
//! # Catch-up
//! A tick is *missed* when the scheduler sees it more than `misfire_grace` late (no scheduler
//! was running, or the database was unreachable). The schedule's [`CatchUp`] decides: `skip`
//! fires only a tick that is on time and drops the rest, `run_once` fires one job for all due
//! ticks. Either way `next_tick` moves to the first tick after now.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use switchyard_core::TenantId;
use switchyard_store::Database;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    CatchUp, Clock, CompiledSpec, Schedule, ScheduleError, ScheduleId, ScheduleStore, SystemClock,
};

/// Ticks enumerated in one catch-up before giving up counting: a minutely schedule down for
/// two months. Beyond it, the count is a lower bound and the next tick is computed from now.
const MAX_CATCH_UP_TICKS: u32 = 100_000;

/// One tick's job, handed to the [`TickSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTick {
    pub schedule_id: ScheduleId,
    pub tenant: Option<TenantId>,
    /// The schedule's subject, for the run the job records.
    pub subject: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// `schedule:{id}:{tick_unix_seconds}`: the queue must enqueue at most one job per key.
    pub unique_key: String,
    /// The tick this job is for (for `run_once` catch-up, the latest of the ticks covered).
    pub tick: OffsetDateTime,
    /// When the job should run: the tick, which is now or in the past.
    pub run_at: OffsetDateTime,
    /// How many ticks the job stands for: 1, or more after a `run_once` catch-up.
    pub ticks_covered: u32,
}

impl DueTick {
    /// The unique key of `schedule`'s job for `tick`.
    pub fn unique_key_for(schedule: ScheduleId, tick: OffsetDateTime) -> String {
        format!("schedule:{schedule}:{}", tick.unix_timestamp())
    }
}

/// Where the scheduler puts ticks' jobs: the job queue, in production.
#[async_trait]
pub trait TickSink: Send + Sync {
    /// Enqueues `tick`'s job unless a job with `tick.unique_key` exists already (then it is a
    /// successful no-op). Called again with the same key after crashes and races, so it must
    /// be idempotent.
    ///
    /// # Errors
    /// [`ScheduleError::Sink`] wrapping the cause; the tick is retried on the next poll.
    async fn enqueue_tick(&self, tick: &DueTick) -> Result<(), ScheduleError>;
}

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Time between polls for due schedules. Ticks fire up to this late.
    pub poll_interval: Duration,
    /// Due schedules handled per poll; a full batch polls again at once.
    pub batch_size: u32,
    /// How late a tick may be seen and still count as on time (see the module docs).
    pub misfire_grace: Duration,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            batch_size: 100,
            misfire_grace: Duration::from_secs(60),
            clock: Arc::new(SystemClock),
        }
    }
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Due schedules read.
    pub due: usize,
    /// Schedules this poll advanced after enqueueing a tick.
    pub fired: usize,
    /// Schedules this poll advanced past missed ticks without enqueueing (`skip`).
    pub skipped: usize,
    /// Schedules another scheduler (or an edit) changed first; their job, if any, was a no-op.
    pub lost_race: usize,
    /// Schedules that failed (sink or spec error); they stay due and are retried.
    pub failed: usize,
}

/// Polls for due schedules and enqueues their ticks.
#[derive(Clone)]
pub struct Scheduler {
    store: ScheduleStore,
    sink: Arc<dyn TickSink>,
    options: SchedulerOptions,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Which tick to fire and where `next_tick` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The tick to enqueue and how many ticks it covers.
    pub fire: Option<(OffsetDateTime, u32)>,
    pub next_tick: OffsetDateTime,
}

/// Works out `schedule`'s due ticks at `now` (its `next_tick` is ≤ `now`).
pub(crate) fn plan(
    schedule: &Schedule,
    spec: &CompiledSpec,
    now: OffsetDateTime,
    grace: time::Duration,
) -> Result<Plan, ScheduleError> {
    let seed = schedule.id.to_string();
    let mut latest = schedule.next_tick;
    let mut due: u32 = 1;
    let mut next = spec.next_after(&seed, latest)?;
    while next <= now {
        if due >= MAX_CATCH_UP_TICKS {
            next = spec.next_after(&seed, now)?;
            break;
        }
        latest = next;
        due += 1;
        next = spec.next_after(&seed, latest)?;
    }
    let fire = match schedule.catch_up {
        CatchUp::Skip => (now - latest <= grace).then_some((latest, 1)),
        CatchUp::RunOnce => Some((latest, due)),
    };
    Ok(Plan {
        fire,
        next_tick: next,
    })
}

enum Handled {
    Fired,
    Skipped,
    LostRace,
}

impl Scheduler {
    /// A scheduler over `database` that enqueues into `sink`.
    pub fn new(database: &Database, sink: Arc<dyn TickSink>, options: SchedulerOptions) -> Self {
        let store = ScheduleStore::new(database).with_clock(Arc::clone(&options.clock));
        Self {
            store,
            sink,
            options,
        }
    }

    /// Starts a scheduler task that polls until `shutdown` is cancelled. Any number of them
    /// may run against one database (in one process or many).
    pub fn start(
        database: &Database,
        sink: Arc<dyn TickSink>,
        options: SchedulerOptions,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        let scheduler = Self::new(database, sink, options);
        tokio::spawn(async move { scheduler.run(shutdown).await })
    }

    /// Polls until `shutdown` is cancelled. A failed poll (database unreachable) is logged
    /// and retried after the poll interval.
    pub async fn run(&self, shutdown: CancellationToken) {
        tracing::debug!(options = ?self.options, "scheduler started");
        loop {
            let again_at_once = match self.poll_once().await {
                Ok(report) => {
                    let batch_full = report.due >= self.options.batch_size as usize;
                    batch_full && report.fired + report.skipped > 0
                }
                Err(error) => {
                    metrics::counter!("switchyard_scheduler_poll_errors_total").increment(1);
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "scheduler poll failed"
                    );
                    false
                }
            };
            if shutdown.is_cancelled() {
                break;
            }
            if !again_at_once {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(self.options.poll_interval) => {}
                }
            }
        }
        tracing::debug!("scheduler stopped");
    }

    /// One poll: every due schedule (up to the batch size) gets its tick enqueued and its
    /// `next_tick` advanced. Errors of single schedules are logged and counted, not returned.
    ///
    /// # Errors
    /// Only when the due schedules cannot be read.
    pub async fn poll_once(&self) -> Result<PollReport, ScheduleError> {
        let now = self.options.clock.now();
        let due = self.store.due(now, self.options.batch_size).await?;
        let mut report = PollReport {
            due: due.len(),
            ..PollReport::default()
        };
        for schedule in &due {
            match self.handle(schedule, now).await {
                Ok(Handled::Fired) => report.fired += 1,
                Ok(Handled::Skipped) => report.skipped += 1,
                Ok(Handled::LostRace) => report.lost_race += 1,
                Err(error) => {
                    report.failed += 1;
                    metrics::counter!("switchyard_schedule_ticks_total", "outcome" => "failed")
                        .increment(1);
                    tracing::warn!(
                        schedule = %schedule.id,
                        error = &error as &dyn std::error::Error,
                        "schedule tick failed; retrying on the next poll"
                    );
                }
            }
        }
        Ok(report)
    }

    async fn handle(
        &self,
        schedule: &Schedule,
        now: OffsetDateTime,
    ) -> Result<Handled, ScheduleError> {
        let spec = schedule.spec.compile()?;
        let grace =
            time::Duration::try_from(self.options.misfire_grace).unwrap_or(time::Duration::MAX);
        let plan = plan(schedule, &spec, now, grace)?;
        if let Some((tick, ticks_covered)) = plan.fire {
            let due_tick = DueTick {
                schedule_id: schedule.id,
                tenant: schedule.tenant,
                subject: schedule.subject.clone(),
                kind: schedule.kind.clone(),
                payload: schedule.payload.clone(),
                unique_key: DueTick::unique_key_for(schedule.id, tick),
                tick,
                run_at: tick,
                ticks_covered,
            };
            self.sink.enqueue_tick(&due_tick).await?;
        }
        let fired = plan.fire.map(|(tick, _)| tick);
        if !self.store.advance(schedule, plan.next_tick, fired).await? {
            return Ok(Handled::LostRace);
        }
        let outcome = if fired.is_some() { "fired" } else { "skipped" };
        metrics::counter!("switchyard_schedule_ticks_total", "outcome" => outcome).increment(1);
        Ok(if fired.is_some() {
            Handled::Fired
        } else {
            tracing::info!(schedule = %schedule.id, next_tick = %plan.next_tick, "missed ticks skipped");
            Handled::Skipped
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use time::macros::datetime;

    use super::*;
    use crate::schedule::ScheduleSpec;

    fn schedule(spec: ScheduleSpec, catch_up: CatchUp, next_tick: OffsetDateTime) -> Schedule {
        Schedule {
            id: ScheduleId::generate(),
            tenant: None,
            subject: "s".into(),
            kind: "k".into(),
            payload: serde_json::Value::Null,
            spec,
            catch_up,
            enabled: true,
            next_tick,
            last_tick: None,
            revision: 0,
            created_at: next_tick,
            updated_at: next_tick,
        }
    }

    #[test]
    fn on_time_tick_fires_under_both_policies() {
        let t0 = datetime!(2024-01-01 00:00:00 UTC);
        for catch_up in [CatchUp::Skip, CatchUp::RunOnce] {
            let s = schedule(ScheduleSpec::every(60), catch_up, t0);
            let spec = s.spec.compile().unwrap();
            let plan = plan(
                &s,
                &spec,
                t0 + time::Duration::seconds(1),
                time::Duration::seconds(5),
            )
            .unwrap();
            assert_eq!(plan.fire, Some((t0, 1)));
            assert_eq!(plan.next_tick, t0 + time::Duration::seconds(60));
        }
    }

    #[test]
    fn huge_downtime_is_bounded() {
        let t0 = datetime!(2020-01-01 00:00:00 UTC);
        let s = schedule(ScheduleSpec::every(1), CatchUp::RunOnce, t0);
        let spec = s.spec.compile().unwrap();
        let now = t0 + time::Duration::days(365);
        let plan = plan(&s, &spec, now, time::Duration::seconds(5)).unwrap();
        assert_eq!(plan.fire.map(|(_, n)| n), Some(MAX_CATCH_UP_TICKS));
        assert!(plan.next_tick > now);
    }
}
