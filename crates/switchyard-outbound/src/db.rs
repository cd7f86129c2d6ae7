//! How this crate's statements run on either engine.
//!
//! Statements are written once in the dialect both accept (`$n`, `ON CONFLICT`, `RETURNING`)
//! and `switchyard_store`'s `with_conn!` / `with_tx!` expand one body per backend, so the
//! generic sqlx calls in it are instantiated for SQLite and PostgreSQL. Times are always bound and read as
//! [`switchyard_store::DbTime`]. The few statements that bind a list differ: a JSON array read
//! with `json_each` on SQLite, an array on PostgreSQL ([`ListSql`]).

use switchyard_store::DbTime;
use time::OffsetDateTime;

pub(crate) use switchyard_store::{with_conn, with_tx};

/// A list parameter: `IN (SELECT value FROM json_each($n))` on SQLite, `= ANY($n)` on
/// PostgreSQL. Implemented by the connection types so a body written once picks its form.
pub(crate) trait ListSql {
    /// The list's SQL for placeholder `$n` (`column` + membership test).
    fn member(column: &str, n: u8) -> String;
    type List: Send;
    fn list(items: &[String]) -> Self::List;
}

impl ListSql for sqlx::SqliteConnection {
    fn member(column: &str, n: u8) -> String {
        format!("{column} IN (SELECT value FROM json_each(${n}))")
    }
    type List = String;
    fn list(items: &[String]) -> String {
        serde_json::Value::from(items.to_vec()).to_string()
    }
}

impl ListSql for sqlx::PgConnection {
    fn member(column: &str, n: u8) -> String {
        format!("{column} = ANY(${n})")
    }
    type List = Vec<String>;
    fn list(items: &[String]) -> Vec<String> {
        items.to_vec()
    }
}

/// [`ListSql::member`] for the engine of `conn` (a `with_conn!`/`with_tx!` connection).
pub(crate) fn member<C: ListSql>(_conn: &C, column: &str, n: u8) -> String {
    C::member(column, n)
}

/// [`ListSql::list`] for the engine of `conn`.
pub(crate) fn list<C: ListSql>(_conn: &C, items: &[String]) -> C::List {
    C::list(items)
}

pub(crate) fn db_time(time: OffsetDateTime) -> DbTime {
    DbTime::new(time)
}

pub(crate) fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

pub(crate) fn to_u32(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

/// A JSON column's text, or a corrupt-row error naming the table.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    text: &str,
) -> crate::error::Result<T> {
    serde_json::from_str(text).map_err(|e| crate::error::OutboundError::corrupt(table, e))
}

pub(crate) fn parse_id<T: std::str::FromStr>(
    table: &'static str,
    text: &str,
) -> crate::error::Result<T> {
    text.parse()
        .map_err(|_| crate::error::OutboundError::corrupt(table, format!("bad id `{text}`")))
}
