//! Error responses in the dialect of the provider a route imitates, so a manifest's error
//! handling is tested against the bodies it will meet.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// Whose error body a route sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// GitHub's REST: `{"message":…,"code":…}` (GitHub sends only the message; the code is
    /// ours, so a manifest can match on something stable).
    Rest,
    /// Slack's Web API: `{"ok":false,"error":"invalid_cursor"}`.
    Slack,
    /// Microsoft Graph: `{"error":{"code":"resyncRequired","message":…}}`.
    Graph,
    /// GitHub's GraphQL API: `{"errors":[{"type":"INVALID_CURSOR_ARGUMENTS","message":…}]}`.
    GraphQl,
}

impl Dialect {
    /// The dialect of the route a path belongs to, for responses made before any route runs
    /// (authentication, rate limit).
    pub(crate) fn of_path(path: &str) -> Self {
        if path.starts_with("/cursor/") {
            Self::Slack
        } else if path.starts_with("/delta/") {
            Self::Graph
        } else if path == "/graphql" {
            Self::GraphQl
        } else {
            Self::Rest
        }
    }
}

/// Everything a stand-in route can refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    MissingCredentials,
    BadCredentials,
    RateLimited,
    /// A query parameter or GraphQL variable out of range or of the wrong form.
    InvalidParameter {
        name: &'static str,
        reason: String,
    },
    InvalidCursor,
    /// A delta token that is unknown or expired: the client must start a full round.
    ResyncRequired,
    InvalidJson,
    /// A GraphQL document that does not ask for `items`.
    UnknownQuery,
    MissingField(&'static str),
    ReadOnly,
    NotFound,
}

impl Problem {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::BadCredentials => StatusCode::UNAUTHORIZED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidParameter { .. }
            | Self::InvalidCursor
            | Self::InvalidJson
            | Self::UnknownQuery => StatusCode::BAD_REQUEST,
            Self::ResyncRequired => StatusCode::GONE,
            Self::MissingField(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ReadOnly => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::MissingCredentials => "Requires authentication".into(),
            Self::BadCredentials => "Bad credentials".into(),
            Self::RateLimited => "API rate limit exceeded".into(),
            Self::InvalidParameter { name, reason } => format!("invalid `{name}`: {reason}"),
            Self::InvalidCursor => "the cursor is not one this server issued".into(),
            Self::ResyncRequired => {
                "Resync required. Replace any local cached copies with a full delta round.".into()
            }
            Self::InvalidJson => "Problems parsing JSON".into(),
            Self::UnknownQuery => "the query must select `items`".into(),
            Self::MissingField(_) => "Validation Failed".into(),
            Self::ReadOnly => "the data set is generated and read-only".into(),
            Self::NotFound => "Not Found".into(),
        }
    }

    /// The error code in `dialect`: each provider's own where it has one.
    fn code(&self, dialect: Dialect) -> &'static str {
        use Dialect::{Graph, GraphQl, Rest, Slack};
        match (self, dialect) {
            (Self::MissingCredentials, Slack) => "not_authed",
            (Self::BadCredentials, Slack) => "invalid_auth",
            (Self::MissingCredentials | Self::BadCredentials, Graph) => {
                "InvalidAuthenticationToken"
            }
            (Self::MissingCredentials | Self::BadCredentials, GraphQl) => "UNAUTHENTICATED",
            (Self::MissingCredentials | Self::BadCredentials, Rest) => "unauthorized",
            (Self::RateLimited, Slack) => "ratelimited",
            (Self::RateLimited, Graph) => "TooManyRequests",
            (Self::RateLimited, GraphQl) => "RATE_LIMITED",
            (Self::RateLimited, Rest) => "rate_limited",
            (Self::InvalidParameter { .. }, Slack) => "invalid_arguments",
            (Self::InvalidParameter { .. } | Self::InvalidCursor | Self::InvalidJson, Graph) => {
                "BadRequest"
            }
            (Self::InvalidParameter { .. }, GraphQl) => "INVALID_ARGUMENT",
            (Self::InvalidParameter { .. }, Rest) => "invalid_parameter",
            (Self::InvalidCursor, GraphQl) => "INVALID_CURSOR_ARGUMENTS",
            (Self::InvalidCursor, Rest | Slack) => "invalid_cursor",
            (Self::ResyncRequired, Graph) => "resyncRequired",
            (Self::ResyncRequired, _) => "resync_required",
            (Self::InvalidJson, GraphQl) => "PARSE_ERROR",
            (Self::InvalidJson, Rest | Slack) => "invalid_json",
            (Self::UnknownQuery, _) => "UNKNOWN_QUERY",
            (Self::MissingField(_), _) => "missing_field",
            (Self::ReadOnly, _) => "read_only",
            (Self::NotFound, Graph) => "ResourceNotFound",
            (Self::NotFound, _) => "not_found",
        }
    }

    pub(crate) fn body(&self, dialect: Dialect) -> Value {
        let code = self.code(dialect);
        let message = self.message();
        match dialect {
            Dialect::Rest => match self {
                // GitHub's validation failure lists the fields at fault.
                Self::MissingField(field) => json!({
                    "message": message,
                    "code": code,
                    "errors": [{ "resource": "Item", "field": field, "code": code }],
                }),
                _ => json!({ "message": message, "code": code }),
            },
            Dialect::Slack => json!({ "ok": false, "error": code }),
            Dialect::Graph => json!({ "error": { "code": code, "message": message } }),
            Dialect::GraphQl => json!({ "errors": [{ "type": code, "message": message }] }),
        }
    }

    pub(crate) fn response(&self, dialect: Dialect) -> Response {
        (self.status(), Json(self.body(dialect))).into_response()
    }
}

/// A route's result: its response, or the problem in the route's dialect.
pub(crate) fn respond(dialect: Dialect, result: Result<Response, Problem>) -> Response {
    result.unwrap_or_else(|problem| problem.response(dialect))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_has_its_own_shape() {
        let problem = Problem::InvalidCursor;
        assert_eq!(
            problem.body(Dialect::Slack),
            json!({"ok": false, "error": "invalid_cursor"})
        );
        assert_eq!(
            Problem::ResyncRequired.body(Dialect::Graph)["error"]["code"],
            "resyncRequired"
        );
        assert_eq!(
            problem.body(Dialect::GraphQl)["errors"][0]["type"],
            "INVALID_CURSOR_ARGUMENTS"
        );
        assert_eq!(Dialect::of_path("/delta/items"), Dialect::Graph);
    }
}
