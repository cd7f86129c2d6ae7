//! Unified data models and the declarative mapping of provider records onto them.
//!
//! A unified model is a provider-independent shape for one kind of record (an identity, a
//! repository, a ticket…), defined by a JSON Schema (2020-12) bundled from
//! `schemas/unified/<model>.schema.json`. A manifest maps a stream's records to a model with a
//! [`MappingSpec`]: the model's name and, per target field, a [`FieldMapping`]. Every record
//! also gets `source`, the connector id, which the mapping does not set.
//!
//! ```yaml
//! unified:
//!   model: identity
//!   fields:
//!     id: "$.id"
//!     email: "$.profile.email"
//!     name: { join: ["$.profile.firstName", "$.profile.lastName"], separator: " " }
//!     status: { path: "$.status", map: { ACTIVE: active, SUSPENDED: suspended }, default: unknown }
//! ```
//!
//! # Field mapping forms
//!
//! Paths are JSONPath (RFC 9535) queries into the record. A path that selects nothing gives
//! null; a path that selects more than one value is an error naming the field, unless the
//! form takes many values. `default` replaces a null result.
//!
//! - A bare string reads one value: `email: "$.profile.email"`.
//! - `path` with `default`: `archived: { path: "$.archived", default: false }`.
//! - `const`, a fixed value: `system: { const: jira }`.
//! - `first_of`, the first path with a non-null value:
//!   `name: { first_of: ["$.name", "$.login"] }`.
//! - `join`, the non-null values as text joined by `separator` (a space unless set):
//!   `name: { join: ["$.profile.firstName", "$.profile.lastName"], separator: " " }`.
//! - `map`, a value lookup by the value's text; an unlisted value is null, so `default`
//!   catches it: `status: { path: "$.status", map: { ACTIVE: active }, default: unknown }`.
//! - `as`, a coercion to `boolean`, `integer`, `number`, `string` or `timestamp`
//!   (RFC 3339, colon-less ISO 8601 offsets and epoch seconds or milliseconds, written as RFC
//!   3339 UTC): `id: { path: "$.id", as: string }`, `last_login: { path: "$.lastLogin", as: timestamp }`.
//! - `exists`, whether the path selects a non-null value:
//!   `mfa_enabled: { path: "$.factors[?@.status == 'ACTIVE']", exists: true }`.
//! - `many`, every match as an array (nulls left out; `default` replaces an empty one):
//!   `tags: { path: "$.labels[*].name", many: true }`.
//!
//! - `template`, text rendered by a strict MiniJinja template over `record` and `config` (the
//!   connection's settings, set with [`CompiledMapping::with_config`]); blank text is null:
//!   `url: { template: "https://{{ config.site }}.atlassian.net/browse/{{ record.key }}" }`.
//!
//! - `related`, one of two values by whether another stream of the same connection holds a
//!   matching record (`match`: a member path into it, default its primary key; `where`: a
//!   member that must hold a value): `mfa_enabled: { related: { stream: user_factors, key:
//!   "$.id", match: "$.user_id", where: { path: "$.status", equals: ACTIVE } }, present: true,
//!   absent: false }`. Null when the key is null or the stream has never completed a sync; see
//!   [`lookup_page`] and [`CompiledMapping::apply_with`].
//!
//! `map`, `as`, `many` and `default` combine in that order: each selected value is looked up,
//! then coerced, and `default` applies last.
//!
//! # Checking and applying
//!
//! [`check`] rejects at load time what would fail for every record: a target field the model
//! lacks, a required field with no mapping, `source` mapped, a path that does not parse.
//! [`apply`] maps one record and validates it against the model; a required field that comes
//! out null is [`MappingError::Missing`]. To map many records, build a [`CompiledMapping`]
//! once: it holds the parsed paths. [`apply`] leaves `related` fields null: resolving them
//! takes the record store, once per page ([`lookup_page`]).

mod action;
mod coerce;
mod compile;
mod error;
mod mapping;
mod model;
mod related;

pub use action::{ActionMapping, CompiledActionMapping, MappingSubject};
pub use compile::{CompiledMapping, SOURCE_FIELD};
pub use error::MappingError;
pub use mapping::{
    Coercion, FieldMapping, MappingSpec, RecordPath, Related, RelatedFilter, Select,
};
pub use model::{UnifiedModel, Violation};
pub use related::{MemberPath, RelatedLookup, RelatedMatches, lookup_page};

use serde_json::Value;

/// Maps `record` with `spec`, sets `source`, and validates the result against the model.
pub fn apply(spec: &MappingSpec, source: &str, record: &Value) -> Result<Value, MappingError> {
    CompiledMapping::new(spec)?.apply(source, record)
}

/// The static checks of a mapping: every target field exists in the model, every required
/// field is mapped (`source` excepted, which [`apply`] fills), and every path parses.
pub fn check(spec: &MappingSpec) -> Result<(), MappingError> {
    CompiledMapping::new(spec).map(drop)
}
