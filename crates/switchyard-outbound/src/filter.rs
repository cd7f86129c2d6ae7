//! Event types and the patterns endpoints subscribe with.
//!
//! A type is dot-separated segments (`github.push`, `switchyard.endpoint.disabled`). A pattern
//! is a type, or a prefix followed by `.*` (`github.*` matches `github.push` and
//! `github.pull_request.opened`, not `github` itself), or `*` alone. An endpoint without
//! patterns receives every type.

use crate::error::{OutboundError, Result};

const MAX_TYPE_LEN: usize = 255;
const MAX_PATTERNS: usize = 256;

fn valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
}

/// Checks an event type: 1–255 characters, dot-separated non-empty segments of
/// `A-Z a-z 0-9 _ - :`.
pub fn validate_event_type(event_type: &str) -> Result<()> {
    if event_type.is_empty() || event_type.len() > MAX_TYPE_LEN {
        return Err(OutboundError::invalid(
            "type",
            "must be 1 to 255 characters",
        ));
    }
    if !event_type.split('.').all(valid_segment) {
        return Err(OutboundError::invalid(
            "type",
            "must be dot-separated segments of letters, digits, `_`, `-` and `:`",
        ));
    }
    Ok(())
}

/// Checks an endpoint's patterns.
pub fn validate_patterns(patterns: &[String]) -> Result<()> {
    if patterns.len() > MAX_PATTERNS {
        return Err(OutboundError::invalid(
            "event_types",
            "at most 256 patterns",
        ));
    }
    for pattern in patterns {
        if pattern == "*" {
            continue;
        }
        let exact = pattern.strip_suffix(".*").unwrap_or(pattern);
        validate_event_type(exact).map_err(|_| {
            OutboundError::invalid(
                "event_types",
                format!("`{pattern}` is neither an event type nor `prefix.*`"),
            )
        })?;
    }
    Ok(())
}

/// Whether `pattern` matches `event_type`.
pub fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => event_type
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == event_type,
    }
}

/// Whether an endpoint subscribed with `patterns` receives `event_type`.
pub fn subscribes(patterns: &[String], event_type: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| pattern_matches(p, event_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_segments() {
        assert!(pattern_matches("github.*", "github.push"));
        assert!(pattern_matches("github.*", "github.pull_request.opened"));
        assert!(!pattern_matches("github.*", "github"));
        assert!(!pattern_matches("github.*", "githubx.push"));
        assert!(pattern_matches(
            "switchyard.endpoint.*",
            "switchyard.endpoint.disabled"
        ));
        assert!(!pattern_matches(
            "switchyard.endpoint.*",
            "switchyard.delivery.exhausted"
        ));
        assert!(pattern_matches("a.b", "a.b"));
        assert!(!pattern_matches("a.b", "a.b.c"));
        assert!(pattern_matches("*", "anything.at.all"));
        assert!(subscribes(&[], "x"));
    }

    #[test]
    fn validation() {
        assert!(validate_event_type("github.push").is_ok());
        assert!(validate_event_type("").is_err());
        assert!(validate_event_type("a..b").is_err());
        assert!(validate_event_type("a b").is_err());
        assert!(validate_patterns(&["github.*".into(), "*".into(), "x.y".into()]).is_ok());
        assert!(validate_patterns(&["github*".into()]).is_err());
        assert!(validate_patterns(&[".*".into()]).is_err());
    }
}
