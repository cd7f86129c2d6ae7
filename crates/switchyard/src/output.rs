//! What the CLI prints: tables for people, JSON for scripts, errors on stderr.

use std::io::Write;

use serde_json::Value;

/// Writes text to stdout as is.
pub fn print_text(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    Ok(())
}

/// Writes pretty JSON and a newline to stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

/// Writes an aligned table: one column per `(header, field)`, one row per item. Missing and
/// null fields print as `-`.
pub fn print_table(columns: &[(&str, &str)], items: &[Value]) -> anyhow::Result<()> {
    let cells: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|(_, field)| cell(&item[*field]))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, (header, _))| {
            cells
                .iter()
                .map(|row| row[index].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut stdout = std::io::stdout().lock();
    let headers: Vec<String> = columns
        .iter()
        .map(|(header, _)| (*header).to_owned())
        .collect();
    for row in std::iter::once(&headers).chain(cells.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        writeln!(stdout, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

/// Writes `label: value` lines for one object.
pub fn print_fields(fields: &[(&str, &str)], item: &Value) -> anyhow::Result<()> {
    let width = fields
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    let mut stdout = std::io::stdout().lock();
    for (label, field) in fields {
        writeln!(stdout, "{label:<width$}  {}", cell(&item[*field]))?;
    }
    Ok(())
}

/// Writes a line to stderr, apart from the command's output (progress, a cursor to continue
/// from). A closed stderr is not worth failing the command for.
pub fn print_note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Writes `error: …` with its causes to stderr.
pub fn print_error(error: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {error:#}");
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
