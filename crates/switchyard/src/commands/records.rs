//! `switchyard records`: a stream's change stream as JSONL, to stdout or a file, resumable
//! from the cursor it prints.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{
    cli::RecordsArgs,
    client::{ApiClient, api_path},
    output,
};

/// Changes asked for per request: the API's largest page by default.
const PAGE: u64 = 200;

pub async fn run(args: RecordsArgs) -> anyhow::Result<()> {
    let api = ApiClient::from_args(&args.client)?;
    let (sink, destination) = open_sink(&args)?;
    let mut reader = Reader {
        api: &api,
        args: &args,
        sink,
        cursor: args.cursor.clone(),
        written: 0,
    };
    let result = if args.follow {
        tokio::select! {
            result = reader.follow() => result,
            // Stopping between two awaits leaves only whole, flushed pages behind.
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    } else {
        reader.read_stored().await
    };
    // The cursor is worth having even after an error: everything before it was written.
    output::print_note(&format!(
        "wrote {} changes to {destination}",
        reader.written
    ));
    if let Some(cursor) = &reader.cursor {
        output::print_note(&format!("cursor: {cursor}"));
    }
    result
}

/// Where the lines go, and its name for the report.
fn open_sink(args: &RecordsArgs) -> anyhow::Result<(Box<dyn Write>, String)> {
    match &args.output {
        None => Ok((Box::new(std::io::stdout()), "stdout".to_owned())),
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .append(args.append)
                .truncate(!args.append)
                .open(path)
                .with_context(|| format!("cannot open `{}`", path.display()))?;
            Ok((
                Box::new(BufWriter::new(file)),
                format!("`{}`", path.display()),
            ))
        }
    }
}

struct Reader<'a> {
    api: &'a ApiClient,
    args: &'a RecordsArgs,
    sink: Box<dyn Write>,
    /// Where the next read starts: `--cursor` at first, then after each page written.
    cursor: Option<String>,
    written: u64,
}

impl Reader<'_> {
    /// Reads what is stored, then again every `--interval`, until `--limit` (or forever).
    async fn follow(&mut self) -> anyhow::Result<()> {
        loop {
            self.read_stored().await?;
            if self.limit_reached() {
                return Ok(());
            }
            tokio::time::sleep(self.args.interval).await;
        }
    }

    /// Reads page after page until the server has no more stored, or `--limit` is reached.
    async fn read_stored(&mut self) -> anyhow::Result<()> {
        loop {
            let asked = match self.args.limit {
                Some(limit) => PAGE.min(limit.saturating_sub(self.written)),
                None => PAGE,
            };
            if asked == 0 {
                return Ok(());
            }
            let asked = asked.to_string();
            let path = api_path(
                &[
                    "v1",
                    "connections",
                    &self.args.connection,
                    "records",
                    &self.args.stream,
                ],
                &[
                    ("limit", Some(&asked)),
                    ("cursor", self.cursor.as_deref()),
                    ("model", self.args.model.as_deref()),
                    ("tenant_id", self.args.tenant.as_deref()),
                ],
            );
            let page = self.api.get(&path).await?;
            let Some(changes) = page["data"].as_array() else {
                bail!("the server's answer has no `data` list");
            };
            let next_cursor = page["next_cursor"]
                .as_str()
                .context("the server's answer has no `next_cursor`")?;
            self.write(changes)?;
            self.cursor = Some(next_cursor.to_owned());
            if page["has_more"] != Value::Bool(true) {
                return Ok(());
            }
        }
    }

    /// Writes one line per change and flushes, so a reader of the file sees whole pages.
    fn write(&mut self, changes: &[Value]) -> anyhow::Result<()> {
        for change in changes {
            serde_json::to_writer(&mut self.sink, change)?;
            self.sink.write_all(b"\n")?;
        }
        self.sink.flush()?;
        self.written += changes.len() as u64;
        Ok(())
    }

    fn limit_reached(&self) -> bool {
        self.args.limit.is_some_and(|limit| self.written >= limit)
    }
}
