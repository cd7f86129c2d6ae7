//! Templates in manifests (`/orgs/{{ config.org }}/members`), rendered with MiniJinja in
//! strict mode: a name the context lacks is an error, never an empty string in a URL.
//!
//! The context has `config` (the connection's settings), `partition`, `checkpoint`, `input`
//! (actions) and, for header templates only, `secrets` (credential fields).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use minijinja::{Environment, UndefinedBehavior};
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
    env
});

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
    fn lists_the_names_a_template_reads() {
        let names = variables("{{ secrets.token }} {{ config.org }}");
        assert!(
            names.contains("secrets.token") && names.contains("config.org"),
            "{names:?}"
        );
    }
}
