//! Blob metrics, recorded through the process-wide `metrics` recorder.
//!
//! Labels are the backend, the operation and the outcome (`ok` or an error code): never keys or
//! tenants, which would explode label cardinality.

use std::time::Duration;

use crate::error::BlobError;

/// Operations by backend, operation and outcome.
pub const OPERATIONS_TOTAL: &str = "switchyard_blob_operations_total";
/// Bytes written by successful puts, by backend.
pub const PUT_BYTES_TOTAL: &str = "switchyard_blob_put_bytes_total";
/// Bytes read by successful gets, by backend.
pub const GET_BYTES_TOTAL: &str = "switchyard_blob_get_bytes_total";
/// Put latency in seconds (until durable), by backend and outcome.
pub const PUT_DURATION_SECONDS: &str = "switchyard_blob_put_duration_seconds";
/// Blobs removed by retention and tenant deletion, by backend and reason.
pub const DELETED_TOTAL: &str = "switchyard_blob_deleted_total";

fn outcome<T>(result: &Result<T, BlobError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.code(),
    }
}

pub(crate) fn operation<T>(
    backend: &'static str,
    operation: &'static str,
    result: &Result<T, BlobError>,
) {
    metrics::counter!(
        OPERATIONS_TOTAL,
        "backend" => backend,
        "operation" => operation,
        "outcome" => outcome(result)
    )
    .increment(1);
}

pub(crate) fn put(
    backend: &'static str,
    len: usize,
    elapsed: Duration,
    result: &Result<(), BlobError>,
) {
    operation(backend, "put", result);
    metrics::histogram!(PUT_DURATION_SECONDS, "backend" => backend, "outcome" => outcome(result))
        .record(elapsed.as_secs_f64());
    if result.is_ok() {
        metrics::counter!(PUT_BYTES_TOTAL, "backend" => backend).increment(len as u64);
    }
}

pub(crate) fn get_bytes(backend: &'static str, len: usize) {
    metrics::counter!(GET_BYTES_TOTAL, "backend" => backend).increment(len as u64);
}

pub(crate) fn deleted(backend: &'static str, reason: &'static str, count: u64) {
    metrics::counter!(DELETED_TOTAL, "backend" => backend, "reason" => reason).increment(count);
}
