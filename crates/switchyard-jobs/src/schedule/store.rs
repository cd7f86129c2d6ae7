//! The `schedules` table: tenant-scoped CRUD, and the two statements the scheduler needs
//! (due schedules, compare-and-swap of `next_tick`).
//!
//! Statements are written once and expanded per backend by `schedule_sql!`; only the binding
//! of times differs (see [`super::db`]). Every update bumps `revision`, and every write that
//! depends on what was read is conditional on it, so a user's edit and a scheduler advancing
//! the same row can never overwrite each other.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use switchyard_core::TenantId;
use switchyard_store::{Database, Page};
use time::OffsetDateTime;

use super::{
    Clock, ScheduleError, ScheduleId, ScheduleSpec, SystemClock,
    db::{bind_time, on_backend, owner_condition, owner_param, to_micros},
};

/// What a schedule does with ticks it missed while no scheduler ran (or while it was late by
/// more than the scheduler's `misfire_grace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Drop missed ticks; the next job is the next tick in the future. For work that only
    /// makes sense "now", such as a sync whose next run fetches everything new anyway.
    Skip,
    /// Enqueue one job for all missed ticks (its [`DueTick::ticks_covered`] says how many),
    /// then continue with the next tick in the future. For work that must not be forgotten,
    /// such as a purge.
    ///
    /// [`DueTick::ticks_covered`]: super::DueTick::ticks_covered
    RunOnce,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Skip => "skip",
            CatchUp::RunOnce => "run_once",
        }
    }

    fn parse(text: &str) -> Result<Self, ScheduleError> {
        match text {
            "skip" => Ok(CatchUp::Skip),
            "run_once" => Ok(CatchUp::RunOnce),
            other => Err(ScheduleError::corrupt(format!("catch_up `{other}`"))),
        }
    }
}

/// A recurring schedule: a job of `kind` with `payload`, enqueued at each tick of `spec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: ScheduleId,
    /// `None` for the platform's own schedules (purges and the like).
    pub tenant: Option<TenantId>,
    /// What the schedule is about, e.g. `connection:con_…/stream:users`; free text that
    /// callers list and filter by.
    pub subject: String,
    /// The job kind enqueued at each tick.
    pub kind: String,
    /// The job payload enqueued at each tick.
    pub payload: serde_json::Value,
    pub spec: ScheduleSpec,
    pub catch_up: CatchUp,
    pub enabled: bool,
    /// The next tick; the schedule is due once the clock reaches it.
    pub next_tick: OffsetDateTime,
    /// The last tick a job was enqueued for.
    pub last_tick: Option<OffsetDateTime>,
    /// Bumped by every change; the scheduler's compare-and-swap checks it.
    pub revision: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What it takes to create a schedule.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub tenant: Option<TenantId>,
    pub subject: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub spec: ScheduleSpec,
    pub catch_up: CatchUp,
    pub enabled: bool,
}

/// A change to a schedule; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ScheduleUpdate {
    /// A new spec; the next tick is recomputed from now.
    pub spec: Option<ScheduleSpec>,
    pub catch_up: Option<CatchUp>,
    /// Enabling a disabled schedule recomputes the next tick from now: the time it spent
    /// disabled is not caught up. Disabling keeps the row and stops its ticks.
    pub enabled: Option<bool>,
    pub payload: Option<serde_json::Value>,
}

impl ScheduleUpdate {
    fn apply(self, mut schedule: Schedule, now: OffsetDateTime) -> Result<Schedule, ScheduleError> {
        let reenabled = self.enabled == Some(true) && !schedule.enabled;
        let respec = self.spec.is_some();
        if let Some(spec) = self.spec {
            schedule.spec = spec;
        }
        let compiled = schedule.spec.compile()?;
        if let Some(catch_up) = self.catch_up {
            schedule.catch_up = catch_up;
        }
        if let Some(enabled) = self.enabled {
            schedule.enabled = enabled;
        }
        if let Some(payload) = self.payload {
            schedule.payload = payload;
        }
        if respec || reenabled {
            schedule.next_tick = compiled.next_after(&schedule.id.to_string(), now)?;
        }
        schedule.updated_at = to_micros(now);
        Ok(schedule)
    }
}

/// How many times an update re-reads a row that changed under it before giving up.
const UPDATE_ATTEMPTS: usize = 8;

/// Schedules in the store of record. Every method except the scheduler's is scoped to one
/// owner: a tenant, or with `None` the platform; another owner's schedule reads as absent.
#[derive(Debug, Clone)]
pub struct ScheduleStore {
    database: Database,
    clock: Arc<dyn Clock>,
}

impl ScheduleStore {
    /// Schedules in a connected, migrated database, timed by the system clock.
    pub fn new(database: &Database) -> Self {
        Self {
            database: database.clone(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same store, timed by `clock` (the first tick of a new schedule counts from it).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Creates a schedule whose first tick is the spec's first tick after now.
    ///
    /// # Errors
    /// A spec error ([`ScheduleError::InvalidCron`], [`ScheduleError::UnknownTimeZone`],
    /// [`ScheduleError::InvalidInterval`], [`ScheduleError::NoUpcomingTick`]) or a database
    /// error (including a foreign-key violation for an unknown tenant).
    pub async fn create(&self, new: NewSchedule) -> Result<Schedule, ScheduleError> {
        let compiled = new.spec.compile()?;
        let id = ScheduleId::generate();
        let now = to_micros(self.clock.now());
        let schedule = Schedule {
            id,
            tenant: new.tenant,
            subject: new.subject,
            kind: new.kind,
            payload: new.payload,
            next_tick: compiled.next_after(&id.to_string(), now)?,
            spec: new.spec,
            catch_up: new.catch_up,
            enabled: new.enabled,
            last_tick: None,
            revision: 0,
            created_at: now,
            updated_at: now,
        };
        on_backend!(&self.database, insert(&schedule))?;
        Ok(schedule)
    }

    /// One schedule of `tenant`.
    ///
    /// # Errors
    /// Database errors, or [`ScheduleError::Corrupt`] for a row that does not parse.
    pub async fn get(
        &self,
        tenant: Option<TenantId>,
        id: ScheduleId,
    ) -> Result<Option<Schedule>, ScheduleError> {
        let row = on_backend!(&self.database, select_one(tenant, id))?;
        row.map(ScheduleRow::into_schedule).transpose()
    }

    /// A page of `tenant`'s schedules in creation order, optionally only those of `subject`.
    /// `after` is the previous page's `next_after`; `limit` is clamped to 1..=1000.
    ///
    /// # Errors
    /// Database errors, or [`ScheduleError::Corrupt`].
    pub async fn list(
        &self,
        tenant: Option<TenantId>,
        subject: Option<&str>,
        after: Option<ScheduleId>,
        limit: u32,
    ) -> Result<Page<Schedule, ScheduleId>, ScheduleError> {
        let limit = limit.clamp(1, 1000);
        let rows = on_backend!(
            &self.database,
            select_page(tenant, subject, after, limit + 1)
        )?;
        let mut items = rows
            .into_iter()
            .map(ScheduleRow::into_schedule)
            .collect::<Result<Vec<_>, _>>()?;
        let next_after = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|schedule| schedule.id)
        } else {
            None
        };
        Ok(Page { items, next_after })
    }

    /// Applies `update` to one of `tenant`'s schedules; `None` when there is no such schedule.
    ///
    /// # Errors
    /// A spec error as for [`ScheduleStore::create`], [`ScheduleError::Contended`], or a
    /// database error.
    pub async fn update(
        &self,
        tenant: Option<TenantId>,
        id: ScheduleId,
        update: ScheduleUpdate,
    ) -> Result<Option<Schedule>, ScheduleError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(current) = self.get(tenant, id).await? else {
                return Ok(None);
            };
            let expected = current.revision;
            let mut changed = update.clone().apply(current, self.clock.now())?;
            changed.revision = expected + 1;
            if on_backend!(&self.database, replace(tenant, &changed, expected))? {
                return Ok(Some(changed));
            }
            // A scheduler advanced the row (or another edit landed) meanwhile: re-read.
        }
        Err(ScheduleError::Contended)
    }

    /// Deletes one of `tenant`'s schedules; `false` when there was none. Jobs already enqueued
    /// for its ticks are not affected.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete(
        &self,
        tenant: Option<TenantId>,
        id: ScheduleId,
    ) -> Result<bool, ScheduleError> {
        on_backend!(&self.database, delete(tenant, id))
    }

    /// Enabled schedules with `next_tick <= now`, most overdue first, across all owners,
    /// except those of tenants that are being deleted.
    pub(crate) async fn due(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Schedule>, ScheduleError> {
        let rows = on_backend!(&self.database, select_due(now, limit))?;
        rows.into_iter().map(ScheduleRow::into_schedule).collect()
    }

    /// Moves `schedule`'s next tick to `next_tick` if nobody else changed the row since it was
    /// read; `false` when somebody did (another scheduler won the race, or a user edited it).
    pub(crate) async fn advance(
        &self,
        schedule: &Schedule,
        next_tick: OffsetDateTime,
        fired: Option<OffsetDateTime>,
    ) -> Result<bool, ScheduleError> {
        on_backend!(&self.database, advance(schedule, next_tick, fired))
    }
}

/// A row as read; `FromRow` because it has more columns than sqlx's tuples support.
#[derive(Debug, sqlx::FromRow)]
struct ScheduleRow {
    id: String,
    tenant_id: Option<String>,
    subject: String,
    job_kind: String,
    job_payload: Json<serde_json::Value>,
    spec_type: String,
    every_seconds: Option<i64>,
    jitter_percent: Option<i64>,
    cron_expression: Option<String>,
    time_zone: Option<String>,
    catch_up: String,
    enabled: bool,
    next_tick: OffsetDateTime,
    last_tick: Option<OffsetDateTime>,
    revision: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, tenant_id, subject, job_kind, job_payload, spec_type, every_seconds, \
    jitter_percent, cron_expression, time_zone, catch_up, enabled, next_tick, last_tick, \
    revision, created_at, updated_at";

/// The spec as its columns: type, every_seconds, jitter_percent, cron_expression, time_zone.
type SpecColumns = (
    &'static str,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn spec_columns(spec: &ScheduleSpec) -> SpecColumns {
    match spec {
        ScheduleSpec::Interval {
            every_seconds,
            jitter_percent,
        } => (
            "interval",
            Some(i64::from(*every_seconds)),
            Some(i64::from(*jitter_percent)),
            None,
            None,
        ),
        ScheduleSpec::Cron {
            expression,
            time_zone,
        } => (
            "cron",
            None,
            None,
            Some(expression.clone()),
            Some(time_zone.clone()),
        ),
    }
}

impl ScheduleRow {
    fn into_schedule(self) -> Result<Schedule, ScheduleError> {
        let spec = match (
            self.spec_type.as_str(),
            self.every_seconds,
            self.jitter_percent,
            self.cron_expression,
            self.time_zone,
        ) {
            ("interval", Some(every), Some(jitter), None, None) => ScheduleSpec::Interval {
                every_seconds: u32::try_from(every).map_err(ScheduleError::corrupt)?,
                jitter_percent: u8::try_from(jitter).map_err(ScheduleError::corrupt)?,
            },
            ("cron", None, None, Some(expression), Some(time_zone)) => ScheduleSpec::Cron {
                expression,
                time_zone,
            },
            (other, ..) => {
                return Err(ScheduleError::corrupt(format!("spec of type `{other}`")));
            }
        };
        Ok(Schedule {
            id: self.id.parse().map_err(ScheduleError::corrupt)?,
            tenant: self
                .tenant_id
                .map(|tenant| tenant.parse())
                .transpose()
                .map_err(ScheduleError::corrupt)?,
            subject: self.subject,
            kind: self.job_kind,
            payload: self.job_payload.0,
            spec,
            catch_up: CatchUp::parse(&self.catch_up)?,
            enabled: self.enabled,
            next_tick: self.next_tick,
            last_tick: self.last_tick,
            revision: self.revision,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

macro_rules! schedule_sql {
    ($module:ident, $pool:ty, time: $time:path) => {
        mod $module {
            use super::*;

            pub(super) async fn insert(
                pool: &$pool,
                schedule: &Schedule,
            ) -> Result<(), ScheduleError> {
                let (spec_type, every, jitter, expression, zone) = spec_columns(&schedule.spec);
                sqlx::query(
                    "INSERT INTO schedules (id, tenant_id, subject, job_kind, job_payload, \
                     spec_type, every_seconds, jitter_percent, cron_expression, time_zone, \
                     catch_up, enabled, next_tick, last_tick, revision, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, $14, \
                     $15, $16)",
                )
                .bind(schedule.id.to_string())
                .bind(owner_param(schedule.tenant))
                .bind(&schedule.subject)
                .bind(&schedule.kind)
                .bind(Json(&schedule.payload))
                .bind(spec_type)
                .bind(every)
                .bind(jitter)
                .bind(expression)
                .bind(zone)
                .bind(schedule.catch_up.as_str())
                .bind(schedule.enabled)
                .bind($time(schedule.next_tick)?)
                .bind(schedule.revision)
                .bind($time(schedule.created_at)?)
                .bind($time(schedule.updated_at)?)
                .execute(pool)
                .await?;
                Ok(())
            }

            pub(super) async fn select_one(
                pool: &$pool,
                tenant: Option<TenantId>,
                id: ScheduleId,
            ) -> Result<Option<ScheduleRow>, ScheduleError> {
                let row = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM schedules WHERE {} AND id = $2",
                    owner_condition(tenant)
                ))
                .bind(owner_param(tenant))
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?;
                Ok(row)
            }

            pub(super) async fn select_page(
                pool: &$pool,
                tenant: Option<TenantId>,
                subject: Option<&str>,
                after: Option<ScheduleId>,
                limit: u32,
            ) -> Result<Vec<ScheduleRow>, ScheduleError> {
                let rows = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM schedules WHERE {} \
                     AND ($2 IS NULL OR subject = $2) AND ($3 IS NULL OR id > $3) \
                     ORDER BY id LIMIT $4",
                    owner_condition(tenant)
                ))
                .bind(owner_param(tenant))
                .bind(subject)
                .bind(after.map(|id| id.to_string()))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
                Ok(rows)
            }

            pub(super) async fn replace(
                pool: &$pool,
                tenant: Option<TenantId>,
                schedule: &Schedule,
                expected_revision: i64,
            ) -> Result<bool, ScheduleError> {
                let (spec_type, every, jitter, expression, zone) = spec_columns(&schedule.spec);
                let updated = sqlx::query(&format!(
                    "UPDATE schedules SET job_payload = $3, spec_type = $4, every_seconds = $5, \
                     jitter_percent = $6, cron_expression = $7, time_zone = $8, catch_up = $9, \
                     enabled = $10, next_tick = $11, revision = $12, updated_at = $13 \
                     WHERE {} AND id = $2 AND revision = $14",
                    owner_condition(tenant)
                ))
                .bind(owner_param(tenant))
                .bind(schedule.id.to_string())
                .bind(Json(&schedule.payload))
                .bind(spec_type)
                .bind(every)
                .bind(jitter)
                .bind(expression)
                .bind(zone)
                .bind(schedule.catch_up.as_str())
                .bind(schedule.enabled)
                .bind($time(schedule.next_tick)?)
                .bind(schedule.revision)
                .bind($time(schedule.updated_at)?)
                .bind(expected_revision)
                .execute(pool)
                .await?
                .rows_affected();
                Ok(updated == 1)
            }

            pub(super) async fn delete(
                pool: &$pool,
                tenant: Option<TenantId>,
                id: ScheduleId,
            ) -> Result<bool, ScheduleError> {
                let deleted = sqlx::query(&format!(
                    "DELETE FROM schedules WHERE {} AND id = $2",
                    owner_condition(tenant)
                ))
                .bind(owner_param(tenant))
                .bind(id.to_string())
                .execute(pool)
                .await?
                .rows_affected();
                Ok(deleted == 1)
            }

            pub(super) async fn select_due(
                pool: &$pool,
                now: OffsetDateTime,
                limit: u32,
            ) -> Result<Vec<ScheduleRow>, ScheduleError> {
                // A tenant being deleted (hidden, waiting for its purge) gets no new work:
                // its keys are already shredded, so the jobs could only fail.
                let rows = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM schedules WHERE enabled AND next_tick <= $1 \
                     AND (tenant_id IS NULL OR EXISTS (SELECT 1 FROM tenants \
                          WHERE tenants.id = schedules.tenant_id AND tenants.deleted_at IS NULL)) \
                     ORDER BY next_tick LIMIT $2"
                ))
                .bind($time(now)?)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
                Ok(rows)
            }

            pub(super) async fn advance(
                pool: &$pool,
                schedule: &Schedule,
                next_tick: OffsetDateTime,
                fired: Option<OffsetDateTime>,
            ) -> Result<bool, ScheduleError> {
                // The compare-and-swap: of several schedulers that read the same row, exactly
                // one moves it on. The revision also catches a user's edit in between.
                let fired = fired.map($time).transpose()?;
                let updated = sqlx::query(
                    "UPDATE schedules SET next_tick = $3, last_tick = COALESCE($4, last_tick), \
                     revision = revision + 1 \
                     WHERE id = $1 AND next_tick = $2 AND revision = $5",
                )
                .bind(schedule.id.to_string())
                .bind($time(schedule.next_tick)?)
                .bind($time(next_tick)?)
                .bind(fired)
                .bind(schedule.revision)
                .execute(pool)
                .await?
                .rows_affected();
                Ok(updated == 1)
            }
        }
    };
}

schedule_sql!(sqlite, sqlx::SqlitePool, time: bind_time);
schedule_sql!(postgres, sqlx::PgPool, time: bind_time);
