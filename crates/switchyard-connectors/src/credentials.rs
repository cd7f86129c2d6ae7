//! What a connection's credential fields become on a request, by auth mode. The fields are
//! the JSON object stored in the vault for the connection (`{"token": …}`); they are read
//! here for one attempt and dropped with the request.

use reqwest::header::HeaderName;
use secrecy::SecretString;
use serde_json::{Map, Value};
use switchyard_http::Credential;

use crate::manifest::{ApiKeyLocation, AuthMode};

#[derive(Debug, thiserror::Error)]
pub enum CredentialFieldsError {
    /// Names the field, never its value.
    #[error("the credential has no text field `{0}`")]
    Missing(String),
    #[error("the credential has a field `{0}` the `{1}` mode does not use")]
    Unexpected(String, &'static str),
    #[error("`{0}` is not a valid header name")]
    HeaderName(String),
    /// The mode's tokens come from a flow this process does not run yet.
    #[error("auth mode `{0}` is declared but its token flow is not available")]
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
    // OAuth credentials may carry a refresh token and expiry besides the access token.
    let optional: &[&str] = match mode {
        AuthMode::OAuth2(_) => &["refresh_token", "expires_at", "token_type", "scope"],
        _ => &[],
    };
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

/// The credential to place on one request.
pub fn credential(
    mode: &AuthMode,
    fields: &Map<String, Value>,
) -> Result<Credential, CredentialFieldsError> {
    let field = |name: &str| -> Result<SecretString, CredentialFieldsError> {
        fields
            .get(name)
            .and_then(Value::as_str)
            .map(|text| SecretString::from(text.to_owned()))
            .ok_or_else(|| CredentialFieldsError::Missing(name.to_owned()))
    };
    Ok(match mode {
        AuthMode::Bearer => Credential::Bearer(field("token")?),
        AuthMode::OAuth2(_) => Credential::Bearer(field("access_token")?),
        AuthMode::Basic => Credential::Basic {
            username: fields
                .get("username")
                .and_then(Value::as_str)
                .ok_or_else(|| CredentialFieldsError::Missing("username".into()))?
                .to_owned(),
            password: field("password")?,
        },
        AuthMode::ApiKey {
            location: ApiKeyLocation::Header,
            name,
            prefix,
        } => Credential::Header {
            name: HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| CredentialFieldsError::HeaderName(name.clone()))?,
            prefix: prefix.clone(),
            value: field("api_key")?,
        },
        AuthMode::ApiKey {
            location: ApiKeyLocation::Query,
            name,
            prefix,
        } => {
            let key = field("api_key")?;
            let value = if prefix.is_empty() {
                key
            } else {
                use secrecy::ExposeSecret as _;
                SecretString::from(format!("{prefix}{}", key.expose_secret()))
            };
            Credential::Query {
                name: name.clone(),
                value,
            }
        }
        AuthMode::JwtBearer(_) | AuthMode::CustomHeaders { .. } => {
            return Err(CredentialFieldsError::NotExecutable(mode.kind()));
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn fields_must_match_the_mode() {
        assert!(check_fields(&AuthMode::Bearer, &fields(json!({"token": "t"}))).is_ok());
        assert!(matches!(
            check_fields(&AuthMode::Bearer, &fields(json!({}))),
            Err(CredentialFieldsError::Missing(f)) if f == "token"
        ));
        assert!(matches!(
            check_fields(&AuthMode::Bearer, &fields(json!({"token": "t", "extra": "x"}))),
            Err(CredentialFieldsError::Unexpected(f, "bearer")) if f == "extra"
        ));
        let error = check_fields(
            &AuthMode::Basic,
            &fields(json!({"username": "u", "password": 3})),
        )
        .unwrap_err();
        assert!(!error.to_string().contains('3'));
    }

    #[test]
    fn api_keys_go_where_the_mode_says() {
        let mode = AuthMode::ApiKey {
            location: ApiKeyLocation::Header,
            name: "Authorization".into(),
            prefix: "SSWS ".into(),
        };
        let credential = credential(&mode, &fields(json!({"api_key": "k"}))).unwrap();
        assert_eq!(format!("{credential:?}"), "Credential(header)");
    }
}
