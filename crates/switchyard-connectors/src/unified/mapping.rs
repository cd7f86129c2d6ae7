//! The declarative mapping a manifest writes: which model a stream's records become and
//! how each of the model's fields is read from a record.
//!
//! `FieldMapping` is the type code works with; the `*Form` structs are its YAML spelling.
//! Both the deserializer and the published JSON Schema are built from the forms, so the
//! schema cannot drift from what is accepted.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::model::UnifiedModel;

/// How a stream's records map to a unified model.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// The model the records become.
    pub model: UnifiedModel,
    /// Target field (a property of the model) to how its value is read from a record.
    /// `source` is not listed: Switchyard fills it with the connector id.
    pub fields: BTreeMap<String, FieldMapping>,
}

/// How one target field's value is read from a record.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldMapping {
    /// Read one path (or, with `many`, all its matches) and optionally translate the value.
    Select(Select),
    /// A fixed value, whatever the record says.
    Const(Value),
    /// The first of several paths that selects a non-null value.
    FirstOf {
        paths: Vec<RecordPath>,
        default: Option<Value>,
    },
    /// The non-null values of several paths, as text, joined by `separator`.
    Join {
        paths: Vec<RecordPath>,
        separator: String,
        default: Option<Value>,
    },
    /// `true` when the path selects a non-null value, else `false`.
    Exists(RecordPath),
    /// Text rendered by a template over `{record, config}`: the record and the connection's
    /// settings. Blank text is null.
    Template {
        template: String,
        default: Option<Value>,
    },
    /// One of two values, by whether another stream of the same connection holds a matching
    /// record. Resolved against the record store (see [`Related`]).
    Related(Related),
}

/// `{ related: { stream, key, match?, where? }, present, absent }`: the field is `present`
/// when `stream` (of the same connection) holds a live record whose `match` member equals this
/// record's `key` value (and whose `where.path` member equals `where.equals`), else `absent`.
/// Null when the key is null or `stream` has never completed a sync.
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    /// The other stream, in the same manifest.
    pub stream: String,
    /// Where the value to look up is in this record: a string or an integer.
    pub key: RecordPath,
    /// Where the value is in the related stream's records (a simple member path such as
    /// `$.user_id`); `None`: the related record's primary key.
    pub matches: Option<RecordPath>,
    /// Only related records whose member equals a value count.
    pub filter: Option<RelatedFilter>,
    /// The field's value when a matching record exists.
    pub present: Value,
    /// The field's value when none does.
    pub absent: Value,
}

/// `where: { path, equals }` of a [`Related`] mapping.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelatedFilter {
    /// A simple member path into the related record (`$.status`).
    pub path: RecordPath,
    /// The value it must hold: a string, an integer or a boolean.
    pub equals: Value,
}

/// One path read, then translated in this order: `lookup`, `coerce`, `default`.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub path: RecordPath,
    /// Take every match as an array instead of requiring at most one.
    pub many: bool,
    /// Replace a value by the entry its text names; a value with no entry becomes null.
    pub lookup: Option<BTreeMap<String, Value>>,
    /// Convert the (looked-up) value to a JSON type.
    pub coerce: Option<Coercion>,
    /// Used when the result is null (or, with `many`, an empty array).
    pub default: Option<Value>,
}

impl Select {
    /// A plain read of `path`, as a bare string in YAML is.
    pub fn path(path: impl Into<String>) -> Self {
        Self {
            path: RecordPath(path.into()),
            many: false,
            lookup: None,
            coerce: None,
            default: None,
        }
    }
}

/// A JSONPath (RFC 9535) into a record, kept as written; it is parsed by `check` and when a
/// mapping is compiled, where an error can name the field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(
    description = "A JSONPath (RFC 9535) into the provider record, such as `$.profile.email`."
)]
pub struct RecordPath(pub String);

impl RecordPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The JSON type a value is converted to (`as:` in YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Coercion {
    /// `true`/`false`; the strings `true`, `false`, `yes`, `no`, `1`, `0` (any case); 1 and 0.
    Boolean,
    /// Integers; numbers with no fraction; strings holding an integer.
    Integer,
    /// Numbers; strings holding a finite number.
    Number,
    /// Strings; numbers and booleans as their JSON text.
    String,
    /// An RFC 3339 UTC string, from RFC 3339 or ISO 8601 (`+0000` offsets) text or from Unix
    /// epoch seconds or milliseconds (number or digit string).
    Timestamp,
}

impl Coercion {
    pub fn name(self) -> &'static str {
        match self {
            Coercion::Boolean => "boolean",
            Coercion::Integer => "integer",
            Coercion::Number => "number",
            Coercion::String => "string",
            Coercion::Timestamp => "timestamp",
        }
    }
}

// ---- YAML spelling -------------------------------------------------------------------------

/// `{ path, default?, map?, as?, many? }`
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Path",
    description = "Reads one path, then optionally looks the value up, coerces it and falls back to a default."
)]
struct SelectForm {
    path: RecordPath,
    /// Take every match as an array (nulls left out) instead of requiring at most one.
    #[serde(default)]
    many: bool,
    /// Value lookup: the selected value's text to the value to use. Unlisted values become null.
    map: Option<BTreeMap<String, Value>>,
    /// Convert the value to this type.
    #[serde(rename = "as")]
    coerce: Option<Coercion>,
    /// The value used when the result is null (with `many`, when nothing matched).
    default: Option<Value>,
}

/// `{ const }`
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Const", description = "A fixed value.")]
struct ConstForm {
    #[serde(rename = "const")]
    value: Value,
}

/// `{ first_of, default? }`
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "FirstOf",
    description = "The first path that selects a non-null value."
)]
struct FirstOfForm {
    #[schemars(length(min = 1))]
    first_of: Vec<RecordPath>,
    /// The value used when every path gives null.
    default: Option<Value>,
}

/// `{ join, separator?, default? }`
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Join",
    description = "The non-null values of the paths, as text, joined by `separator`."
)]
struct JoinForm {
    #[schemars(length(min = 1))]
    join: Vec<RecordPath>,
    /// Put between the values; a single space unless set.
    #[serde(default = "default_separator")]
    #[schemars(default = "default_separator")]
    separator: String,
    /// The value used when every path gives null.
    default: Option<Value>,
}

fn default_separator() -> String {
    " ".to_owned()
}

/// `{ path, exists: true }`
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Exists",
    description = "`true` when the path selects a non-null value, else `false`."
)]
struct ExistsForm {
    path: RecordPath,
    #[schemars(extend("const" = true))]
    exists: bool,
}

/// `{ template, default? }`
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Template",
    description = "Text rendered by a MiniJinja template over `record` (the record; an action's output or, with `from: exchange`, `{input, output}`) and `config` (the connection's settings). Blank text is null."
)]
struct TemplateForm {
    /// Reads `record.*` and `config.*` only; strict: a name that is not there is an error, so
    /// test optional ones with `is defined`.
    #[schemars(length(min = 1))]
    template: String,
    /// The value used when the text is blank.
    default: Option<Value>,
}

/// `{ related: {…}, present, absent }`
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Related",
    description = "`present` when another stream of the same connection holds a matching record, else `absent`; null when the key is null or that stream has never completed a sync."
)]
struct RelatedForm {
    related: RelatedTarget,
    /// The value when a matching record exists.
    present: Value,
    /// The value when none does.
    absent: Value,
}

/// Which records of which stream match.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RelatedTarget {
    /// A stream of the same manifest.
    stream: String,
    /// A JSONPath into this record; its value (a string or an integer) is looked up.
    key: RecordPath,
    /// A simple member path (`$.user_id`) into the related records where the value is looked
    /// up; their primary key when absent.
    #[serde(rename = "match")]
    matches: Option<RecordPath>,
    /// Only related records whose member at `path` equals `equals` count.
    #[serde(rename = "where")]
    filter: Option<RelatedFilter>,
}

impl<'de> Deserialize<'de> for FieldMapping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The form is chosen by its leading key and then read strictly, so a misspelt key is
        // reported as such instead of as "matched no variant".
        let raw = Value::deserialize(deserializer)?;
        let object = match &raw {
            Value::String(path) => return Ok(FieldMapping::Select(Select::path(path.clone()))),
            Value::Object(object) => object,
            _ => return Err(D::Error::custom(NOT_A_FORM)),
        };
        let form = |error: serde_json::Error| D::Error::custom(error.to_string());
        if object.contains_key("const") {
            let ConstForm { value } = serde_json::from_value(raw).map_err(form)?;
            Ok(FieldMapping::Const(value))
        } else if object.contains_key("first_of") {
            let FirstOfForm { first_of, default } = serde_json::from_value(raw).map_err(form)?;
            if first_of.is_empty() {
                return Err(D::Error::custom("`first_of` needs at least one path"));
            }
            Ok(FieldMapping::FirstOf {
                paths: first_of,
                default,
            })
        } else if object.contains_key("join") {
            let JoinForm {
                join,
                separator,
                default,
            } = serde_json::from_value(raw).map_err(form)?;
            if join.is_empty() {
                return Err(D::Error::custom("`join` needs at least one path"));
            }
            Ok(FieldMapping::Join {
                paths: join,
                separator,
                default,
            })
        } else if object.contains_key("template") {
            let TemplateForm { template, default } = serde_json::from_value(raw).map_err(form)?;
            Ok(FieldMapping::Template { template, default })
        } else if object.contains_key("related") {
            let RelatedForm {
                related,
                present,
                absent,
            } = serde_json::from_value(raw).map_err(form)?;
            Ok(FieldMapping::Related(Related {
                stream: related.stream,
                key: related.key,
                matches: related.matches,
                filter: related.filter,
                present,
                absent,
            }))
        } else if object.contains_key("exists") {
            let ExistsForm { path, exists } = serde_json::from_value(raw).map_err(form)?;
            if !exists {
                return Err(D::Error::custom(
                    "`exists` can only be `true`; it maps to whether the path selects a value",
                ));
            }
            Ok(FieldMapping::Exists(path))
        } else if object.contains_key("path") {
            let SelectForm {
                path,
                many,
                map,
                coerce,
                default,
            } = serde_json::from_value(raw).map_err(form)?;
            Ok(FieldMapping::Select(Select {
                path,
                many,
                lookup: map,
                coerce,
                default,
            }))
        } else {
            Err(D::Error::custom(NOT_A_FORM))
        }
    }
}

const NOT_A_FORM: &str = "a field mapping is a JSONPath string or an object with `path`, \
                          `const`, `first_of`, `join`, `template` or `related`";

impl JsonSchema for FieldMapping {
    fn schema_name() -> Cow<'static, str> {
        "FieldMapping".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "How one field of the unified model is read from a provider record.",
            "oneOf": [
                generator.subschema_for::<RecordPath>(),
                generator.subschema_for::<SelectForm>(),
                generator.subschema_for::<ConstForm>(),
                generator.subschema_for::<FirstOfForm>(),
                generator.subschema_for::<JoinForm>(),
                generator.subschema_for::<ExistsForm>(),
                generator.subschema_for::<TemplateForm>(),
                generator.subschema_for::<RelatedForm>(),
            ]
        })
    }
}
