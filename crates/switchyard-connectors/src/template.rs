//! Templates in manifests (`/orgs/{{ config.org }}/members`), rendered with MiniJinja in
//! strict mode: a name the context lacks is an error, never an empty string in a URL.
//!
//! The context has `config` (the connection's settings), `partition`, `checkpoint`, `input`
//! (actions) and, for header templates only, `secrets` (credential fields).
//!
//! Besides MiniJinja's builtins there is one filter, `format_time(format, time_zone="UTC")`:
//! providers that filter by time want it in their own notation (Jira's JQL
//! `"2024-05-01 13:07"` in the user's zone, Okta's milliseconds).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use std::fmt::Write as _;
use std::str::FromStr as _;

use chrono::format::StrftimeItems;
use chrono::{DateTime, Utc};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("template `{template}`: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub reason: String,
}

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("format_time", format_time);
    env
});

/// `{{ checkpoint.since | format_time("%Y-%m-%d %H:%M", "Europe/Berlin") }}`: an RFC 3339
/// time or epoch seconds (a number or numeric text) in chrono's strftime notation, in an
/// IANA zone. An empty or none input is the empty string: a first read has no `since`, and
/// an empty query value leaves its parameter out.
fn format_time(
    value: &minijinja::Value,
    format: &str,
    time_zone: Option<&str>,
) -> Result<String, minijinja::Error> {
    let failure = |detail: String| minijinja::Error::new(ErrorKind::InvalidOperation, detail);
    let zone_name = time_zone.unwrap_or("UTC");
    let zone = chrono_tz::Tz::from_str(zone_name)
        .map_err(|_| failure(format!("`{zone_name}` is not an IANA time zone")))?;
    let items = StrftimeItems::new(format)
        .parse()
        .map_err(|_| failure(format!("`{format}` is not a strftime format")))?;
    if value.is_none() || value.is_undefined() {
        return Ok(String::new());
    }
    let time = match value.as_str() {
        Some(text) if text.trim().is_empty() => return Ok(String::new()),
        Some(text) => match DateTime::parse_from_rfc3339(text.trim())
            .or_else(|_| DateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f%z"))
        {
            Ok(time) => time.with_timezone(&Utc),
            Err(_) => match text.trim().parse::<f64>() {
                Ok(seconds) => from_epoch(seconds),
                Err(_) => None,
            }
            .ok_or_else(|| failure(format!("`{text}` is neither RFC 3339 nor epoch seconds")))?,
        },
        None => f64::try_from(value.clone())
            .ok()
            .and_then(from_epoch)
            .ok_or_else(|| failure(format!("`{value}` is neither a time nor epoch seconds")))?,
    };
    let mut out = String::new();
    write!(
        out,
        "{}",
        time.with_timezone(&zone).format_with_items(items.iter())
    )
    .map_err(|_| failure(format!("`{format}` cannot format this time")))?;
    Ok(out)
}

fn from_epoch(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.floor();
    // Saturating casts: anything out of range fails `from_timestamp` below.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (secs, nanos) = (
        whole as i64,
        ((seconds - whole) * 1e9).round().min(999_999_999.0) as u32,
    );
    DateTime::from_timestamp(secs, nanos)
}

fn error(template: &str, source: &minijinja::Error) -> TemplateError {
    // `{:#}` would add the source snippet; the kind and detail are enough and stay one line.
    let reason = match source.detail() {
        Some(detail) => format!("{}: {detail}", source.kind()),
        None => source.kind().to_string(),
    };
    TemplateError {
        template: template.to_owned(),
        reason,
    }
}

/// Renders a string template.
pub fn render(template: &str, context: &Value) -> Result<String, TemplateError> {
    if !template.contains("{{") && !template.contains("{%") {
        return Ok(template.to_owned());
    }
    ENVIRONMENT
        .render_str(template, context)
        .map_err(|e| error(template, &e))
}

/// Renders a string template over data that must not reach an error message (a customer's
/// record): a failure is only MiniJinja's error kind (`undefined value`), never its detail,
/// which can quote a value.
pub fn render_opaque(template: &str, context: &Value) -> Result<String, String> {
    ENVIRONMENT
        .render_str(template, context)
        .map_err(|e| e.kind().to_string())
}

/// Renders every string inside a JSON value. A string that is exactly one `{{ expression }}`
/// becomes the expression's value with its JSON type (a number stays a number).
pub fn render_value(value: &Value, context: &Value) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::String(text) => match sole_expression(text) {
            Some(expression) => {
                let compiled = ENVIRONMENT
                    .compile_expression(expression)
                    .map_err(|e| error(text, &e))?;
                let result = compiled.eval(context).map_err(|e| error(text, &e))?;
                serde_json::to_value(&result).map_err(|e| TemplateError {
                    template: text.clone(),
                    reason: e.to_string(),
                })?
            }
            None => Value::String(render(text, context)?),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_value(item, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| Ok((key.clone(), render_value(item, context)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

fn sole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

/// Checks that a template parses.
pub fn check(template: &str) -> Result<(), TemplateError> {
    ENVIRONMENT
        .template_from_str(template)
        .map(|_| ())
        .map_err(|e| error(template, &e))
}

/// The dotted names a template reads (`config.org`, `secrets.token`).
pub fn variables(template: &str) -> BTreeSet<String> {
    ENVIRONMENT
        .template_from_str(template)
        .map(|t| t.undeclared_variables(true).into_iter().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_paths_and_typed_values() {
        let context = json!({"config": {"org": "acme", "size": 50}});
        assert_eq!(
            render("/orgs/{{ config.org }}/members", &context).unwrap(),
            "/orgs/acme/members"
        );
        assert_eq!(
            render_value(
                &json!({"first": "{{ config.size }}", "q": "org:{{ config.org }}"}),
                &context
            )
            .unwrap(),
            json!({"first": 50, "q": "org:acme"})
        );
    }

    #[test]
    fn a_missing_name_is_an_error() {
        let error = render("/orgs/{{ config.missing }}", &json!({"config": {}})).unwrap_err();
        assert!(error.reason.contains("undefined"), "{error}");
    }

    #[test]
    fn formats_times_in_a_zone() {
        let context = json!({
            "checkpoint": {"since": "2024-05-01T13:07:09.5Z"},
            "config": {"time_zone": "Europe/Berlin"},
        });
        let jira = r#"{{ checkpoint.since | format_time("%Y-%m-%d %H:%M", config.time_zone | default("UTC")) }}"#;
        assert_eq!(render(jira, &context).unwrap(), "2024-05-01 15:07");
        let okta = r#"{{ checkpoint.since | format_time("%Y-%m-%dT%H:%M:%S%.3fZ") }}"#;
        assert_eq!(render(okta, &context).unwrap(), "2024-05-01T13:07:09.500Z");
        // No zone in the config: the default applies, even in strict mode.
        let without_zone = json!({"checkpoint": {"since": "2024-05-01T13:07:09Z"}, "config": {}});
        assert_eq!(render(jira, &without_zone).unwrap(), "2024-05-01 13:07");
    }

    #[test]
    fn formats_epoch_seconds_and_leaves_nothing_empty() {
        let format = |value: Value| {
            render(
                r#"{{ at | format_time("%Y-%m-%d %H:%M:%S") }}"#,
                &json!({ "at": value }),
            )
        };
        assert_eq!(format(json!(1_714_568_829)).unwrap(), "2024-05-01 13:07:09");
        assert_eq!(format(json!("1714568829")).unwrap(), "2024-05-01 13:07:09");
        // Jira's own notation, a colon-less offset.
        assert_eq!(
            format(json!("2024-05-01T15:07:09.000+0200")).unwrap(),
            "2024-05-01 13:07:09"
        );
        assert_eq!(
            format(json!(1_714_568_829.25)).unwrap(),
            "2024-05-01 13:07:09"
        );
        assert_eq!(format(json!("")).unwrap(), "");
        assert_eq!(format(Value::Null).unwrap(), "");
        assert!(format(json!("yesterday")).is_err());
        assert!(format(json!(true)).is_err());
    }

    #[test]
    fn a_bad_format_or_zone_is_an_error_not_a_panic() {
        let context = json!({"since": "2024-05-01T13:07:09Z"});
        let error = render(r#"{{ since | format_time("%Q %") }}"#, &context).unwrap_err();
        assert!(error.reason.contains("strftime"), "{error}");
        let error = render(
            r#"{{ since | format_time("%H", "Mars/Olympus") }}"#,
            &context,
        )
        .unwrap_err();
        assert!(error.reason.contains("time zone"), "{error}");
    }

    #[test]
    fn statements_work_in_queries_and_bodies() {
        let first = json!({"checkpoint": {"since": ""}});
        let later = json!({"checkpoint": {"since": "2024-05-01T13:07:00Z"}});
        let query = r#"{% if checkpoint.since %}updated >= "{{ checkpoint.since | format_time("%Y-%m-%d %H:%M") }}"{% endif %}"#;
        assert_eq!(render(query, &first).unwrap(), "");
        assert_eq!(
            render(query, &later).unwrap(),
            r#"updated >= "2024-05-01 13:07""#
        );
        let body = json!({"jql": "project = X{% if checkpoint.since %} AND updated >= '{{ checkpoint.since | format_time('%Y-%m-%d %H:%M') }}'{% endif %} ORDER BY updated"});
        assert_eq!(
            render_value(&body, &first).unwrap(),
            json!({"jql": "project = X ORDER BY updated"})
        );
        assert_eq!(
            render_value(&body, &later).unwrap(),
            json!({"jql": "project = X AND updated >= '2024-05-01 13:07' ORDER BY updated"})
        );
    }

    #[test]
    fn lists_the_names_a_template_reads() {
        let names = variables("{{ secrets.token }} {{ config.org }}");
        assert!(
            names.contains("secrets.token") && names.contains("config.org"),
            "{names:?}"
        );
    }
}
