//! A checked mapping with its paths parsed, ready to map many records.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

use super::coerce::{coerce, kind, to_text};
use super::error::MappingError;
use super::mapping::{Coercion, FieldMapping, MappingSpec, RecordPath};
use super::model::UnifiedModel;

/// The field every unified record carries and Switchyard fills from the connector id.
pub const SOURCE_FIELD: &str = "source";

/// A [`MappingSpec`] that passed [`check`](super::check), with its paths parsed once.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    model: UnifiedModel,
    fields: Vec<CompiledField>,
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
            fields.push(CompiledField {
                name: name.clone(),
                required: model.is_required(name),
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
        Ok(Self { model, fields })
    }

    pub fn model(&self) -> UnifiedModel {
        self.model
    }

    /// Maps one record and validates the result against the model.
    pub fn apply(&self, source: &str, record: &Value) -> Result<Value, MappingError> {
        let mut unified = Map::new();
        for field in &self.fields {
            let value = field.reader.read(&field.name, record)?;
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
        })
    }

    fn read(&self, field: &str, record: &Value) -> Result<Value, MappingError> {
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
        }
    }
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
