//! `switchyard openapi`.

use crate::output;

/// Prints the document exactly as `/openapi.json` serves it (field order kept), so the CI
/// drift check can compare it with `docs/openapi.json` byte for byte.
pub fn print() -> anyhow::Result<()> {
    output::print_json(&switchyard_server::openapi::document())
}
