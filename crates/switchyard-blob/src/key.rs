//! Blob keys: `{tenant}/{kind}/{yyyy}/{mm}/{dd}/{id}`.
//!
//! The tenant comes first so one prefix holds everything a tenant owns (tenant deletion is a
//! prefix delete) and the date comes before the id so retention can drop whole days without
//! reading any object. Every component is validated so no key can climb out of its tenant's
//! prefix or collide with another tenant's.

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime, UtcOffset};

use crate::error::{BlobError, Result};

const MAX_SEGMENT: usize = 128;
const MAX_KIND: usize = 64;

/// The address of one blob.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobKey {
    tenant: String,
    kind: String,
    date: Date,
    id: String,
}

impl BlobKey {
    /// A key for a blob of `kind` that `tenant` received or produced at `at`.
    ///
    /// The date is taken in UTC so the same instant always lands on the same day, whatever the
    /// caller's offset.
    pub fn new(
        tenant: impl Into<String>,
        kind: impl Into<String>,
        at: OffsetDateTime,
        id: impl Into<String>,
    ) -> Result<Self> {
        Self::for_date(tenant, kind, at.to_offset(UtcOffset::UTC).date(), id)
    }

    /// A key with an explicit (UTC) date.
    pub fn for_date(
        tenant: impl Into<String>,
        kind: impl Into<String>,
        date: Date,
        id: impl Into<String>,
    ) -> Result<Self> {
        let (tenant, kind, id) = (tenant.into(), kind.into(), id.into());
        validate_tenant(&tenant)?;
        validate_kind(&kind)?;
        validate_segment("id", &id)?;
        validate_year(date)?;
        Ok(Self {
            tenant,
            kind,
            date,
            id,
        })
    }

    /// The owning tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// What sort of payload this is (`inbound`, `delivery-response`, ...).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The UTC day the blob belongs to (retention works by this day).
    pub fn date(&self) -> Date {
        self.date
    }

    /// The blob's own id, unique within tenant, kind and day.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn to_path(&self) -> object_store::path::Path {
        // Every component was validated as a plain path segment, so this cannot be re-split.
        object_store::path::Path::from_iter([
            self.tenant.as_str(),
            self.kind.as_str(),
            &format!("{:04}", self.date.year()),
            &format!("{:02}", u8::from(self.date.month())),
            &format!("{:02}", self.date.day()),
            self.id.as_str(),
        ])
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{:04}/{:02}/{:02}/{}",
            self.tenant,
            self.kind,
            self.date.year(),
            u8::from(self.date.month()),
            self.date.day(),
            self.id
        )
    }
}

impl FromStr for BlobKey {
    type Err = BlobError;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let [tenant, kind, year, month, day, id] = parts.as_slice() else {
            return Err(BlobError::InvalidKey(
                "expected {tenant}/{kind}/{yyyy}/{mm}/{dd}/{id}".to_owned(),
            ));
        };
        let date = parse_date(year, month, day)
            .ok_or_else(|| BlobError::InvalidKey(format!("{year}/{month}/{day} is not a date")))?;
        Self::for_date(*tenant, *kind, date, *id)
    }
}

/// Parses the `yyyy`, `mm`, `dd` components of a key; `None` if they are not a real date.
pub(crate) fn parse_date(year: &str, month: &str, day: &str) -> Option<Date> {
    fn digits(s: &str, len: usize) -> Option<u16> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    }
    let year = i32::from(digits(year, 4)?);
    let month = Month::try_from(u8::try_from(digits(month, 2)?).ok()?).ok()?;
    let day = u8::try_from(digits(day, 2)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// Checks a tenant id: a non-empty plain path segment.
pub fn validate_tenant(tenant: &str) -> Result<()> {
    validate_segment("tenant", tenant)
}

/// Checks a kind: lowercase letters, digits and `-`, starting with a letter.
pub fn validate_kind(kind: &str) -> Result<()> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_KIND
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(format!(
            "kind {kind:?} must be 1-{MAX_KIND} of a-z, 0-9 and '-', starting with a letter"
        )))
    }
}

/// A segment is ASCII letters, digits, `_`, `-` and `.`, but never starts with `.`: that rules
/// out `.` and `..` and hidden files, and with `/` and `#` excluded it can neither split into
/// more segments nor collide with the local store's staging files (`name#n`).
fn validate_segment(what: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= MAX_SEGMENT
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(format!(
            "{what} {value:?} must be 1-{MAX_SEGMENT} of A-Z, a-z, 0-9, '_', '-', '.', not starting with '.'"
        )))
    }
}

fn validate_year(date: Date) -> Result<()> {
    if (1..=9999).contains(&date.year()) {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(format!(
            "year {} is outside 0001-9999",
            date.year()
        )))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn formats_and_parses_back() {
        let key = BlobKey::new(
            "ten_01J",
            "delivery-response",
            datetime!(2024-03-05 23:30 -02:00),
            "evt_1",
        )
        .unwrap();
        // 23:30 at -02:00 is the next day in UTC.
        assert_eq!(
            key.to_string(),
            "ten_01J/delivery-response/2024/03/06/evt_1"
        );
        assert_eq!(key.to_path().as_ref(), key.to_string());
        assert_eq!(key.to_string().parse::<BlobKey>().unwrap(), key);
    }

    #[test]
    fn rejects_traversal_and_separators() {
        let d = date!(2024 - 01 - 01);
        for bad in [
            "", ".", "..", "a/b", "../x", ".hidden", "a#1", "a b", "a\\b", "é",
        ] {
            assert!(
                BlobKey::for_date(bad, "inbound", d, "id").is_err(),
                "{bad:?}"
            );
            assert!(
                BlobKey::for_date("t", "inbound", d, bad).is_err(),
                "{bad:?}"
            );
        }
        for bad in ["", "Inbound", "1x", "in/bound", "in_bound", ".."] {
            assert!(BlobKey::for_date("t", bad, d, "id").is_err(), "{bad:?}");
        }
        let long = "a".repeat(MAX_SEGMENT + 1);
        assert!(BlobKey::for_date(long, "inbound", d, "id").is_err());
    }

    #[test]
    fn parse_rejects_malformed_strings() {
        for bad in [
            "t/inbound/2024/01/01",
            "t/inbound/2024/01/01/id/extra",
            "t/inbound/2024/1/01/id",
            "t/inbound/2024/02/30/id",
            "t/inbound/2024/13/01/id",
            "t/inbound/+024/01/01/id",
            "../inbound/2024/01/01/id",
            "t/inbound/2024/01/01/..",
            "/t/inbound/2024/01/01/id",
        ] {
            assert!(bad.parse::<BlobKey>().is_err(), "{bad:?}");
        }
    }
}
