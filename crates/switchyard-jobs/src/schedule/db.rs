//! How times and tenants are bound, shared by the schedule and run stores.
//!
//! Times use the store's one encoding ([`DbTime`]): `timestamptz` on PostgreSQL, fixed-width
//! UTC text on SQLite, so this crate's SQL comparisons (`next_tick <= $now`,
//! `created_at >= $since`, the compare-and-swap on `next_tick`) are time comparisons on both.

use switchyard_core::TenantId;
use switchyard_store::DbTime;
use time::OffsetDateTime;

/// `time` without its nanoseconds below the microsecond.
pub(crate) fn to_micros(time: OffsetDateTime) -> OffsetDateTime {
    DbTime::new(time).get()
}

/// A time as bound on either engine. Fallible so the store macros can take a binder that
/// fails (`?` at every call site).
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn bind_time(time: OffsetDateTime) -> Result<DbTime, sqlx::Error> {
    Ok(DbTime::new(time))
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
