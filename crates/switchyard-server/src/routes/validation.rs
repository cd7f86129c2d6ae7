//! Field checks shared by request bodies, each returning `validation_failed` with the field.

use switchyard_core::ErrorCode;

use crate::error::ApiError;

const MAX_NAME_CHARS: usize = 200;
const MAX_LABEL_LEN: usize = 32;

/// A human name: trimmed, 1 to 200 characters, no control characters.
pub(crate) fn name(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "must not contain control characters".to_owned(),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A short machine label such as `live` or `sandbox`: lowercase letters, digits, `-`, `_`.
pub(crate) fn label(field: &str, value: &str) -> Result<String, ApiError> {
    let valid = !value.is_empty()
        && value.len() <= MAX_LABEL_LEN
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            field,
            format!(
                "must be 1 to {MAX_LABEL_LEN} of a-z, 0-9, `-` and `_`, starting with a letter or digit"
            ),
        ))
    }
}

fn invalid(field: &str, reason: String) -> ApiError {
    ApiError::new(ErrorCode::ValidationFailed).with_detail(format!("`{field}` {reason}"))
}
