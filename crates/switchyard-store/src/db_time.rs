//! [`DbTime`]: the one way a point in time is written to and read from the store.
//!
//! PostgreSQL stores `timestamptz`. SQLite has no time type, so times are text, and Switchyard
//! compares them in SQL (`run_at <= $now`, retention cut-offs, the schedule compare-and-swap).
//! Text comparison is only time comparison when every writer uses one fixed-width format:
//! UTC RFC 3339 with exactly six fraction digits and a `Z`. (sqlx's own encoding of
//! `OffsetDateTime` uses a space separator and drops trailing zeros, so mixing the two breaks
//! ordering within a day.) Times are truncated to microseconds, PostgreSQL's precision, so a
//! value reads back equal to what was written on both engines.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const SQLITE_FORMAT: &[BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

/// sqlx's default SQLite text for times, still accepted when reading rows written before every
/// writer used [`DbTime`].
const SQLX_LEGACY_FORMAT: &[BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
);

/// A UTC time truncated to microseconds, bound and decoded the same way on both engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DbTime(OffsetDateTime);

impl DbTime {
    /// `time` in UTC, without its nanoseconds below the microsecond.
    pub fn new(time: OffsetDateTime) -> Self {
        let utc = time.to_offset(UtcOffset::UTC);
        Self(
            utc.replace_nanosecond(utc.nanosecond() / 1_000 * 1_000)
                .unwrap_or(utc),
        )
    }

    /// The current time as stored.
    pub fn now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }

    pub fn get(self) -> OffsetDateTime {
        self.0
    }

    /// The SQLite text form: fixed width, so text order is time order.
    pub fn to_sqlite_text(self) -> String {
        // Formatting a UTC time with a four-digit year cannot fail; years outside 0..=9999
        // (which the format cannot express) fall back to RFC 3339, which still parses back.
        self.0
            .format(SQLITE_FORMAT)
            .or_else(|_| self.0.format(&Rfc3339))
            .unwrap_or_default()
    }

    /// Parses the SQLite text form (and, for older rows, RFC 3339 or sqlx's default text).
    pub fn parse_sqlite_text(text: &str) -> Result<Self, time::error::Parse> {
        match OffsetDateTime::parse(text, &Rfc3339) {
            Ok(time) => Ok(Self::new(time)),
            Err(rfc3339_error) => {
                let trimmed = text.trim_end_matches("+00:00").trim_end_matches('Z');
                PrimitiveDateTime::parse(trimmed, SQLX_LEGACY_FORMAT)
                    .map(|time| Self::new(time.assume_utc()))
                    .map_err(|_| rfc3339_error)
            }
        }
    }
}

impl From<OffsetDateTime> for DbTime {
    fn from(time: OffsetDateTime) -> Self {
        Self::new(time)
    }
}

impl From<DbTime> for OffsetDateTime {
    fn from(time: DbTime) -> Self {
        time.0
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.to_sqlite_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(Self::parse_sqlite_text(text)?)
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self::new(<OffsetDateTime as Decode<'r, Postgres>>::decode(
            value,
        )?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sqlite_text_is_fixed_width_and_sorts_as_time() {
        let early = DbTime::new(datetime!(2024-03-31 00:00:05 UTC));
        let later = DbTime::new(datetime!(2024-03-31 00:00:05.1 UTC));
        let next_day = DbTime::new(datetime!(2024-04-01 00:00:00 +02:00));
        assert_eq!(early.to_sqlite_text(), "2024-03-31T00:00:05.000000Z");
        assert_eq!(next_day.to_sqlite_text(), "2024-03-31T22:00:00.000000Z");
        assert!(early.to_sqlite_text() < later.to_sqlite_text());
        assert!(later.to_sqlite_text() < next_day.to_sqlite_text());
    }

    #[test]
    fn parses_what_it_writes_and_legacy_text() {
        let time = DbTime::new(datetime!(2026-11-22 10:11:12.123456789 UTC));
        assert_eq!(time.get(), datetime!(2026-11-22 10:11:12.123456 UTC));
        assert_eq!(
            DbTime::parse_sqlite_text(&time.to_sqlite_text()).unwrap(),
            time
        );
        assert_eq!(
            DbTime::parse_sqlite_text("2026-11-22 10:11:12.123456").unwrap(),
            time
        );
        assert_eq!(
            DbTime::parse_sqlite_text("2026-11-22 10:11:12.123456+00:00").unwrap(),
            time
        );
        assert!(DbTime::parse_sqlite_text("yesterday").is_err());
    }
}
