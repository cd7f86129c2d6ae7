//! The store of connections, sync checkpoints, records and OAuth connect flows: the tables
//! this crate owns (migrations `0013_connectors.sql` and `0015_oauth.sql` in switchyard-store's
//! folders).
//!
//! Statements are written once in the dialect both engines accept (`$n`, `ON CONFLICT`,
//! `RETURNING`) and run through [`switchyard_store::with_conn`] / [`switchyard_store::with_tx`];
//! every one is scoped by `tenant_id`.
//!
//! # Layout
//! - [`connections`]: [`ConnectionStore`], the `connections` table.
//! - [`oauth_clients`]: [`OAuthClientStore`], tenants' OAuth client registrations.
//! - [`connect_sessions`]: [`ConnectSessionStore`], connect sessions and their OAuth states.
//! - [`refresh_lock`]: [`RefreshLocks`], one token refresh at a time per credential.
//! - [`records`]: [`RecordStore`] and its types: records, the change stream, checkpoints.
//! - `page`: the write path of records (a page of a sync, the full-refresh sweep).
//! - `hash`: canonical JSON and content hashes.
//! - `lease`: one sync at a time per stream.
//! - `related`: lookups across streams for unified `related` fields, and stream completion.
//! - [`error`]: [`StoreError`], the errors of all of the above.

pub mod connect_sessions;
pub mod connections;
pub mod error;
mod hash;
mod lease;
pub mod oauth_clients;
mod page;
pub mod records;
pub mod refresh_lock;
mod related;

pub use connect_sessions::{
    ConnectSession, ConnectSessionStore, NewConnectSession, OAuthState, SessionStatus, StateLookup,
};
pub use connections::{
    Connection, ConnectionStatus, ConnectionStore, ConnectionUpdate, CredentialRef,
    CredentialStatus, NewConnection,
};
pub use error::StoreError;
pub use oauth_clients::{
    NewOAuthClient, OAuthClient, OAuthClientStore, OAuthClientUpdate, SecretReference,
};
pub use records::{
    ChangeKind, Checkpoint, PageCounts, PageWrite, RecordChange, RecordStore, RecordUpsert,
    StoredRecord,
};
pub use refresh_lock::{RefreshGuard, RefreshLocks};
pub use related::RelatedQuery;
