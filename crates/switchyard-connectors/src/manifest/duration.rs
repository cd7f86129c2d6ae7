//! Durations written the way people write them (`5m`, `1h 30m`, `250ms`).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestDuration(pub Duration);

impl<'de> Deserialize<'de> for ManifestDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(Self).map_err(|error| {
            serde::de::Error::custom(format!("`{text}` is not a duration: {error}"))
        })
    }
}

impl JsonSchema for ManifestDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as `30s`, `5m`, `1h 30m`.",
            "pattern": r"^\s*\d+\s*[a-zµ]+(\s*\d+\s*[a-zµ]+)*\s*$"
        })
    }
}
