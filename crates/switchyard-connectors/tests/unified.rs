//! Unified models and field mappings: the bundled schemas, example provider mappings, every
//! mapping form and error, and a property test that nothing panics on arbitrary input.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_connectors::manifest;
use switchyard_connectors::unified::{
    self, Coercion, CompiledActionMapping, CompiledMapping, FieldMapping, MappingError,
    MappingSpec, MappingSubject, MemberPath, RecordPath, Related, RelatedFilter, RelatedLookup,
    RelatedMatches, Select, UnifiedModel, Violation,
};

fn spec(yaml: &str) -> MappingSpec {
    serde_norway::from_str(yaml).unwrap_or_else(|error| panic!("{error}\n{yaml}"))
}

fn spec_error(yaml: &str) -> String {
    match serde_norway::from_str::<MappingSpec>(yaml) {
        Ok(spec) => panic!("accepted {spec:?}"),
        Err(error) => error.to_string(),
    }
}

/// A group mapping with its required fields and one more field under test.
fn group_with(field: &str, mapping: &str) -> MappingSpec {
    spec(&format!(
        "model: group\nfields:\n  id: {{ path: '$.id', as: string }}\n  name: '$.name'\n  {field}: {mapping}\n"
    ))
}

/// Maps `record` with `group_with(field, mapping)` and returns the field's value.
fn group_field(field: &str, mapping: &str, record: Value) -> Result<Value, MappingError> {
    let mut record = record;
    record["id"] = json!(7);
    record["name"] = json!("admins");
    unified::apply(&group_with(field, mapping), "okta", &record).map(|value| value[field].clone())
}

// ---- the schemas ---------------------------------------------------------------------------

#[test]
fn every_schema_is_a_valid_2020_12_document_with_the_conventions() {
    for model in UnifiedModel::ALL {
        let schema = model.schema();
        jsonschema::meta::validate(schema)
            .unwrap_or_else(|error| panic!("{model} schema is not valid: {error}"));
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(
            schema["$id"],
            format!("urn:switchyard:unified:{}", model.name())
        );
        assert!(
            schema["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{model} title"
        );
        assert!(
            schema["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        assert_eq!(schema["additionalProperties"], false, "{model}");
        for (name, property) in schema["properties"].as_object().unwrap() {
            assert!(
                property["description"]
                    .as_str()
                    .is_some_and(|d| d.len() > 10),
                "{model}.{name} has no description"
            );
        }
        for required in ["id", "source"] {
            assert!(
                model.is_required(required),
                "{model} must require {required}"
            );
        }
        for required in model.required_fields() {
            assert!(
                model.has_field(required),
                "{model} requires unknown {required}"
            );
        }
    }
}

#[test]
fn every_schema_has_exactly_the_specified_fields() {
    let expected: [(UnifiedModel, &[&str]); 7] = [
        (
            UnifiedModel::Identity,
            &[
                "id",
                "email",
                "name",
                "status",
                "mfa_enabled",
                "admin",
                "last_login",
                "source",
            ],
        ),
        (
            UnifiedModel::Group,
            &["id", "name", "description", "member_count", "source"],
        ),
        (
            UnifiedModel::Repository,
            &[
                "id",
                "name",
                "full_name",
                "url",
                "private",
                "default_branch",
                "archived",
                "visibility",
                "source",
            ],
        ),
        (
            UnifiedModel::Ticket,
            &[
                "id",
                "title",
                "source",
                "system",
                "externalId",
                "url",
                "type",
                "status",
                "priority",
                "created_at",
                "updated_at",
            ],
        ),
        (
            UnifiedModel::ConfigurationItem,
            &[
                "ciId",
                "name",
                "type",
                "owner",
                "env",
                "tags",
                "lastSeenUtc",
                "id",
                "source",
            ],
        ),
        (
            UnifiedModel::PolicyPosture,
            &[
                "policyId",
                "requirementId",
                "status",
                "evidenceRef",
                "evaluatedAtUtc",
                "id",
                "source",
            ],
        ),
        (
            UnifiedModel::CloudResource,
            &[
                "id",
                "provider",
                "type",
                "region",
                "account",
                "name",
                "tags",
                "arn_or_uri",
                "source",
            ],
        ),
    ];
    for (model, fields) in expected {
        let actual: BTreeSet<&str> = model.fields().collect();
        let fields: BTreeSet<&str> = fields.iter().copied().collect();
        assert_eq!(actual, fields, "{model}");
    }
}

#[test]
fn model_names_round_trip_and_unknown_names_are_none() {
    for model in UnifiedModel::ALL {
        assert_eq!(UnifiedModel::from_name(model.name()), Some(model));
        let parsed: UnifiedModel = serde_norway::from_str(model.name()).unwrap();
        assert_eq!(parsed, model);
    }
    assert_eq!(UnifiedModel::ConfigurationItem.name(), "configuration_item");
    assert_eq!(UnifiedModel::from_name("user"), None);
    assert_eq!(UnifiedModel::from_name("Identity"), None);
}

#[test]
fn schemas_enforce_enums_formats_and_closed_objects() {
    let identity = json!({"id": "1", "name": "Ada", "status": "active", "source": "okta"});
    UnifiedModel::Identity.validate(&identity).unwrap();

    let mut bad = identity.clone();
    bad["status"] = json!("ACTIVE");
    bad["last_login"] = json!("yesterday");
    bad["email"] = json!("not an email");
    bad["nickname"] = json!("ada");
    let violations = UnifiedModel::Identity.validate(&bad).unwrap_err();
    let paths: BTreeSet<&str> = violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(
        paths,
        BTreeSet::from(["", "/status", "/last_login", "/email"]),
        "{violations:?}"
    );
    // Messages describe the problem without echoing the record's values.
    for violation in &violations {
        assert!(!violation.message.contains("yesterday"), "{violation}");
        assert!(!violation.message.contains("not an email"), "{violation}");
    }

    let mut missing = identity;
    missing.as_object_mut().unwrap().remove("status");
    assert!(UnifiedModel::Identity.validate(&missing).is_err());

    let resource = json!({
        "id": "i-1", "provider": "aws", "type": "AWS::EC2::Instance", "account": "123456789012",
        "arn_or_uri": "arn:aws:ec2:eu-west-1:123456789012:instance/i-1", "source": "aws",
        "tags": {"team": "core"}, "region": "eu-west-1", "name": null
    });
    UnifiedModel::CloudResource.validate(&resource).unwrap();
    let mut bad_tags = resource;
    bad_tags["tags"] = json!({"team": 1});
    let violations = UnifiedModel::CloudResource.validate(&bad_tags).unwrap_err();
    assert_eq!(violations[0].path, "/tags/team");
}

// ---- provider examples ---------------------------------------------------------------------

const OKTA_USERS: &str = r#"
model: identity
fields:
  id: "$.id"
  email: "$.profile.email"
  name: { join: ["$.profile.firstName", "$.profile.lastName"] }
  status:
    path: "$.status"
    map: { ACTIVE: active, SUSPENDED: suspended, DEPROVISIONED: deprovisioned, STAGED: pending, PROVISIONED: pending }
    default: unknown
  mfa_enabled: { path: "$._embedded.factors[?@.status == 'ACTIVE']", exists: true }
  last_login: { path: "$.lastLogin", as: timestamp }
"#;

fn okta_user(status: &str) -> Value {
    json!({
        "id": "00u1abcd",
        "status": status,
        "lastLogin": "2024-05-02T09:15:30.000Z",
        "profile": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"},
        "_embedded": {"factors": [{"factorType": "push", "status": "ACTIVE"}]}
    })
}

#[test]
fn okta_like_users_map_to_identities() {
    let spec = spec(OKTA_USERS);
    unified::check(&spec).unwrap();
    let identity = unified::apply(&spec, "okta", &okta_user("ACTIVE")).unwrap();
    assert_eq!(
        identity,
        json!({
            "id": "00u1abcd",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "status": "active",
            "mfa_enabled": true,
            "last_login": "2024-05-02T09:15:30Z",
            "source": "okta"
        })
    );
    for (okta, unified_status) in [
        ("SUSPENDED", "suspended"),
        ("DEPROVISIONED", "deprovisioned"),
        ("STAGED", "pending"),
        ("LOCKED_OUT", "unknown"),
    ] {
        let identity = unified::apply(&spec, "okta", &okta_user(okta)).unwrap();
        assert_eq!(identity["status"], unified_status, "{okta}");
    }

    let mut never_logged_in = okta_user("PROVISIONED");
    never_logged_in["lastLogin"] = Value::Null;
    never_logged_in["_embedded"]["factors"] = json!([]);
    let identity = unified::apply(&spec, "okta", &never_logged_in).unwrap();
    assert_eq!(identity["last_login"], Value::Null);
    assert_eq!(identity["mfa_enabled"], false);
    UnifiedModel::Identity.validate(&identity).unwrap();
}

#[test]
fn github_like_members_map_to_identities() {
    let spec = spec(
        r#"
model: identity
fields:
  id: { path: "$.id", as: string }
  name: { first_of: ["$.name", "$.login"] }
  email: "$.email"
  status: { const: active }
  admin: { path: "$.role", map: { admin: true, member: false } }
"#,
    );
    let member =
        json!({"login": "octocat", "id": 583231, "name": null, "role": "admin", "type": "User"});
    let identity = unified::apply(&spec, "github", &member).unwrap();
    assert_eq!(
        identity,
        json!({"id": "583231", "name": "octocat", "email": null, "status": "active", "admin": true, "source": "github"})
    );
}

#[test]
fn github_like_repositories_map_to_repositories() {
    let spec = spec(
        r#"
model: repository
fields:
  id: { path: "$.id", as: string }
  name: "$.name"
  full_name: "$.full_name"
  url: "$.html_url"
  private: "$.private"
  default_branch: "$.default_branch"
  archived: { path: "$.archived", default: false }
  visibility: "$.visibility"
"#,
    );
    let repository = json!({
        "id": 1296269, "name": "Hello-World", "full_name": "octocat/Hello-World",
        "html_url": "https://github.com/octocat/Hello-World", "private": false,
        "default_branch": "main", "visibility": "public", "owner": {"login": "octocat"}
    });
    let unified = unified::apply(&spec, "github", &repository).unwrap();
    assert_eq!(
        unified,
        json!({
            "id": "1296269", "name": "Hello-World", "full_name": "octocat/Hello-World",
            "url": "https://github.com/octocat/Hello-World", "private": false,
            "default_branch": "main", "archived": false, "visibility": "public", "source": "github"
        })
    );
    UnifiedModel::Repository.validate(&unified).unwrap();
}

#[test]
fn jira_like_issues_map_to_tickets() {
    let spec = spec(
        r#"
model: ticket
fields:
  id: "$.id"
  title: "$.fields.summary"
  system: { const: jira }
  externalId: "$.key"
  url: "$.self"
  type: "$.fields.issuetype.name"
  status: "$.fields.status.name"
  priority: "$.fields.priority.name"
  created_at: { path: "$.fields.created", as: timestamp }
  updated_at: { path: "$.fields.updated", as: timestamp }
"#,
    );
    let issue = json!({
        "id": "10002", "key": "OPS-17", "self": "https://acme.atlassian.net/rest/api/3/issue/10002",
        "fields": {
            "summary": "Disk full on db-1", "issuetype": {"name": "Incident"},
            "status": {"name": "In Progress"}, "priority": null,
            "created": "2024-01-15T10:30:00.000+0100", "updated": "2024-01-16T08:00:00.250-0500",
            "labels": ["prod"]
        }
    });
    let ticket = unified::apply(&spec, "jira", &issue).unwrap();
    assert_eq!(
        ticket,
        json!({
            "id": "10002", "title": "Disk full on db-1", "system": "jira", "externalId": "OPS-17",
            "url": "https://acme.atlassian.net/rest/api/3/issue/10002", "type": "Incident",
            "status": "In Progress", "priority": null,
            "created_at": "2024-01-15T09:30:00Z", "updated_at": "2024-01-16T13:00:00.25Z",
            "source": "jira"
        })
    );
}

// ---- every form ----------------------------------------------------------------------------

#[test]
fn a_bare_string_reads_one_value_and_nothing_selected_is_null() {
    assert_eq!(
        group_field(
            "description",
            "'$.about.text'",
            json!({"about": {"text": "Ops"}})
        ),
        Ok(json!("Ops"))
    );
    assert_eq!(
        group_field("description", "'$.about.text'", json!({})),
        Ok(Value::Null)
    );
    assert_eq!(
        group_field("description", "'$.about'", json!({"about": null})),
        Ok(Value::Null)
    );
}

#[test]
fn default_replaces_null_but_not_other_values() {
    let mapping = "{ path: '$.about', default: 'no description' }";
    assert_eq!(
        group_field("description", mapping, json!({})),
        Ok(json!("no description"))
    );
    assert_eq!(
        group_field("description", mapping, json!({"about": null})),
        Ok(json!("no description"))
    );
    assert_eq!(
        group_field("description", mapping, json!({"about": ""})),
        Ok(json!(""))
    );
}

#[test]
fn const_ignores_the_record() {
    assert_eq!(
        group_field("member_count", "{ const: 0 }", json!({"member_count": 5})),
        Ok(json!(0))
    );
    assert_eq!(
        group_field("description", "{ const: null }", json!({})),
        Ok(Value::Null)
    );
}

#[test]
fn first_of_takes_the_first_non_null_value() {
    let mapping = "{ first_of: ['$.a', '$.b', '$.c'], default: none }";
    assert_eq!(
        group_field(
            "description",
            mapping,
            json!({"a": null, "b": "B", "c": "C"})
        ),
        Ok(json!("B"))
    );
    assert_eq!(
        group_field("description", mapping, json!({"c": "C"})),
        Ok(json!("C"))
    );
    assert_eq!(
        group_field("description", mapping, json!({})),
        Ok(json!("none"))
    );
}

#[test]
fn join_skips_nulls_and_uses_the_separator() {
    let record = json!({"first": "Ada", "middle": null, "last": "Lovelace", "n": 2, "ok": true});
    assert_eq!(
        group_field(
            "description",
            "{ join: ['$.first', '$.middle', '$.last'] }",
            record.clone()
        ),
        Ok(json!("Ada Lovelace"))
    );
    assert_eq!(
        group_field(
            "description",
            "{ join: ['$.first', '$.n', '$.ok'], separator: '/' }",
            record.clone()
        ),
        Ok(json!("Ada/2/true"))
    );
    assert_eq!(
        group_field(
            "description",
            "{ join: ['$.middle', '$.gone'] }",
            record.clone()
        ),
        Ok(Value::Null)
    );
    assert_eq!(
        group_field(
            "description",
            "{ join: ['$.middle'], default: '-' }",
            record
        ),
        Ok(json!("-"))
    );
}

#[test]
fn map_looks_values_up_by_their_text() {
    let mapping =
        "{ path: '$.level', map: { LOW: minor, '2': major, 'true': yes }, default: other }";
    assert_eq!(
        group_field("description", mapping, json!({"level": "LOW"})),
        Ok(json!("minor"))
    );
    assert_eq!(
        group_field("description", mapping, json!({"level": 2})),
        Ok(json!("major"))
    );
    assert_eq!(
        group_field("description", mapping, json!({"level": true})),
        Ok(json!("yes"))
    );
    assert_eq!(
        group_field("description", mapping, json!({"level": "low"})),
        Ok(json!("other"))
    );
    assert_eq!(
        group_field("description", mapping, json!({"level": {"x": 1}})),
        Ok(json!("other"))
    );
    assert_eq!(
        group_field("description", mapping, json!({})),
        Ok(json!("other"))
    );
    // Without a default an unlisted value is null.
    assert_eq!(
        group_field(
            "description",
            "{ path: '$.level', map: { LOW: minor } }",
            json!({"level": "HIGH"})
        ),
        Ok(Value::Null)
    );
}

#[test]
fn as_coerces_to_each_type() {
    let integer = "{ path: '$.v', as: integer }";
    for (input, output) in [
        (json!("42"), json!(42)),
        (json!(42), json!(42)),
        (json!(42.0), json!(42)),
        (json!(" 13 "), json!(13)),
    ] {
        assert_eq!(
            group_field("member_count", integer, json!({"v": input})),
            Ok(output)
        );
    }
    let as_text = "{ path: '$.v', as: string }";
    for (input, output) in [
        (json!(12), json!("12")),
        (json!(1.5), json!("1.5")),
        (json!(false), json!("false")),
        (json!("x"), json!("x")),
    ] {
        assert_eq!(
            group_field("description", as_text, json!({"v": input})),
            Ok(output)
        );
    }
    assert_eq!(
        group_field("description", "{ path: '$.v', as: string }", json!({})),
        Ok(Value::Null)
    );

    let identity = |mapping: &str, value: Value| {
        let spec = spec(&format!(
            "model: identity\nfields:\n  id: {{ const: '1' }}\n  name: {{ const: n }}\n  status: {{ const: active }}\n  admin: {mapping}\n"
        ));
        unified::apply(&spec, "okta", &json!({"v": value}))
            .map(|identity| identity["admin"].clone())
    };
    for (input, output) in [
        (json!("TRUE"), true),
        (json!("no"), false),
        (json!("1"), true),
        (json!(0), false),
        (json!(true), true),
    ] {
        assert_eq!(
            identity("{ path: '$.v', as: boolean }", input.clone()),
            Ok(json!(output)),
            "{input}"
        );
    }

    let number = |value: Value| {
        let spec = spec(
            "model: group\nfields:\n  id: { const: '1' }\n  name: { path: '$.v', as: number }\n",
        );
        CompiledMapping::new(&spec)
            .unwrap()
            .apply("x", &json!({"v": value}))
    };
    // A number is not a valid group name, so the schema rejects it: the coercion itself worked.
    match number(json!("2.5")) {
        Err(MappingError::Invalid { violations, .. }) => assert_eq!(violations[0].path, "/name"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        number(json!("many")),
        Err(MappingError::Coercion {
            expected: "a number",
            ..
        })
    ));
}

#[test]
fn timestamps_normalise_to_rfc3339_utc() {
    let mapping = "{ path: '$.at', as: timestamp }";
    let cases = [
        (json!(1_700_000_000), "2023-11-14T22:13:20Z"),
        (json!(1_700_000_000_123_i64), "2023-11-14T22:13:20.123Z"),
        (json!(1_700_000_000.5), "2023-11-14T22:13:20.5Z"),
        (json!("1700000000"), "2023-11-14T22:13:20Z"),
        (json!("2024-05-02T11:15:30+02:00"), "2024-05-02T09:15:30Z"),
        (json!("2024-05-02T09:15:30.000Z"), "2024-05-02T09:15:30Z"),
        (
            json!("2024-05-02T09:15:30.000+0000"),
            "2024-05-02T09:15:30Z",
        ),
        (json!(0), "1970-01-01T00:00:00Z"),
    ];
    let spec = spec(&format!(
        "model: policy_posture\nfields:\n  id: {{ const: p }}\n  policyId: {{ const: cis }}\n  status: {{ const: pass }}\n  evaluatedAtUtc: {mapping}\n"
    ));
    for (input, output) in cases {
        let posture = unified::apply(&spec, "aws", &json!({"at": input})).unwrap();
        assert_eq!(posture["evaluatedAtUtc"], output, "{input}");
    }
    for bad in [
        json!("yesterday"),
        json!("2024-13-01T00:00:00Z"),
        json!(true),
        json!([1]),
        json!(1e300),
        json!(""),
    ] {
        match unified::apply(&spec, "aws", &json!({"at": bad})) {
            Err(MappingError::Coercion { field, found, .. }) => {
                assert_eq!(field, "evaluatedAtUtc");
                assert_ne!(found, "null");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn map_then_as_then_default_combine_in_that_order() {
    let spec = spec(
        "model: identity\nfields:\n  id: { const: '1' }\n  name: { const: n }\n  status: { const: active }\n  admin: { path: '$.role', map: { admin: 'true', member: 'false' }, as: boolean, default: false }\n",
    );
    let admin = |record: Value| unified::apply(&spec, "github", &record).unwrap()["admin"].clone();
    assert_eq!(admin(json!({"role": "admin"})), json!(true));
    assert_eq!(admin(json!({"role": "member"})), json!(false));
    assert_eq!(
        admin(json!({"role": "billing_manager"})),
        json!(false),
        "unlisted, so default"
    );
    assert_eq!(admin(json!({})), json!(false));
}

#[test]
fn exists_is_true_only_for_a_non_null_match() {
    let identity = |record: Value| {
        let spec = spec(
            "model: identity\nfields:\n  id: { const: '1' }\n  name: { const: n }\n  status: { const: active }\n  mfa_enabled: { path: '$.mfa', exists: true }\n",
        );
        unified::apply(&spec, "okta", &record).unwrap()["mfa_enabled"].clone()
    };
    assert_eq!(identity(json!({"mfa": {"type": "totp"}})), json!(true));
    assert_eq!(
        identity(json!({"mfa": false})),
        json!(true),
        "false is a value"
    );
    assert_eq!(identity(json!({"mfa": null})), json!(false));
    assert_eq!(identity(json!({})), json!(false));
}

#[test]
fn many_collects_every_match() {
    let ci = |tags: &str, record: Value| {
        let spec = spec(&format!(
            "model: configuration_item\nfields:\n  id: '$.sys_id'\n  ciId: '$.sys_id'\n  name: '$.name'\n  type: {{ const: server }}\n  tags: {tags}\n"
        ));
        let mut record = record;
        record["sys_id"] = json!("abc");
        record["name"] = json!("db-1");
        unified::apply(&spec, "servicenow", &record).map(|ci| ci["tags"].clone())
    };
    let record =
        json!({"labels": [{"name": "prod"}, {"name": null}, {"name": "db"}, {"other": 1}]});
    assert_eq!(
        ci("{ path: '$.labels[*].name', many: true }", record.clone()),
        Ok(json!(["prod", "db"]))
    );
    assert_eq!(
        ci("{ path: '$.missing[*]', many: true }", record.clone()),
        Ok(json!([]))
    );
    assert_eq!(
        ci(
            "{ path: '$.missing[*]', many: true, default: [untagged] }",
            record.clone()
        ),
        Ok(json!(["untagged"]))
    );
    assert_eq!(
        ci(
            "{ path: '$.labels[*].name', many: true, map: { prod: production } }",
            record
        ),
        Ok(json!(["production"])),
        "unlisted values are left out of the array"
    );
    assert_eq!(
        ci(
            "{ path: '$.ids[*]', many: true, as: string }",
            json!({"ids": [1, 2]})
        ),
        Ok(json!(["1", "2"]))
    );
}

#[test]
fn source_is_the_connector_id() {
    let spec = group_with("description", "{ const: x }");
    let group = unified::apply(&spec, "entra", &json!({"id": "g", "name": "n"})).unwrap();
    assert_eq!(group["source"], "entra");
}

#[test]
fn mappings_can_be_built_in_code() {
    let spec = MappingSpec {
        model: UnifiedModel::Group,
        fields: BTreeMap::from([
            (
                "id".to_owned(),
                FieldMapping::Select(Select {
                    coerce: Some(Coercion::String),
                    ..Select::path("$.id")
                }),
            ),
            (
                "name".to_owned(),
                FieldMapping::FirstOf {
                    paths: vec![RecordPath("$.title".into()), RecordPath("$.slug".into())],
                    default: None,
                },
            ),
        ]),
    };
    let group = unified::apply(&spec, "github", &json!({"id": 3, "slug": "core"})).unwrap();
    assert_eq!(
        group,
        json!({"id": "3", "name": "core", "source": "github"})
    );
}

// ---- errors --------------------------------------------------------------------------------

#[test]
fn check_rejects_unknown_reserved_and_unmapped_fields() {
    let unknown = group_with("nickname", "'$.nick'");
    assert_eq!(
        unified::check(&unknown),
        Err(MappingError::UnknownField {
            model: UnifiedModel::Group,
            field: "nickname".into()
        })
    );
    let reserved = group_with("source", "{ const: okta }");
    assert_eq!(
        unified::check(&reserved),
        Err(MappingError::Reserved {
            field: "source".into()
        })
    );

    let unmapped = spec("model: group\nfields:\n  id: '$.id'\n");
    let error = unified::check(&unmapped).unwrap_err();
    assert_eq!(
        error,
        MappingError::Unmapped {
            model: UnifiedModel::Group,
            field: "name".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "field `name` is required by the group model but has no mapping"
    );
}

#[test]
fn check_rejects_paths_that_do_not_parse_naming_the_field() {
    for mapping in [
        "'$.a['",
        "{ path: 'profile.email' }",
        "{ first_of: ['$.a', '$..'] }",
        "{ join: ['$[?'] }",
        "{ path: '$.a[', exists: true }",
        "{ path: '$.x y', many: true }",
    ] {
        match unified::check(&group_with("description", mapping)) {
            Err(error @ MappingError::InvalidPath { .. }) => {
                assert_eq!(error.field(), Some("description"), "{mapping}");
                assert!(error.to_string().contains("field `description`"), "{error}");
            }
            other => panic!("{mapping}: {other:?}"),
        }
    }
}

#[test]
fn check_rejects_forms_with_no_paths() {
    let built = MappingSpec {
        model: UnifiedModel::Group,
        fields: BTreeMap::from([
            ("id".to_owned(), FieldMapping::Const(json!("1"))),
            (
                "name".to_owned(),
                FieldMapping::Join {
                    paths: vec![],
                    separator: " ".into(),
                    default: None,
                },
            ),
        ]),
    };
    assert_eq!(
        unified::check(&built),
        Err(MappingError::NoPaths {
            field: "name".into(),
            form: "join"
        })
    );
}

#[test]
fn apply_reports_missing_ambiguous_coercion_and_invalid_by_field() {
    let missing = unified::apply(
        &spec(OKTA_USERS),
        "okta",
        &json!({"id": "1", "status": "ACTIVE"}),
    );
    assert_eq!(
        missing,
        Err(MappingError::Missing {
            field: "name".into()
        })
    );

    let record = json!({"id": 1, "name": "n", "emails": ["a@x", "b@x"]});
    let ambiguous = unified::apply(&group_with("description", "'$.emails[*]'"), "okta", &record);
    assert_eq!(
        ambiguous,
        Err(MappingError::Ambiguous {
            field: "description".into(),
            path: "$.emails[*]".into(),
            count: 2
        })
    );
    let in_first_of = unified::apply(
        &group_with("description", "{ first_of: ['$.nope', '$.emails[*]'] }"),
        "okta",
        &record,
    );
    assert!(
        matches!(in_first_of, Err(MappingError::Ambiguous { ref field, .. }) if field == "description")
    );

    let coercion = group_field(
        "member_count",
        "{ path: '$.v', as: integer }",
        json!({"v": "12 people"}),
    );
    assert_eq!(
        coercion,
        Err(MappingError::Coercion {
            field: "member_count".into(),
            expected: "an integer",
            found: "a string"
        })
    );
    let joined = group_field("description", "{ join: ['$.v'] }", json!({"v": {"a": 1}}));
    assert_eq!(
        joined,
        Err(MappingError::Coercion {
            field: "description".into(),
            expected: "a string, number or boolean to join",
            found: "an object",
        })
    );

    let invalid = group_field("member_count", "'$.v'", json!({"v": -1})).unwrap_err();
    assert_eq!(
        invalid,
        MappingError::Invalid {
            model: UnifiedModel::Group,
            violations: vec![Violation {
                path: "/member_count".into(),
                message: "value is less than the minimum of 0".into(),
            }],
        }
    );
    assert_eq!(
        invalid.to_string(),
        "the mapped record does not match the group model: /member_count: value is less than the minimum of 0"
    );
}

#[test]
fn errors_never_echo_record_values() {
    let secretish = "s3cr3t-value";
    let results = [
        group_field(
            "member_count",
            "{ path: '$.v', as: integer }",
            json!({"v": secretish}),
        ),
        group_field("member_count", "'$.v'", json!({"v": secretish})),
        group_field(
            "description",
            "{ join: ['$.v'] }",
            json!({"v": [secretish]}),
        ),
    ];
    for result in results {
        let error = result.unwrap_err().to_string();
        assert!(!error.contains(secretish), "{error}");
    }
}

#[test]
fn yaml_with_wrong_shapes_is_rejected_with_the_reason() {
    let base = "model: group\nfields:\n  id: '$.id'\n  name: ";
    assert!(
        spec_error(&format!("{base}{{ path: '$.n', sepparator: ' ' }}")).contains("sepparator")
    );
    assert!(
        spec_error(&format!("{base}{{ join: ['$.a'], sepparator: ' ' }}")).contains("sepparator")
    );
    assert!(spec_error(&format!("{base}{{ const: a, path: '$.a' }}")).contains("path"));
    assert!(spec_error(&format!("{base}{{ path: '$.a', exists: false }}")).contains("exists"));
    assert!(spec_error(&format!("{base}{{ path: '$.a', as: date }}")).contains("date"));
    assert!(spec_error(&format!("{base}42")).contains("JSONPath string"));
    assert!(spec_error(&format!("{base}{{ paths: ['$.a'] }}")).contains("JSONPath string"));
    assert!(spec_error("model: user\nfields: {}\n").contains("user"));
    assert!(spec_error("model: group\nfields: {}\nextra: 1\n").contains("extra"));
}

#[test]
fn the_generated_schema_accepts_what_deserializes_and_rejects_the_rest() {
    let schema = serde_json::to_value(schemars::schema_for!(MappingSpec)).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let good: Value = serde_norway::from_str(OKTA_USERS).unwrap();
    assert!(
        validator.is_valid(&good),
        "{:?}",
        validator
            .iter_errors(&good)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let every_form: Value = serde_norway::from_str(
        "model: ticket\nfields:\n  id: '$.id'\n  title: { first_of: ['$.a'], default: t }\n  system: { const: jira }\n  externalId: { join: ['$.a', '$.b'], separator: '-' }\n  url: { path: '$.u', many: true, map: { a: b }, as: string, default: [] }\n  status: { path: '$.s', exists: true }\n",
    )
    .unwrap();
    assert!(validator.is_valid(&every_form));
    serde_json::from_value::<MappingSpec>(every_form).unwrap();
    for related in [GITHUB_MEMBERS, OKTA_USERS_WITH_FACTORS] {
        let related: Value = serde_norway::from_str(related).unwrap();
        assert!(validator.is_valid(&related), "schema refused {related}");
    }

    for bad in [
        json!({"model": "group", "fields": {"name": {"path": "$.a", "sepparator": " "}}}),
        json!({"model": "group", "fields": {"name": {"path": "$.a", "exists": false}}}),
        json!({"model": "group", "fields": {"name": {"join": []}}}),
        json!({"model": "group", "fields": {"name": {"first_of": []}}}),
        json!({"model": "group", "fields": {"name": 1}}),
        json!({"model": "user", "fields": {}}),
        json!({"model": "group", "fields": {}, "extra": true}),
        json!({"model": "identity", "fields": {"mfa_enabled": {"related": {"stream": "s", "key": "$.id"}, "present": true}}}),
        json!({"model": "identity", "fields": {"mfa_enabled": {"related": {"stream": "s"}, "present": true, "absent": false}}}),
        json!({"model": "identity", "fields": {"mfa_enabled": {"related": {"stream": "s", "key": "$.id", "on": "$.x"}, "present": true, "absent": false}}}),
    ] {
        assert!(!validator.is_valid(&bad), "schema accepted {bad}");
        assert!(
            serde_json::from_value::<MappingSpec>(bad.clone()).is_err(),
            "serde accepted {bad}"
        );
    }
}

// ---- templates -----------------------------------------------------------------------------

const TICKET_WITH_TEMPLATE: &str = r#"
model: ticket
fields:
  id: "$.id"
  title: "$.title"
  system: { const: tracker }
  externalId: "$.key"
  url:
    template: >-
      {%- if config.site is defined -%}
        https://{{ config.site }}.tracker.test/browse/{{ record.key }}
      {%- else -%}
        {{ record.self }}
      {%- endif -%}
  type: { template: "{{ record.kind | default('') | upper }}", default: TASK }
"#;

#[test]
fn a_template_renders_over_the_record_and_the_connections_config() {
    let compiled = CompiledMapping::new(&spec(TICKET_WITH_TEMPLATE)).unwrap();
    let record = json!({"id": "7", "title": "Fix it", "key": "T-7", "self": "https://api.tracker.test/7", "kind": "bug"});
    let with_site = compiled
        .clone()
        .with_config(json!({"site": "acme"}))
        .apply("tracker", &record)
        .unwrap();
    assert_eq!(with_site["url"], "https://acme.tracker.test/browse/T-7");
    assert_eq!(with_site["type"], "BUG");
    // Without a config (or without the name in it) the template's other branch runs.
    let without = compiled.apply("tracker", &record).unwrap();
    assert_eq!(without["url"], "https://api.tracker.test/7");
    // Blank text is null, which `default` replaces.
    let mut kindless = record.clone();
    kindless.as_object_mut().unwrap().remove("kind");
    assert_eq!(
        compiled.apply("tracker", &kindless).unwrap()["type"],
        "TASK"
    );
    let blank = group_field(
        "description",
        "{ template: '  {{ record.missing | default(\"\") }} ' }",
        json!({}),
    );
    assert_eq!(blank.unwrap(), Value::Null);
}

#[test]
fn a_failing_template_names_the_field_but_not_the_record() {
    // Strict, as every manifest template: a name the record lacks is an error, not "".
    let secretish = "s3cr3t-value";
    let error = group_field(
        "description",
        "{ template: '{{ record.v.nested }}' }",
        json!({"v": secretish}),
    )
    .unwrap_err();
    assert!(
        matches!(&error, MappingError::Template { field, .. } if field == "description"),
        "{error:?}"
    );
    assert!(!error.to_string().contains(secretish), "{error}");
    let error = group_field(
        "description",
        "{ template: '{{ record.v | format_time(\"%Y\") }}' }",
        json!({"v": secretish}),
    )
    .unwrap_err();
    assert!(!error.to_string().contains(secretish), "{error}");
    // A required field whose template renders nothing is missing.
    let required_blank = spec("model: group\nfields:\n  id: { template: '' }\n  name: '$.name'\n");
    assert_eq!(
        unified::apply(&required_blank, "okta", &json!({"name": "n"})).unwrap_err(),
        MappingError::Missing { field: "id".into() }
    );
}

#[test]
fn check_rejects_templates_that_do_not_parse_or_read_other_names() {
    let error =
        unified::check(&group_with("description", "{ template: '{{ record.a ' }")).unwrap_err();
    assert!(
        matches!(&error, MappingError::InvalidTemplate { field, .. } if field == "description"),
        "{error:?}"
    );
    for name in ["secrets.token", "input.summary", "checkpoint.since"] {
        let error = unified::check(&group_with(
            "description",
            &format!("{{ template: '{{{{ {name} }}}}' }}"),
        ))
        .unwrap_err();
        assert_eq!(
            error,
            MappingError::TemplateVariable {
                field: "description".into(),
                name: name.into()
            }
        );
    }
    assert!(
        spec_error("model: group\nfields:\n  id: '$.id'\n  name: { template: 'x', path: '$.a' }\n")
            .contains("path")
    );
    let schema = serde_json::to_value(schemars::schema_for!(MappingSpec)).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let good: Value = serde_norway::from_str(TICKET_WITH_TEMPLATE).unwrap();
    assert!(validator.is_valid(&good));
    let bad = json!({"model": "group", "fields": {"name": {"template": "x", "separator": " "}}});
    assert!(!validator.is_valid(&bad));
}

#[test]
fn an_action_template_reads_the_exchange_and_the_config() {
    let exchange = "    unified:\n      model: ticket\n      from: exchange\n      fields:\n        id: '$.output.id'\n        title: '$.input.summary'\n        system: { const: tracker }\n        externalId: '$.output.key'\n        url: { template: 'https://{{ config.site }}.tracker.test/browse/{{ record.output.key }}?from={{ record.input.summary | lower | replace(\"_\", \"-\") }}' }\n";
    let good_mfa = "{ related: { stream: extra, key: '$.id' }, present: false, absent: true }";
    let loaded = manifest::load(&manifest_with(good_mfa, exchange), "test").unwrap();
    let mapping = loaded
        .action("create_issue")
        .unwrap()
        .unified
        .as_ref()
        .unwrap();
    let ticket = CompiledActionMapping::new(mapping)
        .unwrap()
        .with_config(json!({"site": "acme"}))
        .apply(
            "tracker",
            &json!({"summary": "Fix_it"}),
            &json!({"id": "7", "key": "T-7"}),
        )
        .unwrap();
    assert_eq!(
        ticket["url"],
        "https://acme.tracker.test/browse/T-7?from=fix-it"
    );
    // `status` is optional: a created ticket whose answer does not say it leaves it out.
    assert!(ticket.get("status").is_none(), "{ticket}");
}

// ---- related fields ------------------------------------------------------------------------

const GITHUB_MEMBERS: &str = r#"
model: identity
fields:
  id: { path: "$.id", as: string }
  name: "$.login"
  status: { const: active }
  mfa_enabled: { related: { stream: members_2fa_disabled, key: "$.id" }, present: false, absent: true }
"#;

const OKTA_USERS_WITH_FACTORS: &str = r#"
model: identity
fields:
  id: "$.id"
  name: "$.profile.login"
  status: { const: active }
  mfa_enabled: { related: { stream: user_factors, key: "$.id", match: "$.user_id", where: { path: "$.status", equals: ACTIVE } }, present: true, absent: false }
"#;

fn member_path(text: &str) -> MemberPath {
    MemberPath::parse(text).unwrap_or_else(|| panic!("not a member path: {text}"))
}

#[test]
fn related_fields_compile_to_their_store_lookup() {
    let github = CompiledMapping::new(&spec(GITHUB_MEMBERS)).unwrap();
    assert_eq!(
        github.related(),
        [RelatedLookup {
            field: "mfa_enabled".into(),
            stream: "members_2fa_disabled".into(),
            matches: None,
            filter: None,
        }]
    );
    let okta = CompiledMapping::new(&spec(OKTA_USERS_WITH_FACTORS)).unwrap();
    assert_eq!(
        okta.related(),
        [RelatedLookup {
            field: "mfa_enabled".into(),
            stream: "user_factors".into(),
            matches: Some(member_path("$.user_id")),
            filter: Some((member_path("$.status"), json!("ACTIVE"))),
        }]
    );
    assert_eq!(
        spec(OKTA_USERS_WITH_FACTORS).fields["mfa_enabled"],
        FieldMapping::Related(Related {
            stream: "user_factors".into(),
            key: RecordPath("$.id".into()),
            matches: Some(RecordPath("$.user_id".into())),
            filter: Some(RelatedFilter {
                path: RecordPath("$.status".into()),
                equals: json!("ACTIVE"),
            }),
            present: json!(true),
            absent: json!(false),
        })
    );
}

#[test]
fn related_fields_take_present_or_absent_from_the_page_answers() {
    let mapping = CompiledMapping::new(&spec(GITHUB_MEMBERS)).unwrap();
    let members = [
        json!({"id": 1, "login": "ada"}),
        json!({"id": 2, "login": "grace"}),
        json!({"id": 1, "login": "ada-again"}),
        json!({"id": 2.5, "login": "odd"}),
    ];
    let keys = mapping.related_keys(&members);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].0.field, "mfa_enabled");
    // Each key once; unusable keys are not asked about.
    assert_eq!(keys[0].1, BTreeSet::from(["1".to_owned(), "2".to_owned()]));

    let mfa = |answers: &RelatedMatches, member: &Value| {
        mapping
            .apply_with("github", member, answers)
            .map(|identity| identity["mfa_enabled"].clone())
    };
    // Member 1 is in the 2FA-disabled list, member 2 is not.
    let mut answers = RelatedMatches::default();
    answers.insert("mfa_enabled", Some(BTreeSet::from(["1".to_owned()])));
    assert_eq!(mfa(&answers, &members[0]), Ok(json!(false)));
    assert_eq!(mfa(&answers, &members[1]), Ok(json!(true)));
    assert!(matches!(
        mfa(&answers, &members[3]),
        Err(MappingError::Coercion { field, found: "a number", .. }) if field == "mfa_enabled"
    ));

    // The list has never been synced to the end: absence proves nothing.
    let mut never_synced = RelatedMatches::default();
    never_synced.insert("mfa_enabled", None);
    assert_eq!(mfa(&never_synced, &members[0]), Ok(Value::Null));
    assert_eq!(mfa(&never_synced, &members[1]), Ok(Value::Null));
    // No key: nothing to look up, so nothing is known.
    let owned = group_with(
        "description",
        "{ related: { stream: owners, key: '$.owner' }, present: owned, absent: unowned }",
    );
    let owned = CompiledMapping::new(&owned).unwrap();
    let mut owners = RelatedMatches::default();
    owners.insert("description", Some(BTreeSet::from(["ada".to_owned()])));
    let description =
        |group: Value| owned.apply_with("okta", &group, &owners).unwrap()["description"].clone();
    assert_eq!(
        description(json!({"id": "g", "name": "n", "owner": "ada"})),
        json!("owned")
    );
    assert_eq!(
        description(json!({"id": "g", "name": "n", "owner": "bob"})),
        json!("unowned")
    );
    assert_eq!(
        description(json!({"id": "g", "name": "n", "owner": null})),
        Value::Null
    );
    assert_eq!(description(json!({"id": "g", "name": "n"})), Value::Null);
    // Without answers (`apply`, as the conformance kit maps offline) the field is null and the
    // record still maps.
    let plain = mapping.apply("github", &members[1]).unwrap();
    assert_eq!(plain["mfa_enabled"], Value::Null);
    assert_eq!(plain["id"], "2");
}

#[test]
fn related_mappings_are_checked_naming_the_field() {
    let identity = |mfa: &str| {
        spec(&format!(
            "model: identity\nfields:\n  id: '$.id'\n  name: '$.n'\n  status: {{ const: active }}\n  mfa_enabled: {mfa}\n"
        ))
    };
    let error = |mfa: &str| unified::check(&identity(mfa)).unwrap_err();
    let base = "related: { stream: factors, key: '$.id'";
    for path in [
        "$.a[0]",
        "$..user_id",
        "$['user_id']",
        "$.*",
        "$",
        "$.user_id.*",
    ] {
        assert_eq!(
            error(&format!(
                "{{ {base}, match: \"{path}\" }}, present: true, absent: false }}"
            )),
            MappingError::NotMemberPath {
                field: "mfa_enabled".into(),
                path: path.into()
            },
        );
        assert_eq!(
            error(&format!(
                "{{ {base}, where: {{ path: \"{path}\", equals: ACTIVE }} }}, present: true, absent: false }}"
            )),
            MappingError::NotMemberPath {
                field: "mfa_enabled".into(),
                path: path.into()
            },
        );
    }
    assert!(matches!(
        error("{ related: { stream: f, key: 'id' }, present: true, absent: false }"),
        MappingError::InvalidPath { field, .. } if field == "mfa_enabled"
    ));
    for bad in ["'yes'", "1", "[true]"] {
        assert!(matches!(
            error(&format!("{{ {base} }}, present: {bad}, absent: false }}")),
            MappingError::RelatedValue { field, which: "present", .. } if field == "mfa_enabled"
        ));
        assert!(matches!(
            error(&format!("{{ {base} }}, present: true, absent: {bad} }}")),
            MappingError::RelatedValue { field, which: "absent", .. } if field == "mfa_enabled"
        ));
    }
    // Null is a value the field may take.
    unified::check(&identity(&format!(
        "{{ {base} }}, present: true, absent: null }}"
    )))
    .unwrap();
    for equals in ["1.5", "null", "{ a: 1 }", "[ACTIVE]"] {
        assert!(matches!(
            error(&format!(
                "{{ {base}, where: {{ path: '$.status', equals: {equals} }} }}, present: true, absent: false }}"
            )),
            MappingError::RelatedValue {
                which: "where.equals",
                ..
            }
        ));
    }
    for equals in ["ACTIVE", "3", "true"] {
        unified::check(&identity(&format!(
            "{{ {base}, where: {{ path: '$.a.b_2', equals: {equals} }} }}, present: true, absent: false }}"
        )))
        .unwrap();
    }
    // A required field cannot wait for another stream's sync.
    let required = spec(
        "model: identity\nfields:\n  id: '$.id'\n  name: { related: { stream: s, key: '$.id' }, present: a, absent: b }\n  status: { const: active }\n",
    );
    assert_eq!(
        unified::check(&required).unwrap_err(),
        MappingError::RelatedRequired {
            model: UnifiedModel::Identity,
            field: "name".into()
        }
    );
    // The YAML form is strict.
    let base_yaml = "model: identity\nfields:\n  id: '$.id'\n  mfa_enabled: ";
    assert!(
        spec_error(&format!(
            "{base_yaml}{{ related: {{ stream: s, key: '$.id' }}, present: true }}"
        ))
        .contains("absent")
    );
    assert!(
        spec_error(&format!(
            "{base_yaml}{{ related: {{ stream: s }}, present: true, absent: false }}"
        ))
        .contains("key")
    );
    assert!(spec_error(&format!("{base_yaml}{{ related: {{ stream: s, key: '$.id', on: '$.x' }}, present: true, absent: false }}")).contains("on"));
    assert!(spec_error(&format!("{base_yaml}{{ related: {{ stream: s, key: '$.id', where: {{ path: '$.a' }} }}, present: true, absent: false }}")).contains("equals"));
}

/// A manifest with two streams, `members` mapping `mfa_enabled` from `extra`.
fn manifest_with(mfa: &str, action_unified: &str) -> String {
    format!(
        r#"
id: related-check
name: Related check
version: 1.0.0
base_url: https://example.test
auth:
  - type: bearer
streams:
  - name: members
    request: {{ path: /members }}
    records: "$[*]"
    primary_key: ["$.id"]
    unified:
      model: identity
      fields:
        id: {{ path: "$.id", as: string }}
        name: "$.login"
        status: {{ const: active }}
        mfa_enabled: {mfa}
  - name: extra
    request: {{ path: /extra }}
    records: "$[*]"
    primary_key: ["$.id"]
actions:
  - name: create_issue
    request: {{ method: POST, path: /issues }}
{action_unified}
"#
    )
}

fn load_problems(text: &str) -> Vec<manifest::ManifestProblem> {
    match manifest::load(text, "test") {
        Ok(_) => panic!("the manifest loaded"),
        Err(error) => error.problems,
    }
}

#[test]
fn the_loader_checks_related_streams_and_action_mappings() {
    let good_mfa = "{ related: { stream: extra, key: '$.id' }, present: false, absent: true }";
    let ticket = "    unified:\n      model: ticket\n      fields:\n        id: { path: '$.id', as: string }\n        title: '$.title'\n        system: { const: github }\n        externalId: { path: '$.number', as: string }\n        url: '$.html_url'\n        status: '$.state'\n";
    let loaded = manifest::load(&manifest_with(good_mfa, ticket), "test").unwrap();
    assert_eq!(
        loaded
            .action("create_issue")
            .unwrap()
            .unified
            .as_ref()
            .unwrap()
            .spec
            .model,
        UnifiedModel::Ticket
    );

    let problems = load_problems(&manifest_with(
        "{ related: { stream: missing, key: '$.id' }, present: false, absent: true }",
        "",
    ));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].path.as_deref(),
        Some("streams[0].unified.fields.mfa_enabled.related.stream")
    );
    assert!(
        problems[0].message.contains("no stream `missing`"),
        "{}",
        problems[0].message
    );
    assert!(problems[0].line.is_some());

    let problems = load_problems(&manifest_with(
        "{ related: { stream: extra, key: '$.id', match: '$.a[0]' }, present: false, absent: true }",
        "",
    ));
    assert_eq!(problems[0].path.as_deref(), Some("streams[0].unified"));
    assert!(
        problems[0].message.contains("`mfa_enabled`"),
        "{}",
        problems[0].message
    );
    assert!(
        problems[0].message.contains("simple member path"),
        "{}",
        problems[0].message
    );

    // An action's output is not a stored record: it maps without `related`.
    let problems = load_problems(&manifest_with(
        good_mfa,
        "    unified:\n      model: identity\n      fields:\n        id: '$.id'\n        name: '$.login'\n        status: { const: active }\n        mfa_enabled: { related: { stream: extra, key: '$.id' }, present: false, absent: true }\n",
    ));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].path.as_deref(),
        Some("actions[0].unified.fields.mfa_enabled")
    );
    // And its mapping is checked like a stream's.
    let problems = load_problems(&manifest_with(
        good_mfa,
        "    unified:\n      model: ticket\n      fields:\n        id: '$.id'\n",
    ));
    assert_eq!(problems[0].path.as_deref(), Some("actions[0].unified"));
    assert!(
        problems[0].message.contains("required"),
        "{}",
        problems[0].message
    );
}

/// `from: exchange` maps `{"input", "output"}`; the default reads the output alone.
#[test]
fn an_action_mapping_reads_the_output_or_the_exchange() {
    let good_mfa = "{ related: { stream: extra, key: '$.id' }, present: false, absent: true }";
    let exchange = "    unified:\n      model: ticket\n      from: exchange\n      fields:\n        id: '$.output.id'\n        title: \"$['input'].summary\"\n        system: { const: tracker }\n        externalId: '$.output.key'\n        url: '$.output.self'\n        status: { first_of: ['$.output.state', '$.input.state'], default: open }\n";
    let loaded = manifest::load(&manifest_with(good_mfa, exchange), "test").unwrap();
    let mapping = loaded
        .action("create_issue")
        .unwrap()
        .unified
        .as_ref()
        .unwrap();
    assert_eq!(mapping.from, MappingSubject::Exchange);
    let compiled = CompiledActionMapping::new(mapping).unwrap();
    let output = json!({"id": "7", "key": "T-7", "self": "https://tracker.test/rest/7"});
    let ticket = compiled
        .apply(
            "tracker",
            &json!({"summary": "Fix it", "state": "new"}),
            &output,
        )
        .unwrap();
    assert_eq!(ticket["title"], "Fix it");
    assert_eq!(ticket["externalId"], "T-7");
    assert_eq!(
        ticket["status"], "new",
        "the input's, as the output has none"
    );

    // Without `from`, the paths read the output itself.
    let output_only = "    unified:\n      model: ticket\n      fields:\n        id: '$.id'\n        title: '$.title'\n        system: { const: tracker }\n        externalId: '$.key'\n        url: '$.self'\n        status: { const: open }\n";
    let loaded = manifest::load(&manifest_with(good_mfa, output_only), "test").unwrap();
    let mapping = loaded
        .action("create_issue")
        .unwrap()
        .unified
        .as_ref()
        .unwrap();
    assert_eq!(mapping.from, MappingSubject::Output);
    let ticket = CompiledActionMapping::new(mapping)
        .unwrap()
        .apply("tracker", &json!({"title": "ignored"}), &json!({"id": "8", "title": "Out", "key": "T-8", "self": "https://tracker.test/rest/8"}))
        .unwrap();
    assert_eq!(ticket["title"], "Out");

    // With `from: exchange`, a path outside `input` and `output` reads nothing, ever.
    let problems = load_problems(&manifest_with(
        good_mfa,
        &exchange.replace("'$.output.key'", "'$.key'"),
    ));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path.as_deref(), Some("actions[0].unified"));
    assert!(
        problems[0].message.contains("`externalId`") && problems[0].message.contains("`$.key`"),
        "{}",
        problems[0].message
    );
    let problems = load_problems(&manifest_with(
        good_mfa,
        &exchange.replace("'$.input.state'", "'$..state'"),
    ));
    assert!(
        problems[0].message.contains("`status`"),
        "{}",
        problems[0].message
    );

    // An unknown subject, and `from` on a stream, are refused.
    let problems = load_problems(&manifest_with(
        good_mfa,
        &exchange.replace("from: exchange", "from: input"),
    ));
    assert!(problems[0].message.contains("input"), "{problems:?}");
    let problems = load_problems(&manifest_with(
        &format!("{good_mfa}\n      from: exchange"),
        "",
    ));
    assert!(problems[0].message.contains("from"), "{problems:?}");
}

// ---- no input panics -----------------------------------------------------------------------

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9 :.+-]{0,24}".prop_map(Value::from),
        Just(json!("2024-05-02T09:15:30Z")),
        Just(json!("ada@example.com")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn arbitrary_path() -> impl Strategy<Value = String> {
    prop_oneof![
        // Free text from JSONPath's alphabet: mostly invalid, sometimes valid.
        r"[$@.\[\]*?()'a-z0-9=<>!&|, -]{0,24}",
        // Well-formed paths over the record's keys.
        prop::collection::vec(
            prop_oneof![
                r"\.[a-z]{1,6}",
                Just("[*]".to_owned()),
                Just("..[0]".to_owned()),
                r"\[-?[0-9]\]"
            ],
            0..4
        )
        .prop_map(|segments| format!("${}", segments.concat())),
    ]
}

fn arbitrary_mapping() -> impl Strategy<Value = FieldMapping> {
    let coercion = prop_oneof![
        Just(None),
        Just(Some(Coercion::Boolean)),
        Just(Some(Coercion::Integer)),
        Just(Some(Coercion::Number)),
        Just(Some(Coercion::String)),
        Just(Some(Coercion::Timestamp)),
    ];
    let lookup = prop::option::of(prop::collection::btree_map(
        "[a-z0-9]{0,4}",
        arbitrary_json(),
        0..4,
    ));
    prop_oneof![
        (
            arbitrary_path(),
            any::<bool>(),
            lookup,
            coercion,
            prop::option::of(arbitrary_json())
        )
            .prop_map(
                |(path, many, lookup, coerce, default)| FieldMapping::Select(Select {
                    path: RecordPath(path),
                    many,
                    lookup,
                    coerce,
                    default
                })
            ),
        arbitrary_json().prop_map(FieldMapping::Const),
        (
            prop::collection::vec(arbitrary_path(), 0..3),
            prop::option::of(arbitrary_json())
        )
            .prop_map(|(paths, default)| FieldMapping::FirstOf {
                paths: paths.into_iter().map(RecordPath).collect(),
                default
            }),
        (prop::collection::vec(arbitrary_path(), 0..3), ".{0,3}").prop_map(|(paths, separator)| {
            FieldMapping::Join {
                paths: paths.into_iter().map(RecordPath).collect(),
                separator,
                default: None,
            }
        }),
        arbitrary_path().prop_map(|path| FieldMapping::Exists(RecordPath(path))),
        (
            prop::sample::select(vec![
                "{{ record.a }}",
                "{{ record.a.b | default('') }}",
                "{% if config.site is defined %}{{ config.site }}{% endif %}",
                "{{ record | length }}",
                "{{ other }}",
                "{{ record.a",
                "",
            ]),
            prop::option::of(arbitrary_json())
        )
            .prop_map(|(template, default)| FieldMapping::Template {
                template: template.to_owned(),
                default
            }),
        (
            arbitrary_path(),
            prop::option::of(arbitrary_path()),
            arbitrary_json(),
            arbitrary_json()
        )
            .prop_map(
                |(key, matches, present, absent)| FieldMapping::Related(Related {
                    stream: "other".into(),
                    key: RecordPath(key),
                    matches: matches.map(RecordPath),
                    filter: None,
                    present,
                    absent,
                })
            ),
    ]
}

fn arbitrary_spec() -> impl Strategy<Value = MappingSpec> {
    let model = prop::sample::select(UnifiedModel::ALL.to_vec());
    let field = prop_oneof![
        prop::sample::select(vec![
            "id",
            "name",
            "email",
            "status",
            "title",
            "tags",
            "member_count",
            "last_login",
            "source",
            "ciId",
            "url",
            "private",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z_]{1,8}",
    ];
    (
        model,
        prop::collection::btree_map(field, arbitrary_mapping(), 0..8),
    )
        .prop_map(|(model, fields)| MappingSpec { model, fields })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn apply_and_check_never_panic_and_agree(spec in arbitrary_spec(), record in arbitrary_json(), source in "[a-z]{0,8}") {
        let checked = unified::check(&spec);
        match unified::apply(&spec, &source, &record) {
            Ok(unified) => {
                prop_assert!(checked.is_ok());
                prop_assert_eq!(&unified["source"], &Value::from(source));
                prop_assert!(spec.model.validate(&unified).is_ok());
            }
            Err(error) => {
                if let Err(static_error) = checked {
                    prop_assert_eq!(error, static_error);
                }
            }
        }
    }

    #[test]
    fn a_good_mapping_yields_valid_records_or_record_errors(
        status in "[A-Z]{0,10}",
        names in (arbitrary_json(), arbitrary_json(), arbitrary_json()),
        login in arbitrary_json(),
        factors in arbitrary_json(),
    ) {
        let (first, last, email) = names;
        let record = json!({
            "id": "00u1", "status": status, "lastLogin": login, "_embedded": {"factors": factors},
            "profile": {"firstName": first, "lastName": last, "email": email},
        });
        match unified::apply(&spec(OKTA_USERS), "okta", &record) {
            Ok(identity) => prop_assert!(UnifiedModel::Identity.validate(&identity).is_ok()),
            Err(error) => {
                // The mapping passed `check`, so only record-dependent errors may appear.
                let record_error = matches!(
                    error,
                    MappingError::Missing { .. } | MappingError::Ambiguous { .. }
                        | MappingError::Coercion { .. } | MappingError::Invalid { .. }
                );
                prop_assert!(record_error, "{}", error);
            }
        }
    }

    #[test]
    fn arbitrary_path_strings_never_panic(path in arbitrary_path(), record in arbitrary_json()) {
        let spec = MappingSpec {
            model: UnifiedModel::Group,
            fields: BTreeMap::from([
                ("id".to_owned(), FieldMapping::Select(Select { coerce: Some(Coercion::String), ..Select::path(path.clone()) })),
                ("name".to_owned(), FieldMapping::Const(json!("n"))),
                ("description".to_owned(), FieldMapping::Join { paths: vec![RecordPath(path)], separator: ",".into(), default: None }),
            ]),
        };
        let _ = unified::check(&spec);
        let _ = unified::apply(&spec, "okta", &record);
    }
}
