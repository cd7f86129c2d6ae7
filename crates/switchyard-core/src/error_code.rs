//! Stable error codes. Clients match on `code`, so a code, once published, never changes meaning.
//!
//! Every code is declared once here with its HTTP status and a short title; `docs/errors.md`
//! lists the same table for users.

/// Declares [`ErrorCode`] and its lookup tables from one list, so a code cannot be added
/// without a status and a title.
macro_rules! error_codes {
    ($($variant:ident => ($code:literal, $status:literal, $title:literal),)+) => {
        /// A stable, machine-readable error code returned in every problem response.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $(
                #[doc = $title]
                $variant,
            )+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The snake_case string clients match on.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)+ }
            }

            /// The HTTP status this code is returned with.
            pub const fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)+ }
            }

            /// A short human summary of the problem type (RFC 9457 `title`).
            pub const fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title,)+ }
            }
        }
    };
}

error_codes! {
    // 400
    InvalidJson => ("invalid_json", 400, "The request body is not valid JSON"),
    InvalidBody => ("invalid_body", 400, "The request body does not match the expected shape"),
    InvalidQuery => ("invalid_query", 400, "The query string is invalid"),
    InvalidId => ("invalid_id", 400, "An identifier in the path is malformed"),
    InvalidCursor => ("invalid_cursor", 400, "The pagination cursor is invalid"),
    InvalidHeader => ("invalid_header", 400, "A request header is invalid"),
    ValidationFailed => ("validation_failed", 400, "A field has an invalid value"),
    // 401, 403
    Unauthenticated => ("unauthenticated", 401, "Missing or invalid credentials"),
    WebhookVerificationFailed => ("webhook_verification_failed", 401, "The webhook request could not be verified; `reason` says why"),
    OAuthStateInvalid => ("oauth_state_invalid", 400, "The OAuth `state` is unknown, used, expired or not this browser's; start the connection again"),
    ConnectSessionExpired => ("connect_session_expired", 410, "The connect session is expired or finished; ask for a new one"),
    InsufficientRole => ("insufficient_role", 403, "The API key's role does not allow this operation"),
    // 404, 405
    NotFound => ("not_found", 404, "The resource was not found"),
    RouteNotFound => ("route_not_found", 404, "No such route"),
    MethodNotAllowed => ("method_not_allowed", 405, "The method is not allowed on this route"),
    // 409, 413, 415, 422
    IdempotencyKeyInUse => ("idempotency_key_in_use", 409, "A request with this idempotency key is still in progress"),
    Conflict => ("conflict", 409, "The request conflicts with the current state of the resource"),
    PayloadTooLarge => ("payload_too_large", 413, "The request body is too large"),
    UnsupportedMediaType => ("unsupported_media_type", 415, "The request body must be application/json"),
    IdempotencyKeyReused => ("idempotency_key_reused", 422, "The idempotency key was already used with a different request"),
    UnsupportedOperation => ("unsupported_operation", 422, "The connector does not support this operation"),
    // 429
    RateLimited => ("rate_limited", 429, "The provider's rate budget has no room before the deadline"),
    // 5xx
    Internal => ("internal", 500, "Internal error"),
    ReauthorizationRequired => ("reauthorization_required", 409, "The provider refused the connection's refresh token; connect it again through a connect session"),
    ProviderError => ("provider_error", 502, "The provider answered with an error"),
    Unavailable => ("unavailable", 503, "A dependency is unavailable"),
    ProviderUnavailable => ("provider_unavailable", 503, "The provider is failing; calls to it are paused"),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_carry_error_statuses() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code} is not snake_case"
            );
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
    }

    /// docs/errors.md must list every code with its status.
    #[test]
    fn error_doc_lists_every_code() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md"))
                .expect("docs/errors.md");
        for code in ErrorCode::ALL {
            let row = format!("| `{code}` | {} |", code.http_status());
            assert!(doc.contains(&row), "docs/errors.md lacks the row {row}");
        }
    }
}
