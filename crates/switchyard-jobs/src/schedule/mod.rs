//! Recurring schedules: a job enqueued at every tick of an interval (with jitter) or of a
//! cron expression in a time zone, exactly once per tick however many schedulers run.
//!
//! Schedules are rows of `schedules` (migration `0006_schedules_and_runs.sql`), created by the
//! features that need recurring work (sync schedules, purges) through [`ScheduleStore`]. The
//! [`Scheduler`] task polls for due rows and hands each tick's job to a [`TickSink`], which
//! the application implements over the job queue; this module knows nothing of the queue.
//!
//! # Layout
//! - [`spec`]: [`ScheduleSpec`] and tick arithmetic, including what daylight saving time does.
//! - [`store`]: [`Schedule`] and tenant-scoped CRUD in [`ScheduleStore`].
//! - [`scheduler`]: [`Scheduler`], [`TickSink`], [`DueTick`]; why each tick fires once.
//! - [`clock`]: [`Clock`], with [`SystemClock`] and [`ManualClock`] for tests.
//! - `db`: time binding shared with [`crate::runs`]. Ids ([`ScheduleId`]) come from
//!   `switchyard-core`.

pub mod clock;
pub(crate) mod db;
pub mod scheduler;
pub mod spec;
pub mod store;

mod error;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::ScheduleError;
pub use scheduler::{DueTick, PollReport, Scheduler, SchedulerOptions, TickSink};
pub use spec::{CompiledSpec, MAX_INTERVAL_SECONDS, MAX_JITTER_PERCENT, ScheduleSpec};
pub use store::{CatchUp, NewSchedule, Schedule, ScheduleStore, ScheduleUpdate};
pub use switchyard_core::ScheduleId;
