//! The store of connections, sync checkpoints and records: the tables this crate owns
//! (migration `0013_connectors.sql` in switchyard-store's folders).
//!
//! Statements are written once in the dialect both engines accept (`$n`, `ON CONFLICT`,
//! `RETURNING`) and run through [`switchyard_store::with_conn`] / [`switchyard_store::with_tx`];
//! every one is scoped by `tenant_id`.
//!
//! # Layout
//! - [`connections`]: [`ConnectionStore`], the `connections` table.
//! - [`records`]: [`RecordStore`] and its types: records, the change stream, checkpoints.
//! - `page`: the write path of records (a page of a sync, the full-refresh sweep).
//! - `hash`: canonical JSON and content hashes.
//! - `lease`: one sync at a time per stream.
//! - `related`: lookups across streams for unified `related` fields, and stream completion.
//! - [`error`]: [`StoreError`], the errors of all of the above.

pub mod connections;
pub mod error;
mod hash;
mod lease;
mod page;
pub mod records;
mod related;

pub use connections::{
    Connection, ConnectionStatus, ConnectionStore, ConnectionUpdate, CredentialRef, NewConnection,
};
pub use error::StoreError;
pub use records::{
    ChangeKind, Checkpoint, PageCounts, PageWrite, RecordChange, RecordStore, RecordUpsert,
    StoredRecord,
};
pub use related::RelatedQuery;
