//! One module per command group.

pub mod audit;
pub mod config;
pub mod connector;
pub mod jobs;
pub mod key;
pub mod openapi;
pub mod purge;
pub mod records;
pub mod runs;
pub mod sync;
pub mod tenant;
pub mod vault;
