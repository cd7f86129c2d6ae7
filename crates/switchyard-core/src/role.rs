//! Roles of tenant API keys.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a tenant API key may do. Roles are ordered: `admin` can do all a `write` key can,
/// which can do all a `read` key can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads resources.
    Read,
    /// Reads, creates and changes resources.
    Write,
    /// Everything, including managing the tenant's API keys.
    Admin,
}

impl Role {
    /// Whether a key with this role may perform an operation that needs `required`.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }

    /// The lowercase name stored in the database and shown in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not `read`, `write` or `admin`.
#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}`: expected `read`, `write` or `admin`")]
pub struct UnknownRole(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_roles_include_lower_ones() {
        assert!(Role::Admin.allows(Role::Write));
        assert!(Role::Write.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Write));
        assert!(!Role::Write.allows(Role::Admin));
    }

    #[test]
    fn parses_only_known_names() {
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("Admin".parse::<Role>().is_err());
    }
}
