//! One module per command group.

pub mod audit;
pub mod config;
pub mod connector;
pub mod jobs;
pub mod key;
pub mod openapi;
pub mod purge;
pub mod runs;
pub mod tenant;
pub mod vault;
