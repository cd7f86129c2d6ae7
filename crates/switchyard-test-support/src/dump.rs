//! A text dump of every table, for scanning.

use sqlx::{Connection, Row};

use crate::{TestBackend, TestDatabase};

/// `(table, rows as text)` for every user table of the database.
pub async fn dump_tables(database: &TestDatabase) -> Vec<(String, String)> {
    match database.backend() {
        TestBackend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(database.url())
                .await
                .expect("connect");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT quote_ident(table_name) FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&mut connection)
            .await
            .expect("list tables");
            let mut dump = Vec::new();
            for table in tables {
                // `t::text` renders bytea as \x… hex, which the scanner's hex check covers.
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
                        .fetch_all(&mut connection)
                        .await
                        .expect("dump table");
                dump.push((table, rows.join("\n")));
            }
            dump
        }
        TestBackend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(database.url())
                .await
                .expect("connect");
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(&mut connection)
                    .await
                    .expect("list tables");
            let mut dump = Vec::new();
            for table in tables {
                let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
                    .fetch_all(&mut connection)
                    .await
                    .expect("columns")
                    .iter()
                    .map(|row| row.get::<String, _>("name"))
                    .collect();
                if columns.is_empty() {
                    continue;
                }
                // quote() renders every value as SQL text; blobs become X'…' hex.
                let select = columns
                    .iter()
                    .map(|column| format!("quote(\"{column}\")"))
                    .collect::<Vec<_>>()
                    .join(" || ',' || ");
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT {select} FROM \"{table}\""))
                        .fetch_all(&mut connection)
                        .await
                        .expect("dump table");
                dump.push((table, rows.join("\n")));
            }
            dump
        }
    }
}
