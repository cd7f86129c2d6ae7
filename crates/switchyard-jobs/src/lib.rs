//! Switchyard's durable job engine.
//!
//! Every asynchronous thing Switchyard does runs as a job kept in the store of record, so
//! enqueueing is transactional with the change that causes it and survives process death.
//!
//! # Layout
//! - [`queue`]: jobs, enqueue (inside a caller's transaction or not), claiming with leases,
//!   completion, retries and the dead state. (owner: queue)
//! - [`worker`]: the worker runtime: handlers per job kind, heartbeats, fairness, per-kind
//!   concurrency, graceful shutdown. (owner: queue)
//! - [`schedule`]: recurring schedules (interval with jitter, cron with time zone) that enqueue
//!   exactly once per tick across schedulers. (owner: schedule)
//! - [`runs`]: runs and run attempts, the user-visible record of work, with failure classes.
//!   (owner: schedule)
//! - [`probe`]: `diagnostics.probe` jobs, whose ledger shows that workers run every job.
//!   (owner: queue)
//! - [`retention`]: how long finished runs and jobs are kept. (owner: schedule)

pub mod probe;
pub mod queue;
pub mod retention;
pub mod runs;
pub mod schedule;
pub mod worker;
