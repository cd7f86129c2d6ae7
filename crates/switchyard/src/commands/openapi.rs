//! `switchyard openapi`.

use crate::output;

pub fn print() -> anyhow::Result<()> {
    output::print_json(&serde_json::to_value(
        switchyard_server::openapi::document(),
    )?)
}
