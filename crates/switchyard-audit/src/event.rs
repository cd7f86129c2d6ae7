//! What an audit entry says: who did what to which target, with what outcome.
//!
//! [`AuditEntry`] is what a caller records; [`AuditEvent`] is the stored entry with its place
//! in the chain (sequence number, previous hash, own hash). Free-text fields are validated when
//! recorded, so the writer never meets an entry the database would refuse.

use std::{
    borrow::Cow,
    fmt,
    str::FromStr,
    sync::{Mutex, PoisonError},
};

use serde::{Serialize, Serializer};
use switchyard_core::{ApiKeyId, TenantId};
use time::OffsetDateTime;
use ulid::{Generator, Ulid};

use crate::AuditError;

/// Which hash chain an entry belongs to.
///
/// Every tenant has its own chain, so one tenant's log can be verified, exported or (one day)
/// archived without touching another's. Events that concern no tenant (platform settings, KEK
/// rotation…) go to the single platform chain. Stored as `chain_id`: the tenant id (`ten_…`)
/// or the literal `platform`, which no tenant id can equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Chain {
    Tenant(TenantId),
    Platform,
}

impl Chain {
    /// The `chain_id` of the platform chain.
    pub const PLATFORM_KEY: &'static str = "platform";

    /// The value stored in `chain_id`.
    pub fn key(&self) -> String {
        match self {
            Chain::Tenant(tenant) => tenant.to_string(),
            Chain::Platform => Self::PLATFORM_KEY.to_owned(),
        }
    }

    /// The tenant, for a tenant chain.
    pub fn tenant_id(&self) -> Option<TenantId> {
        match self {
            Chain::Tenant(tenant) => Some(*tenant),
            Chain::Platform => None,
        }
    }
}

impl From<TenantId> for Chain {
    fn from(tenant: TenantId) -> Self {
        Chain::Tenant(tenant)
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chain::Tenant(tenant) => fmt::Display::fmt(tenant, f),
            Chain::Platform => f.write_str(Self::PLATFORM_KEY),
        }
    }
}

impl FromStr for Chain {
    type Err = AuditError;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        if key == Self::PLATFORM_KEY {
            return Ok(Chain::Platform);
        }
        key.parse()
            .map(Chain::Tenant)
            .map_err(|e| AuditError::corrupt(format!("chain id `{key}`: {e}")))
    }
}

impl Serialize for Chain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Identifies one audit entry: `aud_` and a ULID, like the ids in `switchyard-core` (kept here
/// because no other crate needs it).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuditEventId(Ulid);

/// One generator per process, so ids made in the same millisecond still sort in order.
static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

impl AuditEventId {
    pub const PREFIX: &'static str = "aud";

    pub fn generate() -> Self {
        let mut generator = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
        // Overflow needs 2^80 ids in one millisecond; a random id is still unique.
        Self(generator.generate().unwrap_or_else(|_| Ulid::new()))
    }
}

impl fmt::Display for AuditEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", Self::PREFIX, self.0)
    }
}

impl fmt::Debug for AuditEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for AuditEventId {
    type Err = AuditError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let ulid = value
            .strip_prefix("aud_")
            .filter(|ulid| ulid.len() == 26 && !ulid.bytes().any(|b| b.is_ascii_lowercase()))
            .ok_or_else(|| AuditError::corrupt(format!("audit event id `{value}`")))?;
        Ulid::from_string(ulid)
            .map(Self)
            .map_err(|_| AuditError::corrupt(format!("audit event id `{value}`")))
    }
}

impl Serialize for AuditEventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A tenant API key (the key's id, never the key).
    ApiKey { key_id: ApiKeyId },
    /// The holder of the platform admin token.
    PlatformAdmin,
    /// Switchyard itself: a component such as `scheduler` or `vault.rotation`, optionally with
    /// the run it acted for. Component: 1–64 of `a-z 0-9 _ . -`; run id: 1–128 visible ASCII.
    Internal {
        component: String,
        run_id: Option<String>,
    },
}

impl Actor {
    /// `(actor_kind, actor_id, actor_run_id)` as stored.
    pub fn columns(&self) -> (&'static str, Option<String>, Option<String>) {
        match self {
            Actor::ApiKey { key_id } => ("api_key", Some(key_id.to_string()), None),
            Actor::PlatformAdmin => ("platform_admin", None, None),
            Actor::Internal { component, run_id } => {
                ("internal", Some(component.clone()), run_id.clone())
            }
        }
    }

    pub(crate) fn from_columns(
        kind: &str,
        id: Option<String>,
        run_id: Option<String>,
    ) -> Result<Self, AuditError> {
        match (kind, id, run_id) {
            ("api_key", Some(id), None) => Ok(Actor::ApiKey {
                key_id: id.parse().map_err(AuditError::corrupt)?,
            }),
            ("platform_admin", None, None) => Ok(Actor::PlatformAdmin),
            ("internal", Some(component), run_id) => Ok(Actor::Internal { component, run_id }),
            (kind, _, _) => Err(AuditError::corrupt(format!(
                "actor of kind `{kind}` with unexpected columns"
            ))),
        }
    }

    fn validate(&self) -> Result<(), AuditError> {
        if let Actor::Internal { component, run_id } = self {
            if !is_code(component) {
                return Err(AuditError::invalid(
                    "actor.component",
                    "must be 1-64 characters of a-z, 0-9, `_`, `.`, `-`",
                ));
            }
            if run_id.as_deref().is_some_and(|id| !is_token(id)) {
                return Err(AuditError::invalid(
                    "actor.run_id",
                    "must be 1-128 visible ASCII characters",
                ));
            }
        }
        Ok(())
    }
}

/// What was done, as `noun.verb` (`secret.resolve`).
///
/// A validated string rather than a closed enum, so a new subsystem can audit its own actions
/// without a change here: lowercase ASCII segments (`a-z`, `0-9`, `_`, starting with a letter)
/// joined by dots, at least two segments, at most 64 bytes. The actions Switchyard uses today
/// are the associated constants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Action(Cow<'static, str>);

impl Action {
    pub const SECRET_RESOLVE: Action = Action::known("secret.resolve");
    pub const SECRET_PUT: Action = Action::known("secret.put");
    pub const SECRET_ROTATE: Action = Action::known("secret.rotate");
    pub const SECRET_CONFIRM: Action = Action::known("secret.confirm");
    pub const SECRET_DESTROY: Action = Action::known("secret.destroy");
    pub const DEK_ROTATE: Action = Action::known("dek.rotate");
    pub const KEK_ROTATE: Action = Action::known("kek.rotate");
    pub const TENANT_CREATE: Action = Action::known("tenant.create");
    pub const TENANT_DELETE: Action = Action::known("tenant.delete");
    /// The tenant's data keys destroyed (crypto-shredding), the first step of deleting it.
    pub const TENANT_SHRED: Action = Action::known("tenant.shred");
    pub const API_KEY_CREATE: Action = Action::known("api_key.create");
    pub const API_KEY_REVOKE: Action = Action::known("api_key.revoke");
    pub const SOURCE_CREATE: Action = Action::known("source.create");
    pub const SOURCE_UPDATE: Action = Action::known("source.update");
    pub const SOURCE_DELETE: Action = Action::known("source.delete");
    pub const SOURCE_ROTATE_SECRET: Action = Action::known("source.rotate_secret");
    /// A person read an inbound event's decrypted raw payload.
    pub const INBOUND_PAYLOAD_READ: Action = Action::known("inbound_event.payload_read");
    pub const INBOUND_REPLAY: Action = Action::known("inbound_event.replay");
    pub const ENDPOINT_CREATE: Action = Action::known("endpoint.create");
    pub const ENDPOINT_UPDATE: Action = Action::known("endpoint.update");
    pub const ENDPOINT_DELETE: Action = Action::known("endpoint.delete");
    /// A person read an endpoint's signing secret.
    pub const ENDPOINT_SECRET_READ: Action = Action::known("endpoint.secret_read");
    pub const ENDPOINT_ROTATE_SECRET: Action = Action::known("endpoint.rotate_secret");
    pub const ENDPOINT_REPLAY: Action = Action::known("endpoint.replay");
    pub const DELIVERY_RETRY: Action = Action::known("delivery.retry");
    /// A person read an outbound event's decrypted payload.
    pub const EVENT_PAYLOAD_READ: Action = Action::known("event.payload_read");
    pub const CONNECTION_CREATE: Action = Action::known("connection.create");
    pub const CONNECTION_UPDATE: Action = Action::known("connection.update");
    pub const CONNECTION_DELETE: Action = Action::known("connection.delete");
    pub const CONNECTION_ROTATE_CREDENTIALS: Action =
        Action::known("connection.rotate_credentials");
    /// An action run through a connection (it writes to the provider).
    pub const CONNECTION_ACTION: Action = Action::known("connection.action");
    /// An end user connected (or repaired) a connection through a connect session.
    pub const CONNECTION_CONNECT: Action = Action::known("connection.connect");
    /// The provider refused the connection's refresh token: a person must authorize again.
    pub const CONNECTION_REAUTHORIZATION_REQUIRED: Action =
        Action::known("connection.reauthorization_required");
    pub const OAUTH_CLIENT_CREATE: Action = Action::known("oauth_client.create");
    pub const OAUTH_CLIENT_UPDATE: Action = Action::known("oauth_client.update");
    pub const OAUTH_CLIENT_DELETE: Action = Action::known("oauth_client.delete");
    pub const CONNECT_SESSION_CREATE: Action = Action::known("connect_session.create");
    /// A connection's OAuth access token refreshed (or the attempt, with its failure reason).
    pub const OAUTH_TOKEN_REFRESH: Action = Action::known("oauth_token.refresh");
    /// A person read a provider call capture (redacted, but it may hold personal data).
    pub const PROVIDER_CAPTURE_READ: Action = Action::known("provider_capture.read");

    /// Every action named by a constant above.
    pub const KNOWN: &'static [Action] = &[
        Self::SECRET_RESOLVE,
        Self::SECRET_PUT,
        Self::SECRET_ROTATE,
        Self::SECRET_CONFIRM,
        Self::SECRET_DESTROY,
        Self::DEK_ROTATE,
        Self::KEK_ROTATE,
        Self::TENANT_CREATE,
        Self::TENANT_DELETE,
        Self::TENANT_SHRED,
        Self::API_KEY_CREATE,
        Self::API_KEY_REVOKE,
        Self::SOURCE_CREATE,
        Self::SOURCE_UPDATE,
        Self::SOURCE_DELETE,
        Self::SOURCE_ROTATE_SECRET,
        Self::ENDPOINT_CREATE,
        Self::ENDPOINT_UPDATE,
        Self::ENDPOINT_DELETE,
        Self::ENDPOINT_SECRET_READ,
        Self::ENDPOINT_ROTATE_SECRET,
        Self::ENDPOINT_REPLAY,
        Self::DELIVERY_RETRY,
        Self::EVENT_PAYLOAD_READ,
        Self::INBOUND_PAYLOAD_READ,
        Self::INBOUND_REPLAY,
        Self::CONNECTION_CREATE,
        Self::CONNECTION_UPDATE,
        Self::CONNECTION_DELETE,
        Self::CONNECTION_ROTATE_CREDENTIALS,
        Self::CONNECTION_ACTION,
        Self::CONNECTION_CONNECT,
        Self::CONNECTION_REAUTHORIZATION_REQUIRED,
        Self::OAUTH_CLIENT_CREATE,
        Self::OAUTH_CLIENT_UPDATE,
        Self::OAUTH_CLIENT_DELETE,
        Self::CONNECT_SESSION_CREATE,
        Self::OAUTH_TOKEN_REFRESH,
        Self::PROVIDER_CAPTURE_READ,
    ];

    /// For the constants; a unit test checks they are all valid.
    const fn known(value: &'static str) -> Self {
        Action(Cow::Borrowed(value))
    }

    /// Validates `value` as an action name.
    ///
    /// # Errors
    /// [`AuditError::Invalid`] when it does not follow the `noun.verb` grammar.
    pub fn new(value: impl Into<String>) -> Result<Self, AuditError> {
        let value = value.into();
        if is_action(&value) {
            Ok(Action(Cow::Owned(value)))
        } else {
            Err(AuditError::invalid(
                "action",
                "must be dot-separated lowercase segments such as `secret.resolve`",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Action {
    type Err = AuditError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Action::new(value)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Whether the action succeeded. A failure may carry a short reason code (1–64 characters of
/// `a-z 0-9 _ . -`, e.g. `not_found`, `kek_unavailable`), never free text that could leak data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure { reason: Option<String> },
}

impl Outcome {
    /// A failure with a reason code.
    pub fn failure(reason: impl Into<String>) -> Self {
        Outcome::Failure {
            reason: Some(reason.into()),
        }
    }

    /// `(outcome, reason)` as stored.
    pub(crate) fn columns(&self) -> (&'static str, Option<&str>) {
        match self {
            Outcome::Success => ("success", None),
            Outcome::Failure { reason } => ("failure", reason.as_deref()),
        }
    }

    pub(crate) fn from_columns(outcome: &str, reason: Option<String>) -> Result<Self, AuditError> {
        match (outcome, reason) {
            ("success", None) => Ok(Outcome::Success),
            ("failure", reason) => Ok(Outcome::Failure { reason }),
            (outcome, _) => Err(AuditError::corrupt(format!("outcome `{outcome}`"))),
        }
    }
}

/// Longest target accepted, in bytes.
pub const MAX_TARGET_LEN: usize = 512;

/// An entry to record. The writer adds the id, time, sequence number and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub chain: Chain,
    pub actor: Actor,
    pub action: Action,
    /// What was acted on, e.g. `secret:github/token@3`: 1–512 bytes, no control characters.
    /// Never a secret value.
    pub target: String,
    pub outcome: Outcome,
    /// The request id the client saw, when the action came from an API request (1–128 visible
    /// ASCII characters).
    pub request_id: Option<String>,
}

impl AuditEntry {
    /// A successful action with no request id.
    pub fn new(
        chain: impl Into<Chain>,
        actor: Actor,
        action: Action,
        target: impl Into<String>,
    ) -> Self {
        Self {
            chain: chain.into(),
            actor,
            action,
            target: target.into(),
            outcome: Outcome::Success,
            request_id: None,
        }
    }

    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Checks every free-text field, so that only entries the database accepts are queued.
    pub(crate) fn validate(&self) -> Result<(), AuditError> {
        self.actor.validate()?;
        // Constants skip `Action::new`; a hand-built `Action` cannot exist outside this module.
        if !is_action(self.action.as_str()) {
            return Err(AuditError::invalid("action", "is not a valid action name"));
        }
        if self.target.is_empty()
            || self.target.len() > MAX_TARGET_LEN
            || self.target.chars().any(char::is_control)
        {
            return Err(AuditError::invalid(
                "target",
                "must be 1-512 bytes without control characters",
            ));
        }
        if let Outcome::Failure {
            reason: Some(reason),
        } = &self.outcome
            && !is_code(reason)
        {
            return Err(AuditError::invalid(
                "outcome.reason",
                "must be 1-64 characters of a-z, 0-9, `_`, `.`, `-`",
            ));
        }
        if self.request_id.as_deref().is_some_and(|id| !is_token(id)) {
            return Err(AuditError::invalid(
                "request_id",
                "must be 1-128 visible ASCII characters",
            ));
        }
        Ok(())
    }
}

/// A stored entry with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub chain: Chain,
    /// Position in the chain, from 1 with no gaps.
    pub seq: u64,
    /// When the entry was recorded (UTC, microseconds).
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub actor: Actor,
    pub action: Action,
    pub target: String,
    pub outcome: Outcome,
    pub request_id: Option<String>,
    /// Hex SHA-256 of the previous entry of the chain ([`crate::hash::GENESIS`] for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this entry ([`crate::hash`]).
    pub hash: String,
}

fn is_action(value: &str) -> bool {
    value.len() <= 64
        && value.split('.').count() >= 2
        && value.split('.').all(|segment| {
            segment.starts_with(|c: char| c.is_ascii_lowercase())
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// Reason codes and component names.
fn is_code(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// Request and run ids: opaque, but printable and bounded.
fn is_token(value: &str) -> bool {
    (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_action_is_valid() {
        for action in Action::KNOWN {
            assert!(is_action(action.as_str()), "{action}");
        }
    }

    #[test]
    fn action_grammar() {
        for good in ["secret.resolve", "api_key.create", "a.b.c", "job2.run"] {
            assert!(Action::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "secret",
            "Secret.put",
            "secret.",
            ".put",
            "secret..put",
            "secret.put!",
            "1secret.put",
            "secret._put",
        ] {
            assert!(Action::new(bad).is_err(), "{bad}");
        }
        assert!(Action::new(format!("a.{}", "b".repeat(63))).is_err());
    }

    #[test]
    fn validates_free_text_fields() {
        let base = AuditEntry::new(
            Chain::Platform,
            Actor::PlatformAdmin,
            Action::KEK_ROTATE,
            "kek:file:main",
        );
        assert!(base.validate().is_ok());
        let cases = [
            AuditEntry {
                target: String::new(),
                ..base.clone()
            },
            AuditEntry {
                target: "a\nb".into(),
                ..base.clone()
            },
            AuditEntry {
                target: "x".repeat(MAX_TARGET_LEN + 1),
                ..base.clone()
            },
            base.clone().with_outcome(Outcome::failure("Not Found")),
            base.clone().with_request_id("has space"),
            AuditEntry {
                actor: Actor::Internal {
                    component: String::new(),
                    run_id: None,
                },
                ..base.clone()
            },
        ];
        for case in cases {
            assert!(case.validate().is_err(), "{case:?}");
        }
        assert!(
            base.with_outcome(Outcome::failure("not_found"))
                .with_request_id("req_01ABC")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn ids_and_chains_round_trip() {
        let id = AuditEventId::generate();
        assert_eq!(id.to_string().parse::<AuditEventId>().unwrap(), id);
        assert!("aud_x".parse::<AuditEventId>().is_err());
        let tenant = TenantId::generate();
        assert_eq!(
            Chain::from(tenant).key().parse::<Chain>().unwrap(),
            Chain::Tenant(tenant)
        );
        assert_eq!("platform".parse::<Chain>().unwrap(), Chain::Platform);
        assert!("nobody".parse::<Chain>().is_err());
    }

    #[test]
    fn actors_round_trip_through_columns() {
        for actor in [
            Actor::ApiKey {
                key_id: ApiKeyId::generate(),
            },
            Actor::PlatformAdmin,
            Actor::Internal {
                component: "scheduler".into(),
                run_id: Some("run_1".into()),
            },
        ] {
            let (kind, id, run) = actor.columns();
            assert_eq!(Actor::from_columns(kind, id, run).unwrap(), actor);
        }
    }
}
