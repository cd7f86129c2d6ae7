//! Why a mapping is rejected, statically or for one record.

use super::model::{UnifiedModel, Violation};

/// A mapping that cannot be used, or a record it cannot map. Every variant that concerns one
/// target field names it. No variant carries a record value: records hold customer data, and
/// these errors end up in logs and sync failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A JSONPath that does not parse under RFC 9535.
    #[error("field `{field}`: `{path}` is not a valid JSONPath: {reason}")]
    InvalidPath {
        field: String,
        path: String,
        reason: String,
    },
    /// A target field the model does not have.
    #[error("field `{field}` is not a property of the {model} model")]
    UnknownField { model: UnifiedModel, field: String },
    /// A field Switchyard fills itself (`source`), which a mapping may not set.
    #[error("field `{field}` is filled by Switchyard and cannot be mapped")]
    Reserved { field: String },
    /// A required field of the model with no mapping.
    #[error("field `{field}` is required by the {model} model but has no mapping")]
    Unmapped { model: UnifiedModel, field: String },
    /// A `first_of` or `join` with no paths to read.
    #[error("field `{field}`: `{form}` needs at least one path")]
    NoPaths { field: String, form: &'static str },
    /// A `related` mapping's `match` or `where.path` that is not a simple member path
    /// (`$.a.b`): those are matched inside the database, in SQL.
    #[error(
        "field `{field}`: `{path}` must be a simple member path such as `$.user_id` \
         (names of letters, digits and `_`, joined by dots)"
    )]
    NotMemberPath { field: String, path: String },
    /// A `related` mapping of a required field: it is null until its stream has synced.
    #[error(
        "field `{field}` is required by the {model} model; `related` is null until the related \
         stream has synced, so it maps only optional fields"
    )]
    RelatedRequired { model: UnifiedModel, field: String },
    /// A `related` mapping's `present`, `absent` or `where.equals` that cannot be used.
    #[error("field `{field}`: `{which}` {reason}")]
    RelatedValue {
        field: String,
        which: &'static str,
        reason: String,
    },
    /// An action mapping with `from: exchange` whose path reads neither `$.input` nor
    /// `$.output`, so it selects nothing for every call.
    #[error(
        "field `{field}`: with `from: exchange`, `{path}` must start at `$.input` or `$.output`"
    )]
    OutsideExchange { field: String, path: String },
    /// A `template` that does not parse.
    #[error("field `{field}`: the template does not parse: {reason}")]
    InvalidTemplate { field: String, reason: String },
    /// A `template` that reads a name other than `record` and `config`, which are all its
    /// context holds.
    #[error(
        "field `{field}`: the template reads `{name}`; it can read only `record.*` and `config.*`"
    )]
    TemplateVariable { field: String, name: String },
    /// A `template` that failed for this record. Only the failure's kind is kept: its detail
    /// can quote the record.
    #[error("field `{field}`: the template failed: {kind}")]
    Template { field: String, kind: String },
    /// A required field that came out null for this record.
    #[error("field `{field}` is required but the record gives it no value")]
    Missing { field: String },
    /// A path without `many: true` that selected more than one value.
    #[error("field `{field}`: `{path}` selected {count} values; use `many: true` to take them all")]
    Ambiguous {
        field: String,
        path: String,
        count: usize,
    },
    /// A value that cannot be turned into the wanted type.
    #[error("field `{field}`: expected {expected}, found {found}")]
    Coercion {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    /// The mapped record does not satisfy the model's schema.
    #[error(
        "the mapped record does not match the {model} model: {}",
        list(violations)
    )]
    Invalid {
        model: UnifiedModel,
        violations: Vec<Violation>,
    },
}

impl MappingError {
    /// The target field the error concerns, when it concerns one.
    pub fn field(&self) -> Option<&str> {
        match self {
            MappingError::InvalidPath { field, .. }
            | MappingError::UnknownField { field, .. }
            | MappingError::Reserved { field }
            | MappingError::Unmapped { field, .. }
            | MappingError::NoPaths { field, .. }
            | MappingError::NotMemberPath { field, .. }
            | MappingError::RelatedRequired { field, .. }
            | MappingError::RelatedValue { field, .. }
            | MappingError::OutsideExchange { field, .. }
            | MappingError::InvalidTemplate { field, .. }
            | MappingError::TemplateVariable { field, .. }
            | MappingError::Template { field, .. }
            | MappingError::Missing { field }
            | MappingError::Ambiguous { field, .. }
            | MappingError::Coercion { field, .. } => Some(field),
            MappingError::Invalid { .. } => None,
        }
    }
}

fn list(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
