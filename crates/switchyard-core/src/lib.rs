//! The vocabulary every Switchyard crate shares, with no I/O of its own.
//!
//! # Layout
//! - [`id`]: prefixed, time-ordered identifiers (`ten_…`, `key_…`, `job_…`, `sch_…`, `run_…`)
//!   that parse strictly.
//! - [`role`]: the roles an API key can hold and what each allows.
//! - [`error_code`]: the one table of stable error codes, their HTTP status and title.

pub mod error_code;
pub mod id;
pub mod role;

pub use error_code::ErrorCode;
pub use id::{
    ApiKeyId, ConnectSessionId, ConnectionId, DeliveryId, EndpointId, IdParseError, InboundEventId,
    JobId, MessageId, OAuthClientId, RunId, ScheduleId, SourceId, TenantId,
};
pub use role::Role;
