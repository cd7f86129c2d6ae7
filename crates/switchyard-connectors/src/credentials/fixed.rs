//! Modes whose credential is the stored value itself: placed as they are, per attempt.

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value, json};
use switchyard_http::{AwsSigV4, Credential};

use super::TokenError;
use super::fields::{CredentialFieldsError, secret, text};
use crate::manifest::{ApiKeyLocation, AuthMode, AwsSigV4Spec, OAuthGrant};
use crate::template;

/// The credential to place on one request, for a mode that mints nothing. `config` is the
/// connection's, read by `custom_headers` templates.
pub fn credential(
    mode: &AuthMode,
    fields: &Map<String, Value>,
    config: &Value,
) -> Result<Credential, TokenError> {
    Ok(match mode {
        AuthMode::Bearer => Credential::Bearer(secret(fields, "token")?),
        AuthMode::OAuth2(spec) if spec.grant == OAuthGrant::AuthorizationCode => {
            Credential::Bearer(secret(fields, "access_token")?)
        }
        AuthMode::Basic => Credential::Basic {
            username: text(fields, "username")?.to_owned(),
            password: secret(fields, "password")?,
        },
        AuthMode::ApiKey {
            location: ApiKeyLocation::Header,
            name,
            prefix,
        } => Credential::Header {
            name: HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| CredentialFieldsError::HeaderName(name.clone()))?,
            prefix: prefix.clone(),
            value: secret(fields, "api_key")?,
        },
        AuthMode::ApiKey {
            location: ApiKeyLocation::Query,
            name,
            prefix,
        } => {
            let key = secret(fields, "api_key")?;
            let value = if prefix.is_empty() {
                key
            } else {
                SecretString::from(format!("{prefix}{}", key.expose_secret()))
            };
            Credential::Query {
                name: name.clone(),
                value,
            }
        }
        AuthMode::CustomHeaders { headers } => custom_headers(headers, fields, config)?,
        AuthMode::AwsSigV4(spec) => aws_sigv4(spec, fields, config)?,
        AuthMode::OAuth2(_) | AuthMode::JwtBearer(_) => {
            return Err(CredentialFieldsError::NotExecutable(mode.kind()).into());
        }
    })
}

/// Each header's template rendered over `secrets` (the credential fields) and `config`.
/// A template error names the template, which holds no secret; the rendered value is only
/// ever a secret.
fn custom_headers(
    headers: &std::collections::BTreeMap<String, String>,
    fields: &Map<String, Value>,
    config: &Value,
) -> Result<Credential, TokenError> {
    let context = json!({"secrets": fields, "config": config});
    let mut placed = Vec::with_capacity(headers.len());
    for (name, template_text) in headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| CredentialFieldsError::HeaderName(name.clone()))?;
        let value = SecretString::from(template::render(template_text, &context)?);
        if HeaderValue::from_str(value.expose_secret()).is_err() {
            return Err(CredentialFieldsError::HeaderValue(name.clone()).into());
        }
        placed.push((header, value));
    }
    Ok(Credential::Headers(placed))
}

/// The connection's access keys, and the scope its requests are signed for: the mode's
/// service, and its region template rendered over the connection's config.
fn aws_sigv4(
    spec: &AwsSigV4Spec,
    fields: &Map<String, Value>,
    config: &Value,
) -> Result<Credential, TokenError> {
    let region = template::render(&spec.region, &json!({"config": config}))?;
    let region = region.trim();
    let is_region = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !is_region {
        return Err(CredentialFieldsError::Region(region.to_owned()).into());
    }
    let session_token = match fields.get("session_token") {
        Some(Value::String(token)) if !token.is_empty() => Some(secret(fields, "session_token")?),
        _ => None,
    };
    Ok(Credential::AwsSigV4(AwsSigV4 {
        access_key_id: text(fields, "access_key_id")?.to_owned(),
        secret_access_key: secret(fields, "secret_access_key")?,
        session_token,
        region: region.to_owned(),
        service: spec.service.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn api_keys_go_where_the_mode_says() {
        let mode = AuthMode::ApiKey {
            location: ApiKeyLocation::Header,
            name: "Authorization".into(),
            prefix: "SSWS ".into(),
        };
        let credential = credential(&mode, &fields(json!({"api_key": "k"})), &json!({})).unwrap();
        assert_eq!(format!("{credential:?}"), "Credential(header)");
    }

    #[test]
    fn aws_sigv4_signs_for_the_mode_s_service_and_the_config_s_region() {
        let mode = AuthMode::AwsSigV4(AwsSigV4Spec {
            service: "iam".into(),
            region: "{{ config.region | default('us-east-1') }}".into(),
        });
        let keys = fields(json!({"access_key_id": "AKID", "secret_access_key": "s3cr3t"}));
        let signer =
            |config: Value, keys: &Map<String, Value>| match credential(&mode, keys, &config) {
                Ok(Credential::AwsSigV4(signer)) => Ok(signer),
                Ok(other) => panic!("placed as {other:?}"),
                Err(error) => Err(error),
            };
        let signer_default = signer(json!({}), &keys).unwrap();
        assert_eq!(
            (
                signer_default.region.as_str(),
                signer_default.service.as_str()
            ),
            ("us-east-1", "iam")
        );
        assert!(signer_default.session_token.is_none());
        let with_token = fields(
            json!({"access_key_id": "AKID", "secret_access_key": "s3cr3t", "session_token": "tok"}),
        );
        let regional = signer(json!({"region": "eu-west-1"}), &with_token).unwrap();
        assert_eq!(regional.region, "eu-west-1");
        assert_eq!(
            regional.session_token.as_ref().map(|t| t.expose_secret()),
            Some("tok")
        );
        // A region that is not one is refused by name; the keys stay out of the error.
        let error = signer(json!({"region": "EU West"}), &keys).unwrap_err();
        assert!(error.to_string().contains("EU West"), "{error}");
        assert!(!error.to_string().contains("s3cr3t"));
        let missing = signer(json!({}), &fields(json!({"access_key_id": "AKID"}))).unwrap_err();
        assert!(
            missing.to_string().contains("secret_access_key"),
            "{missing}"
        );
    }

    #[test]
    fn custom_headers_render_secrets_and_config() {
        let mode = AuthMode::CustomHeaders {
            headers: BTreeMap::from([
                ("X-Api-Key".into(), "{{ secrets.key }}".into()),
                (
                    "X-Tenant".into(),
                    "{{ config.tenant }}:{{ secrets.account }}".into(),
                ),
            ]),
        };
        let stored = fields(json!({"key": "k-123", "account": "acc"}));
        let Credential::Headers(placed) =
            credential(&mode, &stored, &json!({"tenant": "acme"})).unwrap()
        else {
            panic!("custom headers are placed as headers");
        };
        let placed: Vec<(String, String)> = placed
            .iter()
            .map(|(name, value)| (name.to_string(), value.expose_secret().to_owned()))
            .collect();
        assert_eq!(
            placed,
            [
                ("x-api-key".to_owned(), "k-123".to_owned()),
                ("x-tenant".to_owned(), "acme:acc".to_owned())
            ]
        );
        // A missing field is an error naming the template, never a value.
        let error = credential(
            &mode,
            &fields(json!({"key": "k-123"})),
            &json!({"tenant": "a"}),
        )
        .unwrap_err();
        assert!(error.to_string().contains("secrets.account"), "{error}");
        assert!(!error.to_string().contains("k-123"));
        // A value that cannot be a header is refused without being shown.
        let error = credential(
            &mode,
            &fields(json!({"key": "line\nbreak", "account": "a"})),
            &json!({"tenant": "a"}),
        )
        .unwrap_err();
        assert!(!error.to_string().contains("line"), "{error}");
    }
}
