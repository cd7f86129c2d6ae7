//! Reads for unified `related` fields: which key values have a matching live record in
//! another stream of the same connection, and whether that stream has ever been read to the
//! end.
//!
//! The match is made in the database, from the stored JSON: SQLite's `json_extract` and
//! PostgreSQL's `#>` on a member path (`$.a.b`, as a list of names), so the SQL differs per
//! engine. Values are compared as text: a string as is, an integer in decimal, the way a
//! stored primary key writes them.

use std::collections::BTreeSet;

use serde_json::Value;
use switchyard_core::{ConnectionId, TenantId};
use switchyard_store::{Database, DbTime, with_conn};
use time::OffsetDateTime;

use super::error::{Result, StoreError};
use super::records::RecordStore;

/// Which records of a stream match a key (see [`RecordStore::related_matches`]).
#[derive(Debug, Clone, Copy)]
pub struct RelatedQuery<'a> {
    pub stream: &'a str,
    /// Member names of where the key is in a record (`["user_id"]`); `None`: the primary key.
    pub matches: Option<&'a [String]>,
    /// Only records whose member (names) holds this value (a string, integer or boolean).
    pub filter: Option<(&'a [String], &'a Value)>,
}

impl RecordStore {
    /// Notes that a sync read `stream` to the end (see [`Self::completed_at`]).
    pub async fn mark_completed(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<()> {
        with_conn!(self.database(), |conn| {
            sqlx::query(
                "UPDATE sync_streams SET completed_at = $4, updated_at = $4 \
                 WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3",
            )
            .bind(tenant.to_string())
            .bind(connection.to_string())
            .bind(stream)
            .bind(DbTime::now())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// When a sync last read `stream` to the end; `None` if none ever has. A reset of the
    /// checkpoint keeps it.
    pub async fn completed_at(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<Option<OffsetDateTime>> {
        let at: Option<Option<DbTime>> = with_conn!(self.database(), |conn| {
            sqlx::query_scalar(
                "SELECT completed_at FROM sync_streams \
                 WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3",
            )
            .bind(tenant.to_string())
            .bind(connection.to_string())
            .bind(stream)
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(at.flatten().map(DbTime::get))
    }

    /// Which of `keys` a live record of `query.stream` (same tenant, same connection) matches,
    /// or `None` when no sync has read that stream to the end yet: then its records are not
    /// the whole list, and absence from it proves nothing.
    pub async fn related_matches(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        query: &RelatedQuery<'_>,
        keys: &BTreeSet<String>,
    ) -> Result<Option<BTreeSet<String>>> {
        if self
            .completed_at(tenant, connection, query.stream)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        if keys.is_empty() {
            return Ok(Some(BTreeSet::new()));
        }
        let keys_json = serde_json::to_string(keys).map_err(StoreError::InvalidJson)?;
        let equals_json = query
            .filter
            .map(|(_, value)| serde_json::to_string(value))
            .transpose()
            .map_err(StoreError::InvalidJson)?;
        // $1 tenant, $2 connection, $3 stream, $4 the keys as a JSON array; then, as the
        // query has them, the match path and the filter's path and value (JSON).
        let found: Vec<String> = match self.database() {
            Database::Sqlite(pool) => {
                let sql = statement(query, &SQLITE);
                let mut statement = sqlx::query_scalar(&sql)
                    .bind(tenant.to_string())
                    .bind(connection.to_string())
                    .bind(query.stream)
                    .bind(&keys_json);
                if let Some(path) = query.matches {
                    statement = statement.bind(sqlite_path(path));
                }
                if let Some((path, _)) = query.filter {
                    statement = statement.bind(sqlite_path(path)).bind(&equals_json);
                }
                statement.fetch_all(pool).await?
            }
            Database::Postgres(pool) => {
                let sql = statement(query, &POSTGRES);
                let mut statement = sqlx::query_scalar(&sql)
                    .bind(tenant.to_string())
                    .bind(connection.to_string())
                    .bind(query.stream)
                    .bind(&keys_json);
                if let Some(path) = query.matches {
                    statement = statement.bind(path.to_vec());
                }
                if let Some((path, _)) = query.filter {
                    statement = statement.bind(path.to_vec()).bind(&equals_json);
                }
                statement.fetch_all(pool).await?
            }
        };
        Ok(Some(found.into_iter().collect()))
    }
}

/// `["a", "b"]` as SQLite's JSON path `$.a.b` (the names are plain identifiers, checked when
/// the mapping was compiled, so they need no quoting).
fn sqlite_path(members: &[String]) -> String {
    let mut path = String::from("$");
    for member in members {
        path.push('.');
        path.push_str(member);
    }
    path
}

/// How one engine spells the parts of the statement; `{p}` is a path parameter, `{v}` a JSON
/// value parameter.
struct Dialect {
    /// The text of the member at `{p}`.
    member_text: &'static str,
    /// The member at `{p}` is a string or a number.
    member_is_key: &'static str,
    /// The member at `{p}` equals the JSON value `{v}`, type included (`true` is not 1, nor
    /// `"1"` 1).
    member_equals: &'static str,
    /// The strings of the JSON array `{v}`, as a subquery.
    array_texts: &'static str,
}

const SQLITE: Dialect = Dialect {
    member_text: "CAST(json_extract(data, {p}) AS TEXT)",
    member_is_key: "json_type(data, {p}) IN ('text', 'integer')",
    member_equals: "json_type(data, {p}) = json_type({v}) \
                    AND json_extract(data, {p}) = json_extract({v}, '$')",
    array_texts: "SELECT value FROM json_each({v})",
};

const POSTGRES: Dialect = Dialect {
    member_text: "(data::jsonb #>> {p}::text[])",
    member_is_key: "jsonb_typeof(data::jsonb #> {p}::text[]) IN ('string', 'number')",
    member_equals: "(data::jsonb #> {p}::text[]) = {v}::jsonb",
    array_texts: "SELECT jsonb_array_elements_text({v}::jsonb)",
};

/// The statement for `query`, its parameters numbered in the order
/// [`RecordStore::related_matches`] binds them.
fn statement(query: &RelatedQuery<'_>, dialect: &Dialect) -> String {
    let fill = |template: &str, p: &str, v: &str| template.replace("{p}", p).replace("{v}", v);
    let mut next = 5;
    let mut param = || {
        let name = format!("${next}");
        next += 1;
        name
    };
    let keys = fill(dialect.array_texts, "", "$4");
    let mut conditions = Vec::new();
    let matched = match query.matches {
        None => "primary_key".to_owned(),
        Some(_) => {
            let path = param();
            conditions.push(fill(dialect.member_is_key, &path, ""));
            fill(dialect.member_text, &path, "")
        }
    };
    conditions.push(format!("{matched} IN ({keys})"));
    if query.filter.is_some() {
        let path = param();
        let value = param();
        conditions.push(fill(dialect.member_equals, &path, &value));
    }
    format!(
        "SELECT DISTINCT {matched} FROM records \
         WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3 AND deleted = FALSE \
           AND {}",
        conditions.join(" AND ")
    )
}
