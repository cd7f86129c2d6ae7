//! How times and tenants are bound, shared by the schedule and run stores.
//!
//! PostgreSQL stores `timestamptz`. SQLite stores text, and this crate compares times in SQL
//! (`next_tick <= $now`, `created_at >= $since`, the compare-and-swap on `next_tick`), so it
//! binds fixed-width UTC RFC 3339 with six fraction digits: text order is then time order and
//! equal times are equal strings (sqlx's default encoding drops trailing zeros). Times are
//! truncated to microseconds first, PostgreSQL's precision, so a value reads back equal on both.

use switchyard_core::TenantId;
use time::{OffsetDateTime, UtcOffset, format_description::BorrowedFormatItem};

const SQLITE_TIME: &[BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

/// `time` without its nanoseconds below the microsecond.
pub(crate) fn to_micros(time: OffsetDateTime) -> OffsetDateTime {
    time.replace_nanosecond(time.nanosecond() / 1_000 * 1_000)
        .unwrap_or(time)
}

/// A time as bound on SQLite.
pub(crate) fn sqlite_time(time: OffsetDateTime) -> Result<String, sqlx::Error> {
    to_micros(time)
        .to_offset(UtcOffset::UTC)
        .format(SQLITE_TIME)
        .map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

/// A time as bound on PostgreSQL.
#[allow(clippy::unnecessary_wraps)] // same shape as `sqlite_time` for the store macros
pub(crate) fn postgres_time(time: OffsetDateTime) -> Result<OffsetDateTime, sqlx::Error> {
    Ok(to_micros(time))
}

/// The condition restricting a query to one owner, always on parameter `$1`: a tenant's rows,
/// or with `None` the platform's own rows (no tenant). Written per case rather than as one
/// `OR` so PostgreSQL can use the `(tenant_id, …)` indexes; `$1` is still referenced in the
/// platform case so both statements bind the same parameters.
pub(crate) fn owner_condition(tenant: Option<TenantId>) -> &'static str {
    match tenant {
        Some(_) => "tenant_id = $1",
        None => "(tenant_id IS NULL AND $1 IS NULL)",
    }
}

/// The tenant as bound for [`owner_condition`].
pub(crate) fn owner_param(tenant: Option<TenantId>) -> Option<String> {
    tenant.map(|tenant| tenant.to_string())
}

/// Runs `$function` of the backend module (`sqlite` or `postgres`, next to the call site)
/// matching `$database`'s pool, passing the pool first.
macro_rules! on_backend {
    ($database:expr, $function:ident ( $($arg:expr),* )) => {
        match $database {
            Database::Sqlite(pool) => sqlite::$function(pool, $($arg),*).await,
            Database::Postgres(pool) => postgres::$function(pool, $($arg),*).await,
        }
    };
}
pub(crate) use on_backend;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sqlite_times_are_fixed_width_and_ordered() {
        let early = time::macros::datetime!(2024-03-31 00:00:05 UTC);
        let later = time::macros::datetime!(2024-03-31 00:00:05.1 UTC);
        let (early, later) = (sqlite_time(early).unwrap(), sqlite_time(later).unwrap());
        assert_eq!(early, "2024-03-31T00:00:05.000000Z");
        assert!(early < later);
    }
}
