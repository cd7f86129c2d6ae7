//! The manifest engine against the stand-in provider: every pagination style and
//! incremental mode, synced into the record store, compared with the stand-in's data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod actions;
mod completion;
mod headers;
mod partitions;
mod styles;
mod support;
mod vocabulary;
