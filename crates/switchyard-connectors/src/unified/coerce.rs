//! Value conversions for `as:`. Each returns `Err(expected)` naming what it wanted, so the
//! caller can say which field failed without echoing the record's value.

use serde_json::{Number, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::mapping::Coercion;

/// Converts `value`; null stays null under every coercion.
pub(super) fn coerce(coercion: Coercion, value: Value) -> Result<Value, &'static str> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match coercion {
        Coercion::Boolean => to_boolean(&value).map(Value::Bool).ok_or("a boolean"),
        Coercion::Integer => to_integer(&value).ok_or("an integer"),
        Coercion::Number => to_number(&value).ok_or("a number"),
        Coercion::String => to_text(&value).map(Value::String).ok_or("a string"),
        Coercion::Timestamp => to_timestamp(&value)
            .map(Value::String)
            .ok_or("an RFC 3339 timestamp or Unix epoch seconds or milliseconds"),
    }
}

/// The JSON kind of a value, for error messages.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A scalar's text: strings as they are, numbers and booleans as JSON writes them.
pub(super) fn to_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn to_boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => match number.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn to_integer(value: &Value) -> Option<Value> {
    match value {
        Value::Number(number) if number.is_i64() || number.is_u64() => Some(value.clone()),
        Value::Number(number) => number.as_f64().and_then(whole_number),
        Value::String(text) => {
            let text = text.trim();
            if let Ok(integer) = text.parse::<i64>() {
                Some(Value::from(integer))
            } else {
                text.parse::<u64>().ok().map(Value::from)
            }
        }
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A float with no fraction that fits an `i64`, as an integer.
fn whole_number(float: f64) -> Option<Value> {
    // 2^63 is exactly representable; anything at or past it does not fit.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let in_range = float.is_finite() && float.fract() == 0.0 && (-LIMIT..LIMIT).contains(&float);
    // The range and fraction checks above make the cast exact.
    in_range.then(|| Value::from(float as i64))
}

fn to_number(value: &Value) -> Option<Value> {
    match value {
        Value::Number(_) => Some(value.clone()),
        Value::String(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number),
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Epoch values at or past this are milliseconds: as seconds they would be after the year
/// 5000, as milliseconds they are after March 1973.
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

fn to_timestamp(value: &Value) -> Option<String> {
    let instant = match value {
        Value::Number(number) => from_epoch_number(number)?,
        Value::String(text) => {
            let text = text.trim();
            let is_epoch = !text.is_empty()
                && text
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || byte == b'.');
            if is_epoch {
                from_epoch_number(&text.parse::<Number>().ok()?)?
            } else {
                parse_datetime(text)?
            }
        }
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => return None,
    };
    instant.to_offset(UtcOffset::UTC).format(&Rfc3339).ok()
}

fn from_epoch_number(number: &Number) -> Option<OffsetDateTime> {
    // Integers stay integers: through a float, epoch milliseconds lose their last digit.
    if let Some(epoch) = number.as_i64() {
        let nanos = if epoch.unsigned_abs() >= MILLIS_THRESHOLD.unsigned_abs() {
            i128::from(epoch) * 1_000_000
        } else {
            i128::from(epoch) * 1_000_000_000
        };
        return OffsetDateTime::from_unix_timestamp_nanos(nanos).ok();
    }
    let epoch = number.as_f64()?;
    let seconds = if epoch.abs() >= MILLIS_THRESHOLD as f64 {
        epoch / 1000.0
    } else {
        epoch
    };
    // Past about 10^4 years `time` has no representation; the bound also keeps the cast
    // below from saturating.
    let nanos = (seconds * 1e9).round();
    if !nanos.is_finite() || nanos.abs() > 1e30 {
        return None;
    }
    OffsetDateTime::from_unix_timestamp_nanos(nanos as i128).ok()
}

/// RFC 3339, or the ISO 8601 variant with a colon-less offset (`2024-01-15T10:30:00.000+0000`)
/// that Jira and other Java-based APIs send.
fn parse_datetime(text: &str) -> Option<OffsetDateTime> {
    if let Ok(instant) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(instant);
    }
    let bytes = text.as_bytes();
    let split = bytes.len().checked_sub(5)?;
    let (head, offset) = bytes.split_at(split);
    let colonless = matches!(offset[0], b'+' | b'-') && offset[1..].iter().all(u8::is_ascii_digit);
    if !colonless || head.is_empty() {
        return None;
    }
    // `split` is at an ASCII sign byte, so both halves are valid UTF-8.
    let (head, offset) = text.split_at(split);
    let with_colon = format!("{head}{}:{}", &offset[..3], &offset[3..]);
    OffsetDateTime::parse(&with_colon, &Rfc3339).ok()
}
