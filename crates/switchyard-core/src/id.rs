//! Prefixed identifiers: a short type prefix, an underscore and a ULID (`ten_01J9…`).
//!
//! ULIDs sort by creation time, so "ORDER BY id" is creation order and a cursor can simply be
//! the last id seen. The prefix makes ids self-describing in logs and stops a key id from being
//! accepted where a tenant id is expected.

use std::{
    fmt,
    str::FromStr,
    sync::{Mutex, PoisonError},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::{Generator, Ulid};

/// One generator per process, so ids made in the same millisecond still sort in creation
/// order (a plain `Ulid::new()` randomises them within the millisecond).
static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

fn next_ulid() -> Ulid {
    let mut generator = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
    // Overflow needs 2^80 ids in one millisecond; fall back to a random one rather than fail.
    generator.generate().unwrap_or_else(|_| Ulid::new())
}

/// Why a string is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    #[error("expected an id starting with `{expected}_`")]
    WrongPrefix { expected: &'static str },
    #[error("the part after `{prefix}_` is not a valid ULID")]
    InvalidUlid { prefix: &'static str },
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Ulid);

        impl $name {
            /// The prefix before the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A new id for the current time.
            pub fn generate() -> Self {
                Self(next_ulid())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                let ulid = value
                    .strip_prefix($prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .ok_or(IdParseError::WrongPrefix { expected: $prefix })?;
                // Ulid::from_string accepts lowercase too; ids are canonical uppercase so that
                // one id has exactly one spelling.
                if ulid.len() != 26 || ulid.bytes().any(|b| b.is_ascii_lowercase()) {
                    return Err(IdParseError::InvalidUlid { prefix: $prefix });
                }
                Ulid::from_string(ulid)
                    .map(Self)
                    .map_err(|_| IdParseError::InvalidUlid { prefix: $prefix })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9A-HJKMNP-TV-Z]{26}$")))
                    .examples([concat!($prefix, "_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// Identifies a tenant.
    TenantId,
    "ten"
);
prefixed_id!(
    /// Identifies a tenant API key (not the secret key itself).
    ApiKeyId,
    "key"
);
prefixed_id!(
    /// Identifies a job of the durable queue.
    JobId,
    "job"
);
prefixed_id!(
    /// Identifies a recurring schedule.
    ScheduleId,
    "sch"
);
prefixed_id!(
    /// Identifies a run, the user-visible record of a unit of work.
    RunId,
    "run"
);
prefixed_id!(
    /// Identifies an outbound webhook endpoint (a tenant's subscriber).
    EndpointId,
    "ep"
);
prefixed_id!(
    /// Identifies an outbound event (message); the default `webhook-id` of its deliveries.
    MessageId,
    "msg"
);
prefixed_id!(
    /// Identifies one delivery of an outbound event to one endpoint.
    DeliveryId,
    "dlv"
);
prefixed_id!(
    /// Identifies an inbound webhook source (a URL a provider pushes to).
    SourceId,
    "src"
);
prefixed_id!(
    /// Identifies one inbound webhook delivery as received and stored.
    InboundEventId,
    "inb"
);
prefixed_id!(
    /// Identifies a connection: a tenant's account at a provider, reached through a connector.
    ConnectionId,
    "conn"
);
prefixed_id!(
    /// Identifies a tenant's OAuth client registration at a provider.
    OAuthClientId,
    "oac"
);
prefixed_id!(
    /// Identifies a connect session: one end user's attempt to connect (or repair) an account.
    ConnectSessionId,
    "cse"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text_and_json() {
        let id = TenantId::generate();
        let text = id.to_string();
        assert!(text.starts_with("ten_"));
        assert_eq!(text.parse::<TenantId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<TenantId>(&json).unwrap(), id);
    }

    #[test]
    fn rejects_other_kinds_and_malformed_text() {
        let key = ApiKeyId::generate().to_string();
        assert_eq!(
            key.parse::<TenantId>(),
            Err(IdParseError::WrongPrefix { expected: "ten" })
        );
        for bad in [
            "",
            "ten_",
            "ten_123",
            "ten01JD2S5W8X3Q4R5T6V7W8X9Y0Z",
            "ten_01jd2s5w8x3q4r5t6v7w8x9y0z",
        ] {
            assert!(bad.parse::<TenantId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn ids_sort_by_creation_time_even_within_a_millisecond() {
        let ids: Vec<String> = (0..1000)
            .map(|_| TenantId::generate().to_string())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
