//! What the connect page shows for each provider a session allows, built from the connector
//! manifest: an OAuth button when the provider has an authorization-code mode and the tenant
//! registered a client for it, otherwise a form from the connector's config schema and the
//! first auth mode a person can type in (API key, token, basic, custom headers).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use switchyard_connectors::manifest::AuthMode;
use switchyard_connectors::store::ConnectSession;

use super::connect::{ConnectFlows, FormRejection};
use crate::connect::page::{
    ChoiceMethod, ConnectPage, FieldKind, FormField, FormModel, ProviderChoice, connect_page,
};
use crate::connectors::ConnectorService;

/// The auth mode a form can collect for `provider`, if any.
pub fn form_mode(connectors: &ConnectorService, provider: &str) -> Option<AuthMode> {
    let manifest = connectors.catalogue.registry().manifest(provider)?;
    manifest
        .auth
        .iter()
        .find(|mode| {
            matches!(
                mode,
                AuthMode::ApiKey { .. }
                    | AuthMode::Bearer
                    | AuthMode::Basic
                    | AuthMode::CustomHeaders { .. }
            )
        })
        .cloned()
}

/// Form values as the config schema types them (numbers and booleans arrive as text).
pub fn typed_config(
    connectors: &ConnectorService,
    provider: &str,
    config: Map<String, Value>,
) -> Value {
    let schema = connectors
        .catalogue
        .registry()
        .manifest(provider)
        .map(|m| m.config.clone())
        .unwrap_or(Value::Null);
    let typed = config
        .into_iter()
        .map(|(key, value)| {
            let kind = schema
                .pointer(&format!("/properties/{key}/type"))
                .and_then(Value::as_str);
            let typed = match (kind, value.as_str()) {
                (Some("integer"), Some(text)) => {
                    text.parse::<i64>().map(Value::from).unwrap_or(value)
                }
                (Some("number"), Some(text)) => {
                    text.parse::<f64>().map(Value::from).unwrap_or(value)
                }
                (Some("boolean"), Some(text)) => match text {
                    "true" | "on" | "yes" => Value::Bool(true),
                    "false" | "off" | "no" => Value::Bool(false),
                    _ => value,
                },
                _ => value,
            };
            (key, typed)
        })
        .collect();
    Value::Object(typed)
}

/// One input, owned (the page borrows from these).
struct FieldSpec {
    name: String,
    label: String,
    help: Option<String>,
    secret: bool,
    required: bool,
    kind: FieldKind,
}

fn credential_label(field: &str) -> String {
    match field {
        "api_key" => "API key".to_owned(),
        "token" => "API token".to_owned(),
        other => {
            let words = other.replace('_', " ");
            let mut chars = words.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default()
        }
    }
}

fn form_fields(
    connectors: &ConnectorService,
    provider: &str,
    mode: &AuthMode,
    preset: &Map<String, Value>,
) -> Vec<FieldSpec> {
    let mut fields = Vec::new();
    if let Some(manifest) = connectors.catalogue.registry().manifest(provider) {
        let required: BTreeSet<&str> = manifest
            .config
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(properties) = manifest.config.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                // The tenant set it for this session: not the user's to change.
                if preset.contains_key(name) {
                    continue;
                }
                let text = |key: &str| property.get(key).and_then(Value::as_str);
                let kind = match (text("type"), text("format")) {
                    (Some("integer" | "number"), _) => FieldKind::Number,
                    (_, Some("uri" | "url")) => FieldKind::Url,
                    (_, Some("email")) => FieldKind::Email,
                    _ => FieldKind::Text,
                };
                fields.push(FieldSpec {
                    name: format!("config.{name}"),
                    label: text("title").map_or_else(|| credential_label(name), str::to_owned),
                    help: text("description").map(str::to_owned),
                    secret: false,
                    required: required.contains(name.as_str()),
                    kind,
                });
            }
        }
    }
    for field in mode.credential_fields() {
        let secret = !matches!(field.as_str(), "username" | "email" | "client_id");
        fields.push(FieldSpec {
            label: credential_label(&field),
            name: format!("credentials.{field}"),
            help: None,
            secret,
            required: true,
            kind: if field == "email" {
                FieldKind::Email
            } else {
                FieldKind::Text
            },
        });
    }
    fields
}

/// A provider's entry on the page, owned.
struct Choice {
    id: String,
    name: String,
    description: Option<String>,
    start_url: Option<String>,
    action_url: String,
    fields: Vec<FieldSpec>,
}

/// After a failed form submission: which provider's form, its errors and what was typed.
pub struct Resubmission<'a> {
    pub provider: &'a str,
    pub rejection: &'a FormRejection,
    pub values: &'a BTreeMap<String, String>,
}

/// Renders the connect page of `session`. `oauth_ready` names the providers the tenant
/// registered an OAuth client for.
pub fn render(
    connectors: &ConnectorService,
    flows: &ConnectFlows,
    session: &ConnectSession,
    token: &str,
    oauth_ready: &BTreeSet<String>,
    intro: Option<&str>,
    resubmission: Option<Resubmission<'_>>,
) -> String {
    let base = flows.connect_url(token);
    let mut choices = Vec::new();
    for provider in &session.allowed_providers {
        let Some(manifest) = connectors.catalogue.registry().manifest(provider) else {
            continue;
        };
        let preset = ConnectFlows::session_config(session, provider);
        let oauth = oauth_ready.contains(provider) && flows.clients.code_flow(provider).is_ok();
        let fields = match (oauth, form_mode(connectors, provider)) {
            (true, _) => Vec::new(),
            (false, Some(mode)) => form_fields(connectors, provider, &mode, &preset),
            // Neither: nothing the user can do here for this provider.
            (false, None) => continue,
        };
        choices.push(Choice {
            id: provider.clone(),
            name: manifest.name.clone(),
            description: None,
            start_url: oauth.then(|| format!("{base}/oauth/{provider}")),
            action_url: format!("{base}/credentials/{provider}"),
            fields,
        });
    }
    let empty = BTreeMap::new();
    let providers = choices
        .iter()
        .map(|choice| {
            let method = match &choice.start_url {
                Some(url) => ChoiceMethod::OAuth { start_url: url },
                None => {
                    let again = resubmission.as_ref().filter(|r| r.provider == choice.id);
                    ChoiceMethod::Form(FormModel {
                        action_url: &choice.action_url,
                        fields: choice
                            .fields
                            .iter()
                            .map(|f| FormField {
                                name: &f.name,
                                label: &f.label,
                                help: f.help.as_deref(),
                                secret: f.secret,
                                required: f.required,
                                kind: f.kind,
                            })
                            .collect(),
                        form_error: again.and_then(|r| r.rejection.form_error.as_deref()),
                        field_errors: again
                            .map(|r| r.rejection.field_errors.clone())
                            .unwrap_or_default(),
                        values: again.map_or_else(|| empty.clone(), |r| r.values.clone()),
                        expanded: again.is_some(),
                    })
                }
            };
            ProviderChoice {
                id: &choice.id,
                display_name: &choice.name,
                description: choice.description.as_deref(),
                method,
            }
        })
        .collect();
    let expires = session
        .expires_at
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .ok();
    connect_page(&ConnectPage {
        title: "Connect your account",
        intro,
        providers,
        expires_at: expires.as_deref(),
    })
}
