//! A checked mapping with its paths parsed, ready to map many records.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use serde_json_path::JsonPath;

use super::coerce::{coerce, kind, to_text};
use super::error::MappingError;
use super::mapping::{Coercion, FieldMapping, MappingSpec, RecordPath, Related};
use super::model::UnifiedModel;
use super::related::{MemberPath, RelatedLookup, RelatedMatches, key_text};
use crate::template;

/// The field every unified record carries and Switchyard fills from the connector id.
pub const SOURCE_FIELD: &str = "source";

/// A [`MappingSpec`] that passed [`check`](super::check), with its paths parsed once.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    model: UnifiedModel,
    fields: Vec<CompiledField>,
    /// One per `related` field, in field order.
    related: Vec<RelatedLookup>,
    /// The key path of each of `related`.
    related_keys: Vec<Query>,
    /// The connection's settings, which `template` fields read as `config`.
    config: Value,
}

#[derive(Debug, Clone)]
struct CompiledField {
    name: String,
    required: bool,
    reader: Reader,
}

#[derive(Debug, Clone)]
enum Reader {
    Select {
        query: Query,
        many: bool,
        lookup: Option<BTreeMap<String, Value>>,
        coerce: Option<Coercion>,
        default: Option<Value>,
    },
    Const(Value),
    FirstOf {
        queries: Vec<Query>,
        default: Option<Value>,
    },
    Join {
        queries: Vec<Query>,
        separator: String,
        default: Option<Value>,
    },
    Exists(Query),
    /// Rendered over `{record, config}`.
    Template {
        text: String,
        default: Option<Value>,
    },
    /// `present` or `absent` by the record store's answer for the key.
    Related {
        key: Query,
        present: Value,
        absent: Value,
    },
}

/// A parsed path with the text it came from, for error messages.
#[derive(Debug, Clone)]
struct Query {
    text: String,
    path: JsonPath,
}

impl CompiledMapping {
    /// Checks `spec` against its model and parses its paths.
    pub fn new(spec: &MappingSpec) -> Result<Self, MappingError> {
        let model = spec.model;
        let mut fields = Vec::with_capacity(spec.fields.len());
        let mut related = Vec::new();
        let mut related_keys = Vec::new();
        for (name, mapping) in &spec.fields {
            if name == SOURCE_FIELD {
                return Err(MappingError::Reserved {
                    field: name.clone(),
                });
            }
            if !model.has_field(name) {
                return Err(MappingError::UnknownField {
                    model,
                    field: name.clone(),
                });
            }
            let required = model.is_required(name);
            if let FieldMapping::Related(spec) = mapping {
                if required {
                    return Err(MappingError::RelatedRequired {
                        model,
                        field: name.clone(),
                    });
                }
                related.push(related_lookup(model, name, spec)?);
                related_keys.push(Query::parse(name, &spec.key)?);
            }
            fields.push(CompiledField {
                name: name.clone(),
                required,
                reader: Reader::new(name, mapping)?,
            });
        }
        if let Some(unmapped) = model
            .required_fields()
            .find(|field| *field != SOURCE_FIELD && !spec.fields.contains_key(*field))
        {
            return Err(MappingError::Unmapped {
                model,
                field: unmapped.to_owned(),
            });
        }
        Ok(Self {
            model,
            fields,
            related,
            related_keys,
            config: Value::Object(Map::new()),
        })
    }

    /// The mapping for the records of one connection: `template` fields read its settings as
    /// `config` (an empty object until this is called).
    #[must_use]
    pub fn with_config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    pub fn model(&self) -> UnifiedModel {
        self.model
    }

    /// What each `related` field asks of the record store, in field order.
    pub fn related(&self) -> &[RelatedLookup] {
        &self.related
    }

    /// Per `related` field, the key values `records` look up (records whose key is null or
    /// unusable are left out; [`Self::apply_with`] reports the latter).
    pub fn related_keys<'r>(
        &self,
        records: impl IntoIterator<Item = &'r Value>,
    ) -> Vec<(&RelatedLookup, BTreeSet<String>)> {
        let mut keys: Vec<(&RelatedLookup, BTreeSet<String>)> = self
            .related
            .iter()
            .map(|lookup| (lookup, BTreeSet::new()))
            .collect();
        for record in records {
            for ((lookup, found), key) in keys.iter_mut().zip(&self.related_keys) {
                if let Ok(value) = key.one(&lookup.field, record)
                    && let Ok(Some(text)) = key_text(&lookup.field, &value)
                {
                    found.insert(text);
                }
            }
        }
        keys
    }

    /// Maps one record and validates the result against the model. `related` fields are
    /// null: use [`Self::apply_with`] to resolve them.
    pub fn apply(&self, source: &str, record: &Value) -> Result<Value, MappingError> {
        self.apply_with(source, record, &RelatedMatches::default())
    }

    /// Maps one record with the record store's answers for its page's `related` fields
    /// ([`super::lookup_page`]), and validates the result against the model. A related field
    /// the answers do not cover (or whose stream never completed a sync) is null.
    pub fn apply_with(
        &self,
        source: &str,
        record: &Value,
        related: &RelatedMatches,
    ) -> Result<Value, MappingError> {
        let mut unified = Map::new();
        let input = Input {
            record,
            config: &self.config,
            related,
        };
        for field in &self.fields {
            let value = field.reader.read(&field.name, &input)?;
            if field.required && value.is_null() {
                return Err(MappingError::Missing {
                    field: field.name.clone(),
                });
            }
            unified.insert(field.name.clone(), value);
        }
        unified.insert(SOURCE_FIELD.to_owned(), Value::from(source));
        let unified = Value::Object(unified);
        self.model
            .validate(&unified)
            .map_err(|violations| MappingError::Invalid {
                model: self.model,
                violations,
            })?;
        Ok(unified)
    }
}

impl Reader {
    fn new(field: &str, mapping: &FieldMapping) -> Result<Self, MappingError> {
        Ok(match mapping {
            FieldMapping::Select(select) => Reader::Select {
                query: Query::parse(field, &select.path)?,
                many: select.many,
                lookup: select.lookup.clone(),
                coerce: select.coerce,
                default: select.default.clone(),
            },
            FieldMapping::Const(value) => Reader::Const(value.clone()),
            FieldMapping::FirstOf { paths, default } => Reader::FirstOf {
                queries: Query::parse_all(field, "first_of", paths)?,
                default: default.clone(),
            },
            FieldMapping::Join {
                paths,
                separator,
                default,
            } => Reader::Join {
                queries: Query::parse_all(field, "join", paths)?,
                separator: separator.clone(),
                default: default.clone(),
            },
            FieldMapping::Exists(path) => Reader::Exists(Query::parse(field, path)?),
            FieldMapping::Template { template, default } => Reader::Template {
                text: checked_template(field, template)?,
                default: default.clone(),
            },
            FieldMapping::Related(related) => Reader::Related {
                key: Query::parse(field, &related.key)?,
                present: related.present.clone(),
                absent: related.absent.clone(),
            },
        })
    }

    fn read(&self, field: &str, input: &Input<'_>) -> Result<Value, MappingError> {
        let record = input.record;
        match self {
            Reader::Select {
                query,
                many: false,
                lookup,
                coerce,
                default,
            } => {
                let value = query.one(field, record)?;
                let value = translate(field, value, lookup.as_ref(), *coerce)?;
                Ok(or_default(value, default))
            }
            Reader::Select {
                query,
                many: true,
                lookup,
                coerce,
                default,
            } => {
                let mut values = Vec::new();
                for value in query.path.query(record).all() {
                    let value = translate(field, value.clone(), lookup.as_ref(), *coerce)?;
                    if !value.is_null() {
                        values.push(value);
                    }
                }
                Ok(match default {
                    Some(default) if values.is_empty() => default.clone(),
                    _ => Value::Array(values),
                })
            }
            Reader::Const(value) => Ok(value.clone()),
            Reader::FirstOf { queries, default } => {
                for query in queries {
                    let value = query.one(field, record)?;
                    if !value.is_null() {
                        return Ok(value);
                    }
                }
                Ok(or_default(Value::Null, default))
            }
            Reader::Join {
                queries,
                separator,
                default,
            } => {
                let mut parts = Vec::with_capacity(queries.len());
                for query in queries {
                    let value = query.one(field, record)?;
                    if value.is_null() {
                        continue;
                    }
                    let text = to_text(&value).ok_or_else(|| MappingError::Coercion {
                        field: field.to_owned(),
                        expected: "a string, number or boolean to join",
                        found: kind(&value),
                    })?;
                    parts.push(text);
                }
                if parts.is_empty() {
                    Ok(or_default(Value::Null, default))
                } else {
                    Ok(Value::String(parts.join(separator)))
                }
            }
            Reader::Exists(query) => Ok(Value::Bool(
                query
                    .path
                    .query(record)
                    .all()
                    .into_iter()
                    .any(|value| !value.is_null()),
            )),
            Reader::Template { text, default } => {
                let context = json!({"record": record, "config": input.config});
                let rendered = template::render_opaque(text, &context).map_err(|kind| {
                    MappingError::Template {
                        field: field.to_owned(),
                        kind,
                    }
                })?;
                let rendered = rendered.trim();
                let value = if rendered.is_empty() {
                    Value::Null
                } else {
                    Value::String(rendered.to_owned())
                };
                Ok(or_default(value, default))
            }
            Reader::Related {
                key,
                present,
                absent,
            } => {
                let Some(key) = key_text(field, &key.one(field, record)?)? else {
                    return Ok(Value::Null);
                };
                Ok(match input.related.contains(field, &key) {
                    Some(true) => present.clone(),
                    Some(false) => absent.clone(),
                    None => Value::Null,
                })
            }
        }
    }
}

/// What a field is read from: the record, the connection's settings, and the record store's
/// answers for `related` fields.
struct Input<'a> {
    record: &'a Value,
    config: &'a Value,
    related: &'a RelatedMatches,
}

/// The names a mapping template may read: the record and the connection's settings.
const TEMPLATE_ROOTS: [&str; 2] = ["record", "config"];

/// A template that parses and reads only `record.*` and `config.*`.
fn checked_template(field: &str, text: &str) -> Result<String, MappingError> {
    template::check(text).map_err(|error| MappingError::InvalidTemplate {
        field: field.to_owned(),
        reason: error.reason,
    })?;
    if let Some(name) = template::variables(text).into_iter().find(|name| {
        let root = name.split('.').next().unwrap_or_default();
        !TEMPLATE_ROOTS.contains(&root)
    }) {
        return Err(MappingError::TemplateVariable {
            field: field.to_owned(),
            name,
        });
    }
    Ok(text.to_owned())
}

/// Checks a `related` mapping's paths and values and turns it into its store lookup.
fn related_lookup(
    model: UnifiedModel,
    field: &str,
    related: &Related,
) -> Result<RelatedLookup, MappingError> {
    let member_path = |path: &RecordPath| {
        Query::parse(field, path)?;
        MemberPath::parse(path.as_str()).ok_or_else(|| MappingError::NotMemberPath {
            field: field.to_owned(),
            path: path.as_str().to_owned(),
        })
    };
    for (which, value) in [("present", &related.present), ("absent", &related.absent)] {
        model
            .validate_field(field, value)
            .map_err(|violations| MappingError::RelatedValue {
                field: field.to_owned(),
                which,
                reason: format!(
                    "does not fit the field: {}",
                    violations
                        .iter()
                        .map(|v| v.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            })?;
    }
    let filter = match &related.filter {
        None => None,
        Some(filter) => {
            let scalar = match &filter.equals {
                Value::String(_) | Value::Bool(_) => true,
                Value::Number(number) => number.is_i64() || number.is_u64(),
                _ => false,
            };
            if !scalar {
                return Err(MappingError::RelatedValue {
                    field: field.to_owned(),
                    which: "where.equals",
                    reason: "must be a string, an integer or a boolean".to_owned(),
                });
            }
            Some((member_path(&filter.path)?, filter.equals.clone()))
        }
    };
    Ok(RelatedLookup {
        field: field.to_owned(),
        stream: related.stream.clone(),
        matches: related.matches.as_ref().map(member_path).transpose()?,
        filter,
    })
}

/// Lookup, then coercion: a lookup table often yields the text that `as:` then types.
fn translate(
    field: &str,
    value: Value,
    lookup: Option<&BTreeMap<String, Value>>,
    coercion: Option<Coercion>,
) -> Result<Value, MappingError> {
    let value = match lookup {
        Some(table) if !value.is_null() => to_text(&value)
            .and_then(|text| table.get(&text).cloned())
            .unwrap_or(Value::Null),
        _ => value,
    };
    match coercion {
        Some(coercion) => {
            let found = kind(&value);
            coerce(coercion, value).map_err(|expected| MappingError::Coercion {
                field: field.to_owned(),
                expected,
                found,
            })
        }
        None => Ok(value),
    }
}

fn or_default(value: Value, default: &Option<Value>) -> Value {
    match default {
        Some(default) if value.is_null() => default.clone(),
        _ => value,
    }
}

impl Query {
    fn parse(field: &str, path: &RecordPath) -> Result<Self, MappingError> {
        let parsed = JsonPath::parse(path.as_str()).map_err(|error| MappingError::InvalidPath {
            field: field.to_owned(),
            path: path.as_str().to_owned(),
            reason: error.to_string(),
        })?;
        Ok(Self {
            text: path.as_str().to_owned(),
            path: parsed,
        })
    }

    fn parse_all(
        field: &str,
        form: &'static str,
        paths: &[RecordPath],
    ) -> Result<Vec<Self>, MappingError> {
        if paths.is_empty() {
            return Err(MappingError::NoPaths {
                field: field.to_owned(),
                form,
            });
        }
        paths.iter().map(|path| Self::parse(field, path)).collect()
    }

    /// The single value the path selects, null when it selects nothing.
    fn one(&self, field: &str, record: &Value) -> Result<Value, MappingError> {
        let nodes = self.path.query(record);
        match nodes.at_most_one() {
            Ok(value) => Ok(value.cloned().unwrap_or(Value::Null)),
            Err(_) => Err(MappingError::Ambiguous {
                field: field.to_owned(),
                path: self.text.clone(),
                count: nodes.len(),
            }),
        }
    }
}
