//! Which credential fields a mode takes, checked before they go to the vault.

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::manifest::AuthMode;

#[derive(Debug, thiserror::Error)]
pub enum CredentialFieldsError {
    /// Names the field, never its value.
    #[error("the credential has no text field `{0}`")]
    Missing(String),
    #[error("the credential has a field `{0}` the `{1}` mode does not use")]
    Unexpected(String, &'static str),
    #[error("`{0}` is not a valid header name")]
    HeaderName(String),
    /// The value a template made for header `{0}` cannot be sent in a header.
    #[error("the value of header `{0}` cannot be sent in a header")]
    HeaderValue(String),
    /// What an `aws_sigv4` mode's region template made (from the config, never a secret).
    #[error("the signing region `{0}` is not a region (lowercase letters, digits and `-`)")]
    Region(String),
    /// The mode's tokens come from a flow this placement does not run (a token broker does).
    #[error("auth mode `{0}` mints its tokens: place it through a token broker")]
    NotExecutable(&'static str),
}

/// Checks that `fields` are exactly what `mode` takes, before they go to the vault.
pub fn check_fields(
    mode: &AuthMode,
    fields: &Map<String, Value>,
) -> Result<(), CredentialFieldsError> {
    let wanted = mode.credential_fields();
    for name in &wanted {
        match fields.get(name) {
            Some(Value::String(text)) if !text.is_empty() => {}
            _ => return Err(CredentialFieldsError::Missing(name.clone())),
        }
    }
    let optional = mode.optional_credential_fields();
    if let Some(extra) = fields
        .keys()
        .find(|k| !wanted.contains(k) && !optional.contains(&k.as_str()))
    {
        return Err(CredentialFieldsError::Unexpected(
            extra.clone(),
            mode.kind(),
        ));
    }
    Ok(())
}

/// A text field as a secret.
pub(super) fn secret(
    fields: &Map<String, Value>,
    name: &str,
) -> Result<SecretString, CredentialFieldsError> {
    text(fields, name).map(|text| SecretString::from(text.to_owned()))
}

/// A text field (for fields that are not secrets: a client id, a key id).
pub(super) fn text<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, CredentialFieldsError> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| CredentialFieldsError::Missing(name.to_owned()))
}
