//! When a schedule ticks: fixed intervals with jitter, or cron expressions in a time zone.
//!
//! Tick times are whole seconds (a tick's job key carries its Unix second). Every function
//! here is pure and deterministic: the tick after `t` depends only on the schedule and `t`,
//! never on a random draw or on "now". That is what lets several schedulers, each working out
//! the due ticks of the same row independently, agree on the tick times and so on the jobs'
//! unique keys (see [`super::scheduler`]).
//!
//! # Daylight saving time (cron)
//! Cron fields are matched against the wall clock of the schedule's zone:
//! - a wall time that does not exist (spring forward, e.g. `0 2 * * *` in `Europe/Berlin` on
//!   the last Sunday of March, when 02:00 jumps to 03:00) fires at the first instant after
//!   the gap, 03:00 local time: the job still runs once that day;
//! - a wall time that occurs twice (fall back, 02:00–02:59 on the last Sunday of October)
//!   fires once, at its first occurrence (02:00 CEST), not again an hour later;
//! - a schedule created (or re-enabled) during the repeated hour, after the first occurrence
//!   of a matching wall time has passed, fires at its second occurrence rather than in the
//!   past.
//!
//! Intervals are lengths of real time and ignore time zones.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ScheduleError;

/// Longest allowed interval (one year): longer ones are a mistake, and keep tick arithmetic
/// far from overflow.
pub const MAX_INTERVAL_SECONDS: u32 = 366 * 24 * 3600;

/// Largest allowed jitter, in percent of the interval. Up to 50 % keeps consecutive ticks
/// apart and in order.
pub const MAX_JITTER_PERCENT: u8 = 50;

/// When a schedule ticks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScheduleSpec {
    /// Every `every_seconds`, each gap lengthened or shortened by up to `jitter_percent` of
    /// it, so that many schedules created together (say, every connection of a tenant) spread
    /// out instead of firing at the same second. The jitter of each gap is derived from the
    /// schedule id and the previous tick, so it averages out: the long-run rate is exact.
    Interval {
        every_seconds: u32,
        #[serde(default)]
        jitter_percent: u8,
    },
    /// A five-field cron expression (minute, hour, day of month, month, day of week) matched
    /// against the wall clock of `time_zone`, an IANA name such as `Europe/Berlin`.
    Cron {
        expression: String,
        time_zone: String,
    },
}

impl ScheduleSpec {
    /// Every `every_seconds` with no jitter.
    pub fn every(every_seconds: u32) -> Self {
        ScheduleSpec::Interval {
            every_seconds,
            jitter_percent: 0,
        }
    }

    /// A cron expression in a time zone.
    pub fn cron(expression: impl Into<String>, time_zone: impl Into<String>) -> Self {
        ScheduleSpec::Cron {
            expression: expression.into(),
            time_zone: time_zone.into(),
        }
    }

    /// Checks the spec and prepares it for computing ticks.
    ///
    /// # Errors
    /// [`ScheduleError::InvalidInterval`], [`ScheduleError::InvalidCron`] or
    /// [`ScheduleError::UnknownTimeZone`].
    pub fn compile(&self) -> Result<CompiledSpec, ScheduleError> {
        match self {
            ScheduleSpec::Interval {
                every_seconds,
                jitter_percent,
            } => {
                if *every_seconds == 0 || *every_seconds > MAX_INTERVAL_SECONDS {
                    return Err(ScheduleError::InvalidInterval {
                        reason: format!(
                            "every_seconds must be between 1 and {MAX_INTERVAL_SECONDS}, not {every_seconds}"
                        ),
                    });
                }
                if *jitter_percent > MAX_JITTER_PERCENT {
                    return Err(ScheduleError::InvalidInterval {
                        reason: format!(
                            "jitter_percent must be at most {MAX_JITTER_PERCENT}, not {jitter_percent}"
                        ),
                    });
                }
                Ok(CompiledSpec::Interval {
                    every: i64::from(*every_seconds),
                    jitter: i64::from(*every_seconds) * i64::from(*jitter_percent) / 100,
                })
            }
            ScheduleSpec::Cron {
                expression,
                time_zone,
            } => {
                let zone = Tz::from_str(time_zone).map_err(|_| ScheduleError::UnknownTimeZone {
                    zone: time_zone.clone(),
                })?;
                let cron =
                    Cron::new(expression)
                        .parse()
                        .map_err(|error| ScheduleError::InvalidCron {
                            expression: expression.clone(),
                            reason: error.to_string(),
                        })?;
                Ok(CompiledSpec::Cron {
                    cron: Box::new(cron),
                    zone,
                    expression: expression.clone(),
                })
            }
        }
    }
}

/// A validated [`ScheduleSpec`], ready to compute ticks.
#[derive(Debug, Clone)]
pub enum CompiledSpec {
    Interval {
        every: i64,
        jitter: i64,
    },
    Cron {
        cron: Box<Cron>,
        zone: Tz,
        expression: String,
    },
}

impl CompiledSpec {
    /// The first tick strictly after `after`, for the schedule `seed` (its id, which picks the
    /// jitter). Always a whole second.
    ///
    /// # Errors
    /// [`ScheduleError::NoUpcomingTick`] for a cron expression that never matches again.
    pub fn next_after(
        &self,
        seed: &str,
        after: OffsetDateTime,
    ) -> Result<OffsetDateTime, ScheduleError> {
        let after_second = after.unix_timestamp();
        match self {
            CompiledSpec::Interval { every, jitter } => {
                let offset = jitter_offset(seed, after_second, *jitter);
                // With jitter ≤ 50 % the gap is at least half the interval; the max(1) only
                // matters for a one-second interval, where ticks must still move forward.
                let next = after_second + (every + offset).max(1);
                from_unix(next)
            }
            CompiledSpec::Cron {
                cron,
                zone,
                expression,
            } => next_cron_tick(cron, *zone, after_second, expression),
        }
    }
}

/// The next cron match after `after` (Unix seconds), guarding against croner's choice of the
/// *first* occurrence of an ambiguous wall time, which lies before `after` when `after` is in
/// the second pass of a repeated hour.
fn next_cron_tick(
    cron: &Cron,
    zone: Tz,
    after: i64,
    expression: &str,
) -> Result<OffsetDateTime, ScheduleError> {
    let no_tick = || ScheduleError::NoUpcomingTick {
        expression: expression.to_owned(),
    };
    let start = Utc
        .timestamp_opt(after, 0)
        .single()
        .ok_or_else(no_tick)?
        .with_timezone(&zone);
    let mut cursor: DateTime<Tz> = start;
    // A repeated hour holds at most 60 minute matches; the bound only stops a runaway loop.
    for _ in 0..1_000 {
        let candidate = cron
            .find_next_occurrence(&cursor, false)
            .map_err(|_| no_tick())?;
        if candidate.timestamp() > after {
            return from_unix(candidate.timestamp());
        }
        // The wall time is ambiguous and croner took its first occurrence, already past: the
        // second occurrence may still be ahead.
        if let Some(later) = zone
            .from_local_datetime(&candidate.naive_local())
            .latest()
            .filter(|later| later.timestamp() > after)
        {
            return from_unix(later.timestamp());
        }
        cursor = candidate;
    }
    Err(no_tick())
}

fn from_unix(seconds: i64) -> Result<OffsetDateTime, ScheduleError> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|error| ScheduleError::corrupt(format!("tick out of range: {error}")))
}

/// A deterministic offset in `-jitter..=jitter` seconds for the gap after `tick` of the
/// schedule `seed`. Deterministic so that all schedulers compute the same tick times; spread
/// uniformly enough by a 64-bit mix (FNV-1a over the id, then a SplitMix64 finaliser).
fn jitter_offset(seed: &str, tick: i64, jitter: i64) -> i64 {
    if jitter <= 0 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    #[allow(clippy::cast_sign_loss)] // the bits of the tick are what is mixed in
    let mut mixed = hash ^ (tick as u64);
    mixed = mixed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^= mixed >> 31;
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_wrap)] // 0 < span ≤ 2^32
    let span = (2 * jitter + 1) as u64;
    #[allow(clippy::cast_possible_wrap)] // < span
    let draw = (mixed % span) as i64;
    draw - jitter
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    #[test]
    fn jitter_stays_in_bounds_and_varies() {
        let mut seen = std::collections::BTreeSet::new();
        for tick in 0..10_000 {
            let offset = jitter_offset("sch_x", tick, 90);
            assert!((-90..=90).contains(&offset));
            seen.insert(offset);
        }
        assert!(seen.len() > 150, "offsets cover the range: {}", seen.len());
        assert_eq!(jitter_offset("sch_x", 5, 90), jitter_offset("sch_x", 5, 90));
    }

    #[test]
    fn one_second_interval_moves_forward() {
        let spec = ScheduleSpec::Interval {
            every_seconds: 1,
            jitter_percent: 50,
        }
        .compile()
        .unwrap();
        let start = datetime!(2024-01-01 00:00:00 UTC);
        let mut tick = start;
        for _ in 0..100 {
            let next = spec.next_after("sch_y", tick).unwrap();
            assert!(next > tick);
            tick = next;
        }
    }

    #[test]
    fn rejects_bad_specs_with_typed_errors() {
        assert!(matches!(
            ScheduleSpec::cron("61 * * * *", "UTC").compile(),
            Err(ScheduleError::InvalidCron { .. })
        ));
        assert!(matches!(
            ScheduleSpec::cron("0 2 * * *", "Europe/Atlantis").compile(),
            Err(ScheduleError::UnknownTimeZone { .. })
        ));
        assert!(matches!(
            ScheduleSpec::every(0).compile(),
            Err(ScheduleError::InvalidInterval { .. })
        ));
    }
}
