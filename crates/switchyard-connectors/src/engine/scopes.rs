//! The scopes a provider says a credential has.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json_path::JsonPath;
use switchyard_http::ProviderResponse;

use super::select;
use crate::manifest::check::ScopeSource;

pub(super) fn granted_scopes(
    source: Option<&ScopeSource>,
    response: &ProviderResponse,
) -> Option<Vec<String>> {
    let split = |text: &str, separator: &str| -> Vec<String> {
        text.split(separator)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    match source? {
        ScopeSource::Header { header, separator } => {
            let value = response.headers.get(header.as_str())?.to_str().ok()?;
            Some(split(value, separator))
        }
        ScopeSource::Body { path, separator } => {
            let body: Value = serde_json::from_slice(&response.body).ok()?;
            let path = JsonPath::parse(path).ok()?;
            match select::first(&body, &path)? {
                Value::String(text) => Some(split(text, separator)),
                Value::Array(items) => Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => None,
            }
        }
        // Not in the answer: the engine asks the credential source.
        ScopeSource::Token(_) => None,
    }
}

/// Whether the granted scopes cover `required`: it is granted, or a granted scope includes it.
pub(super) fn covers(
    granted: &[String],
    implied: &BTreeMap<String, Vec<String>>,
    required: &str,
) -> bool {
    granted.iter().any(|scope| {
        scope == required
            || implied
                .get(scope)
                .is_some_and(|included| included.iter().any(|s| s == required))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broader_scope_covers_what_it_includes() {
        let implied = BTreeMap::from([("admin:org".to_owned(), vec!["read:org".to_owned()])]);
        let granted = ["admin:org".to_owned(), "repo".to_owned()];
        assert!(covers(&granted, &implied, "read:org"));
        assert!(covers(&granted, &implied, "repo"));
        assert!(!covers(&granted, &implied, "write:org"));
        assert!(!covers(&["read:org".to_owned()], &implied, "admin:org"));
    }
}
