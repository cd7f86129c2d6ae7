//! Prefixed ids for schedules and runs (`sch_…`, `run_…`), shaped like the ones in
//! `switchyard-core` (whose macro is private to it): a type prefix and a monotonic ULID, so
//! `ORDER BY id` is creation order and a cursor is the last id seen. They could move into
//! `switchyard-core` once the API exposes them; the text form would not change.

use std::sync::{Mutex, PoisonError};

use ulid::{Generator, Ulid};

/// One generator per process, so ids made in the same millisecond still sort in order.
static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

pub(crate) fn next_ulid() -> Ulid {
    let mut generator = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
    // Overflow needs 2^80 ids in one millisecond; a random one is better than failing.
    generator.generate().unwrap_or_else(|_| Ulid::new())
}

/// Defines a prefixed id type. Parsing is strict (canonical uppercase ULID) and reports
/// [`switchyard_core::IdParseError`], like the core ids.
macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(::ulid::Ulid);

        impl $name {
            /// The prefix before the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A new id for the current time.
            pub fn generate() -> Self {
                Self($crate::schedule::id::next_ulid())
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}_{}", $prefix, self.0)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(self, f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::switchyard_core::IdParseError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                let ulid = value
                    .strip_prefix($prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .ok_or(::switchyard_core::IdParseError::WrongPrefix { expected: $prefix })?;
                // One id, one spelling: lowercase ULIDs are rejected.
                if ulid.len() != 26 || ulid.bytes().any(|b| b.is_ascii_lowercase()) {
                    return Err(::switchyard_core::IdParseError::InvalidUlid { prefix: $prefix });
                }
                ::ulid::Ulid::from_string(ulid)
                    .map(Self)
                    .map_err(|_| ::switchyard_core::IdParseError::InvalidUlid { prefix: $prefix })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use prefixed_id;

prefixed_id!(
    /// Identifies a recurring schedule.
    ScheduleId,
    "sch"
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::ScheduleId;

    #[test]
    fn round_trips_and_parses_strictly() {
        let id = ScheduleId::generate();
        let text = id.to_string();
        assert!(text.starts_with("sch_"));
        assert_eq!(text.parse::<ScheduleId>().unwrap(), id);
        assert!(
            "run_01JD2S5W8X3Q4R5T6V7W8X9Y0Z"
                .parse::<ScheduleId>()
                .is_err()
        );
        assert!(
            text.to_lowercase()
                .replace("SCH", "sch")
                .parse::<ScheduleId>()
                .is_err()
        );
        assert!(ScheduleId::generate() > id, "ids sort in creation order");
    }
}
