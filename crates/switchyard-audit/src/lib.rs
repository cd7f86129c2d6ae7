//! Switchyard's audit log: append-only and tamper-evident, one hash chain per tenant.
//!
//! Every security-relevant action (a secret resolved, a key rotated, a tenant deleted…) is an
//! [`AuditEntry`]: who ([`Actor`]), what ([`Action`], `noun.verb`), on which target, with what
//! [`Outcome`], and the request id. Stored, it becomes an [`AuditEvent`] with an id
//! (`aud_…`), the time, a sequence number in its chain, the hash of the previous entry and its
//! own hash. Changing, removing or reordering a stored entry breaks the chain, and
//! [`AuditReader::verify`] says where.
//!
//! # Layout
//! - [`event`]: entries, actors, actions, outcomes, chains, and their validation.
//! - [`hash`]: the canonical encoding and SHA-256 of an entry.
//! - [`writer`]: [`AuditLog`] (`record` enqueues) and the batching writer task.
//! - [`reader`]: [`AuditReader`]: listing with filters and cursors, verification.
//! - [`verify`]: the chain walk and its [`VerifyReport`].
//! - `storage` (private): the SQL, once for both databases.
//! - [`error`]: the one error type, [`AuditError`].
//!
//! # Chains
//! Each tenant has its own chain ([`Chain::Tenant`]); events that concern no tenant go to the
//! one platform chain ([`Chain::Platform`], stored as `chain_id = 'platform'`). Sequence
//! numbers start at 1 and have no gaps within a chain; listing is ordered by them and the
//! cursor is the last one seen. The entry time is taken when the entry is recorded, so in a
//! chain fed by several processes times can be slightly out of sequence order; the sequence
//! is the order of record.
//!
//! # Writing
//! `record` is cheap: it validates, stamps an id and the time, and puts the entry on a bounded
//! channel. A background task writes batches (up to 256 entries, or whatever arrived within
//! 5 ms) in one transaction each. When the channel is full, `record` waits: entries are never
//! dropped. `record_and_wait` and `flush` are for callers that need the entry durable before
//! they go on (tenant deletion, tests); `AuditWriter::shutdown` writes what is queued.
//!
//! Several processes may share one PostgreSQL database. The table `audit_chain_heads` holds
//! each chain's last sequence number and hash; a batch transaction inserts the head if
//! missing (`ON CONFLICT DO NOTHING`, so there is always a row to lock), locks it
//! (`SELECT … FOR UPDATE`), appends after it and moves it, so a chain stays linear whichever
//! processes write to it. On SQLite, `BEGIN IMMEDIATE` serialises writers instead.
//!
//! # Hash encoding
//! `hash = lowercase hex(SHA-256(encoding))`, where the encoding is the concatenation of, in
//! this order:
//!
//! | # | field | encoding |
//! |---|---|---|
//! | 1 | the domain tag `switchyard.audit.v1` | text |
//! | 2 | `chain_id` (`ten_…` or `platform`) | text |
//! | 3 | `seq` | u64, 8 bytes big-endian |
//! | 4 | `id` (`aud_…`) | text |
//! | 5 | `occurred_at` as microseconds since 1970-01-01T00:00:00Z | i64, 8 bytes big-endian, two's complement |
//! | 6 | `actor_kind` (`api_key`, `platform_admin`, `internal`) | text |
//! | 7 | `actor_id` (the key id, or the component) | optional text |
//! | 8 | `actor_run_id` | optional text |
//! | 9 | `action` | text |
//! | 10 | `target` | text |
//! | 11 | `outcome` (`success`, `failure`) | text |
//! | 12 | `reason` | optional text |
//! | 13 | `request_id` | optional text |
//! | 14 | `prev_hash`, as its 64 lowercase hex characters | text |
//!
//! *text* is the byte `0x01`, the UTF-8 length as u32 big-endian, then the UTF-8 bytes;
//! *optional text* is the byte `0x00` when absent, otherwise *text*. Every field is either
//! fixed-size or length-prefixed, so no two different entries share an encoding (an absent
//! value differs from an empty one). The values are exactly the stored column values, so a
//! verifier needs only the rows. The first entry of a chain has `prev_hash` [`GENESIS`]
//! (64 zeros). Binding the chain id and the sequence number into the hash means an entry
//! cannot be moved to another tenant or another position without re-hashing it.
//!
//! # What this protects against
//! The tables are append-only: triggers reject `UPDATE` and `DELETE` on `audit_events` (and
//! `TRUNCATE` on PostgreSQL). That guards against accidents and application bugs, not against
//! a database superuser, who can drop the triggers; the hash chain is what makes such edits
//! evident. Someone who can write the database *and* recompute every later hash (the encoding
//! is public and keyless) can rewrite a chain consistently; detecting that needs the chain
//! heads anchored outside the database (exported or signed periodically), which is future
//! work, as is retention (7 years, then archival): nothing is ever deleted today, and entries
//! outlive their tenant.

pub mod error;
pub mod event;
pub mod hash;
pub mod reader;
mod storage;
pub mod verify;
pub mod writer;

pub use error::AuditError;
pub use event::{Action, Actor, AuditEntry, AuditEvent, AuditEventId, Chain, Outcome};
pub use hash::GENESIS;
pub use reader::{AuditFilter, AuditReader, MAX_PAGE};
pub use verify::{BreakKind, ChainBreak, VerifyReport};
pub use writer::{AuditLog, AuditOptions, AuditStats, AuditWriter};
