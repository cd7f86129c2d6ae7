//! Error rules: what an answer that is not plain data means. A rule matches on the status,
//! a text in the body, or a value in the JSON body (`when`); only rules with `when` look at
//! 2xx answers. A stream's own rules come first, then the manifest-wide ones.

use serde_json::Value;
use serde_json_path::JsonPath;
use switchyard_http::ProviderResponse;

use super::select;
use crate::connector::ConnectorError;
use crate::manifest::{ErrorAction, ErrorRule};

/// How much of an error body or a provider message goes into an error message.
pub(super) const ERROR_EXCERPT: usize = 200;

/// A rule with its paths parsed once.
pub(super) struct CompiledRule {
    rule: ErrorRule,
    when: Option<JsonPath>,
    message_path: Option<JsonPath>,
}

pub(super) fn compile<'r>(
    rules: impl IntoIterator<Item = &'r ErrorRule>,
) -> Result<Vec<CompiledRule>, ConnectorError> {
    rules
        .into_iter()
        .map(|rule| {
            Ok(CompiledRule {
                when: rule
                    .when
                    .as_ref()
                    .map(|w| select::path(&w.path))
                    .transpose()?,
                message_path: rule.message_path.as_deref().map(select::path).transpose()?,
                rule: rule.clone(),
            })
        })
        .collect()
}

/// What the first matching rule says about an answer.
pub(super) enum Verdict {
    /// No rule matched: a 2xx (or 304) is data, anything else the caller's default.
    Unmatched,
    /// `ignore`.
    Ignore,
    /// `retry`; `failure` is what to report when the retries are used up.
    Retry { failure: ConnectorError },
    /// `fail`.
    Fail(ConnectorError),
}

/// An answer as the rules see it: the JSON body is parsed at most once, and only if a rule
/// reads it.
pub(super) struct Answer<'r> {
    pub(super) response: &'r ProviderResponse,
    json: Option<Option<Value>>,
}

impl<'r> Answer<'r> {
    pub(super) fn new(response: &'r ProviderResponse) -> Self {
        Self {
            response,
            json: None,
        }
    }

    fn json(&mut self) -> Option<&Value> {
        let response = self.response;
        self.json
            .get_or_insert_with(|| serde_json::from_slice(&response.body).ok())
            .as_ref()
    }

    /// The parsed body, if a rule parsed it (saves parsing a data page twice).
    pub(super) fn into_json(self) -> Option<Value> {
        self.json.flatten()
    }
}

/// Judges an answer by the first rule that matches it.
pub(super) fn judge(rules: &[CompiledRule], connector: &str, answer: &mut Answer<'_>) -> Verdict {
    let response = answer.response;
    let status = response.status;
    let success = status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED;
    // Most pages are data and most rules look at failures only: nothing to read then.
    if success && rules.iter().all(|compiled| compiled.when.is_none()) {
        return Verdict::Unmatched;
    }
    // Borrowed unless the body is not UTF-8.
    let body_text = String::from_utf8_lossy(&response.body);
    let Some(matched) = rules.iter().find(|compiled| {
        let rule = &compiled.rule;
        (compiled.when.is_some() || !success)
            && (rule.status.is_empty() || rule.status.contains(&status.as_u16()))
            && rule
                .body_contains
                .as_deref()
                .is_none_or(|text| body_text.contains(text))
            && match (&compiled.when, &rule.when) {
                (Some(path), Some(condition)) => answer
                    .json()
                    .and_then(|body| path.query(body).first())
                    .is_some_and(|value| *value == condition.equals),
                _ => true,
            }
    }) else {
        return Verdict::Unmatched;
    };
    match matched.rule.action {
        ErrorAction::Ignore => Verdict::Ignore,
        ErrorAction::Retry => Verdict::Retry {
            failure: failure(matched, connector, answer, &body_text),
        },
        ErrorAction::Fail => Verdict::Fail(failure(matched, connector, answer, &body_text)),
    }
}

/// The error a matched rule reports: its typed kind, or the status error of old.
fn failure(
    compiled: &CompiledRule,
    connector: &str,
    answer: &mut Answer<'_>,
    body_text: &str,
) -> ConnectorError {
    let rule = &compiled.rule;
    let provider_says = compiled.message_path.as_ref().and_then(|path| {
        let value = select::first(answer.json()?, path)?;
        Some(match value {
            Value::String(text) => excerpt(text),
            other => excerpt(&other.to_string()),
        })
    });
    let message = match (&rule.message, provider_says) {
        (Some(message), Some(says)) => format!("{message} ({connector}: {says})"),
        (Some(message), None) => message.clone(),
        (None, Some(says)) => format!("{connector}: {says}"),
        (None, None) => excerpt(body_text),
    };
    let status = answer.response.status.as_u16();
    match rule.error {
        Some(kind) => ConnectorError::Refused {
            kind,
            status,
            message,
        },
        None => ConnectorError::ProviderStatus { status, message },
    }
}

pub(super) fn excerpt(text: &str) -> String {
    text.chars().take(ERROR_EXCERPT).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use reqwest::StatusCode;
    use serde_json::json;

    use super::*;
    use crate::manifest::ErrorKind;

    fn rules(yaml: &str) -> Vec<CompiledRule> {
        let rules: Vec<ErrorRule> = serde_norway::from_str(yaml).unwrap();
        compile(&rules).unwrap()
    }

    fn answer(status: u16, body: &str) -> ProviderResponse {
        ProviderResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: reqwest::header::HeaderMap::new(),
            body: body.to_owned().into(),
            attempts: 1,
        }
    }

    fn verdict(rules: &[CompiledRule], status: u16, body: &str) -> Verdict {
        let response = answer(status, body);
        judge(rules, "slack", &mut Answer::new(&response))
    }

    #[test]
    fn only_rules_with_when_judge_2xx_answers() {
        let rules = rules(
            "[{status: [], action: fail}, {when: {path: '$.ok', equals: false}, action: fail, error: auth_failed}]",
        );
        assert!(matches!(
            verdict(&rules, 200, r#"{"ok": true}"#),
            Verdict::Unmatched
        ));
        // The first rule has no `when`: a 2xx passes it by, the second matches.
        assert!(matches!(
            verdict(&rules, 200, r#"{"ok": false}"#),
            Verdict::Fail(ConnectorError::Refused {
                kind: ErrorKind::AuthFailed,
                status: 200,
                ..
            })
        ));
        // A non-2xx meets the first rule, untyped: today's status error.
        assert!(matches!(
            verdict(&rules, 500, "oops"),
            Verdict::Fail(ConnectorError::ProviderStatus { status: 500, .. })
        ));
    }

    #[test]
    fn when_compares_json_values_and_skips_bodies_that_are_not_json() {
        let rules = rules("[{when: {path: '$.code', equals: 429}, status: [200], action: ignore}]");
        assert!(matches!(
            verdict(&rules, 200, r#"{"code": 429}"#),
            Verdict::Ignore
        ));
        assert!(matches!(
            verdict(&rules, 200, r#"{"code": "429"}"#),
            Verdict::Unmatched
        ));
        assert!(matches!(verdict(&rules, 200, "<html>"), Verdict::Unmatched));
        assert!(matches!(
            verdict(&rules, 201, r#"{"code": 429}"#),
            Verdict::Unmatched
        ));
    }

    #[test]
    fn messages_name_the_provider_code() {
        let rules = rules(
            "[{when: {path: '$.ok', equals: false}, action: fail, message: refused, message_path: '$.error'}]",
        );
        let Verdict::Fail(error) = verdict(&rules, 200, r#"{"ok": false, "error": "x"}"#) else {
            panic!("a failure");
        };
        assert_eq!(
            error.to_string(),
            "the provider answered 200: refused (slack: x)"
        );
        let Verdict::Fail(error) = verdict(&rules, 200, &json!({"ok": false}).to_string()) else {
            panic!("a failure");
        };
        assert!(error.to_string().ends_with("refused"), "{error}");
    }
}
