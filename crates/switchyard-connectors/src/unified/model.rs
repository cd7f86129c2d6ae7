//! The unified models: their names, their bundled JSON Schemas and validation against them.

use std::fmt;
use std::sync::LazyLock;

use jsonschema::Validator;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// A provider-independent shape for one kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnifiedModel {
    /// A user or account.
    Identity,
    /// A named set of identities.
    Group,
    /// A source code repository.
    Repository,
    /// A work item or incident, carrying the IncidentLink fields.
    Ticket,
    /// A CMDB configuration item.
    ConfigurationItem,
    /// The outcome of evaluating one policy requirement.
    PolicyPosture,
    /// A resource in a cloud account.
    CloudResource,
}

/// One way a value fails its model's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the offending value (`""` is the record itself).
    pub path: String,
    /// What is wrong. Never contains the offending value: records carry customer data.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

impl UnifiedModel {
    /// Every model, in declaration order (schema lookup indexes by it).
    pub const ALL: [UnifiedModel; 7] = [
        UnifiedModel::Identity,
        UnifiedModel::Group,
        UnifiedModel::Repository,
        UnifiedModel::Ticket,
        UnifiedModel::ConfigurationItem,
        UnifiedModel::PolicyPosture,
        UnifiedModel::CloudResource,
    ];

    /// The model's name in manifests, schemas and the API (`configuration_item`).
    pub fn name(self) -> &'static str {
        match self {
            UnifiedModel::Identity => "identity",
            UnifiedModel::Group => "group",
            UnifiedModel::Repository => "repository",
            UnifiedModel::Ticket => "ticket",
            UnifiedModel::ConfigurationItem => "configuration_item",
            UnifiedModel::PolicyPosture => "policy_posture",
            UnifiedModel::CloudResource => "cloud_resource",
        }
    }

    /// The model called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|model| model.name() == name)
    }

    /// The model's JSON Schema (2020-12), parsed once.
    ///
    /// Should the bundled file not parse (the tests make sure it does), this is the schema
    /// `false`, which rejects everything: a broken schema must not let records through.
    pub fn schema(self) -> &'static Value {
        static REJECT_ALL: Value = Value::Bool(false);
        SCHEMAS[self.index()]
            .document
            .as_ref()
            .unwrap_or(&REJECT_ALL)
    }

    /// Checks `value` against the model's schema, formats included (`email`, `date-time`,
    /// `uri`), and lists every violation.
    pub fn validate(self, value: &Value) -> Result<(), Vec<Violation>> {
        let validator = match &SCHEMAS[self.index()].validator {
            Ok(validator) => validator,
            Err(reason) => {
                return Err(vec![Violation {
                    path: String::new(),
                    message: format!("the bundled {self} schema is unusable: {reason}"),
                }]);
            }
        };
        let violations: Vec<Violation> = validator
            .iter_errors(value)
            .map(|error| Violation {
                path: error.instance_path().to_string(),
                message: error.masked().to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// Checks `value` against the schema of the model's property `field` alone (formats
    /// included): a value a mapping writes whatever the record says.
    pub fn validate_field(self, field: &str, value: &Value) -> Result<(), Vec<Violation>> {
        let Some(schema) = self
            .schema()
            .get("properties")
            .and_then(|properties| properties.get(field))
        else {
            return Err(vec![Violation {
                path: String::new(),
                message: format!("the {self} model has no property `{field}`"),
            }]);
        };
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|error| {
                vec![Violation {
                    path: String::new(),
                    message: format!("the {self} schema of `{field}` is unusable: {error}"),
                }]
            })?;
        let violations: Vec<Violation> = validator
            .iter_errors(value)
            .map(|error| Violation {
                path: error.instance_path().to_string(),
                message: error.masked().to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// The model's property names, in schema order.
    pub fn fields(self) -> impl Iterator<Item = &'static str> {
        self.schema()
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|properties| properties.keys().map(String::as_str))
    }

    /// The properties every record of the model must carry, non-null.
    pub fn required_fields(self) -> impl Iterator<Item = &'static str> {
        self.schema()
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    }

    /// Whether the model has a property called `field`.
    pub fn has_field(self, field: &str) -> bool {
        self.fields().any(|known| known == field)
    }

    /// Whether `field` is one of the model's required properties.
    pub fn is_required(self, field: &str) -> bool {
        self.required_fields().any(|required| required == field)
    }

    fn index(self) -> usize {
        self as usize
    }

    fn bundled_source(self) -> &'static str {
        match self {
            UnifiedModel::Identity => include_str!("../../schemas/unified/identity.schema.json"),
            UnifiedModel::Group => include_str!("../../schemas/unified/group.schema.json"),
            UnifiedModel::Repository => {
                include_str!("../../schemas/unified/repository.schema.json")
            }
            UnifiedModel::Ticket => include_str!("../../schemas/unified/ticket.schema.json"),
            UnifiedModel::ConfigurationItem => {
                include_str!("../../schemas/unified/configuration_item.schema.json")
            }
            UnifiedModel::PolicyPosture => {
                include_str!("../../schemas/unified/policy_posture.schema.json")
            }
            UnifiedModel::CloudResource => {
                include_str!("../../schemas/unified/cloud_resource.schema.json")
            }
        }
    }
}

impl fmt::Display for UnifiedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model's parsed schema and its compiled validator; failures are kept as text so that
/// `validate` can report them instead of panicking at first use.
struct BundledSchema {
    document: Result<Value, String>,
    validator: Result<Validator, String>,
}

static SCHEMAS: LazyLock<[BundledSchema; 7]> =
    LazyLock::new(|| UnifiedModel::ALL.map(BundledSchema::load));

impl BundledSchema {
    fn load(model: UnifiedModel) -> Self {
        let document = serde_json::from_str::<Value>(model.bundled_source())
            .map_err(|error| error.to_string());
        let validator = document.as_ref().map_err(Clone::clone).and_then(|schema| {
            jsonschema::draft202012::options()
                // 2020-12 treats `format` as an annotation; unified records must honour it.
                .should_validate_formats(true)
                .build(schema)
                .map_err(|error| error.to_string())
        });
        Self {
            document,
            validator,
        }
    }
}
