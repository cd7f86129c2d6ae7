//! An action's unified mapping: a stream's [`MappingSpec`] plus what its paths read.
//!
//! A created resource's answer is often thin (Jira answers a created issue with only its id,
//! key and link), while the model needs fields the caller sent (the ticket's title). With
//! `from: exchange` the paths read `{"input": <the action's input>, "output": <its output>}`
//! instead of the bare output:
//!
//! ```yaml
//! unified:
//!   model: ticket
//!   from: exchange
//!   fields:
//!     id: "$.output.id"
//!     title: "$.input.summary"
//! ```

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::compile::CompiledMapping;
use super::error::MappingError;
use super::mapping::{FieldMapping, MappingSpec, RecordPath};
use super::model::UnifiedModel;

/// What an action's mapping reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MappingSubject {
    /// The output, as the action's `output` selects it.
    #[default]
    Output,
    /// `{"input": …, "output": …}`: the input as the caller sent it and the output; every
    /// path starts at `$.input` or `$.output`.
    Exchange,
}

impl MappingSubject {
    pub fn name(self) -> &'static str {
        match self {
            MappingSubject::Output => "output",
            MappingSubject::Exchange => "exchange",
        }
    }
}

/// How an action's output maps to a unified model: a stream mapping's `model` and `fields`,
/// and `from`, what the paths read.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(from = "ActionMappingForm")]
pub struct ActionMapping {
    pub from: MappingSubject,
    pub spec: MappingSpec,
}

/// The YAML spelling of [`ActionMapping`]: a stream mapping's keys plus `from`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ActionMappingForm {
    /// The model the output becomes.
    model: UnifiedModel,
    /// What the paths read: `output` (the default), or `exchange`, which is
    /// `{"input": …, "output": …}`.
    #[serde(default)]
    from: MappingSubject,
    /// Target field to how its value is read; the forms of a stream's mapping except `related`.
    fields: std::collections::BTreeMap<String, FieldMapping>,
}

impl From<ActionMappingForm> for ActionMapping {
    fn from(form: ActionMappingForm) -> Self {
        Self {
            from: form.from,
            spec: MappingSpec {
                model: form.model,
                fields: form.fields,
            },
        }
    }
}

/// An [`ActionMapping`] checked and with its paths parsed.
#[derive(Debug, Clone)]
pub struct CompiledActionMapping {
    from: MappingSubject,
    mapping: CompiledMapping,
}

impl CompiledActionMapping {
    /// The checks of [`CompiledMapping::new`]; with `from: exchange`, also that every path
    /// starts at `$.input` or `$.output` (any other reads nothing, for every call).
    pub fn new(mapping: &ActionMapping) -> Result<Self, MappingError> {
        let compiled = CompiledMapping::new(&mapping.spec)?;
        if mapping.from == MappingSubject::Exchange {
            for (field, form) in &mapping.spec.fields {
                if let Some(path) = paths(form).find(|path| !reads_exchange(path)) {
                    return Err(MappingError::OutsideExchange {
                        field: field.clone(),
                        path: path.as_str().to_owned(),
                    });
                }
            }
        }
        Ok(Self {
            from: mapping.from,
            mapping: compiled,
        })
    }

    /// The mapping for one connection's calls: `template` fields read its settings as
    /// `config`.
    #[must_use]
    pub fn with_config(self, config: Value) -> Self {
        Self {
            from: self.from,
            mapping: self.mapping.with_config(config),
        }
    }

    pub fn model(&self) -> UnifiedModel {
        self.mapping.model()
    }

    /// Maps one call's output (with its input, for `from: exchange`), sets `source`, and
    /// validates the result against the model.
    pub fn apply(
        &self,
        source: &str,
        input: &Value,
        output: &Value,
    ) -> Result<Value, MappingError> {
        match self.from {
            MappingSubject::Output => self.mapping.apply(source, output),
            MappingSubject::Exchange => self
                .mapping
                .apply(source, &json!({"input": input, "output": output})),
        }
    }
}

/// The record paths a field form reads.
fn paths(form: &FieldMapping) -> Box<dyn Iterator<Item = &RecordPath> + '_> {
    match form {
        FieldMapping::Select(select) => Box::new(std::iter::once(&select.path)),
        // A template reads `record.input`/`record.output` by name; it has no path to check.
        FieldMapping::Const(_) | FieldMapping::Template { .. } => Box::new(std::iter::empty()),
        FieldMapping::FirstOf { paths, .. } | FieldMapping::Join { paths, .. } => {
            Box::new(paths.iter())
        }
        FieldMapping::Exists(path) => Box::new(std::iter::once(path)),
        FieldMapping::Related(related) => Box::new(std::iter::once(&related.key)),
    }
}

/// Whether `path`'s first segment is the member `input` or `output` (dotted or bracketed).
fn reads_exchange(path: &RecordPath) -> bool {
    let Some(rest) = path.as_str().trim().strip_prefix('$') else {
        return false;
    };
    [
        ".input",
        ".output",
        "['input']",
        "['output']",
        "[\"input\"]",
        "[\"output\"]",
    ]
    .iter()
    .filter_map(|head| rest.strip_prefix(head))
    .any(|after| after.is_empty() || after.starts_with(['.', '[']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exchange_path_starts_at_input_or_output() {
        for good in [
            "$.input",
            "$.output.id",
            "$.input.labels[*]",
            "$['output'].key",
            "$[\"input\"]",
        ] {
            assert!(reads_exchange(&RecordPath(good.into())), "{good}");
        }
        for bad in [
            "$.id",
            "$..id",
            "$.inputs",
            "$.outputx.id",
            "$[*].id",
            "$['input",
            "input.id",
            "$",
        ] {
            assert!(!reads_exchange(&RecordPath(bad.into())), "{bad}");
        }
    }
}
