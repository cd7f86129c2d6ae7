//! `switchyard connector`: checking manifests before they are deployed.

use anyhow::bail;
use switchyard_connectors::manifest;

use crate::cli::ConnectorCommand;
use crate::output;

pub fn run(command: ConnectorCommand) -> anyhow::Result<()> {
    match command {
        ConnectorCommand::Validate { files } => {
            let mut failed = 0;
            let mut report = String::new();
            for file in &files {
                let origin = file.display().to_string();
                let text = match std::fs::read_to_string(file) {
                    Ok(text) => text,
                    Err(error) => {
                        failed += 1;
                        report.push_str(&format!("{origin}: cannot read: {error}\n"));
                        continue;
                    }
                };
                match manifest::load(&text, &origin) {
                    Ok(manifest) => report.push_str(&format!(
                        "{origin}: ok ({} {}, {} streams, {} actions)\n",
                        manifest.id,
                        manifest.version,
                        manifest.streams.len(),
                        manifest.actions.len()
                    )),
                    Err(error) => {
                        failed += 1;
                        report.push_str(&format!("{error}\n"));
                    }
                }
            }
            output::print_text(report.trim_end())?;
            if failed > 0 {
                bail!("{failed} of {} manifests have problems", files.len());
            }
            Ok(())
        }
        ConnectorCommand::Schema => output::print_json(&manifest::json_schema()),
    }
}
