//! `action_results`: what an asynchronous action came to, read with its run.
//!
//! One row per run, written by the `connector.action` job after each attempt (a later
//! attempt replaces an earlier failure). The row goes with its run (`ON DELETE CASCADE`), so
//! it is kept exactly as long as the runs' retention keeps the run. Every read names the
//! tenant.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use switchyard_core::{RunId, TenantId};
use switchyard_store::{Database, DbTime, with_conn};
use utoipa::ToSchema;

/// What an action answered, as the synchronous call returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActionOutput {
    /// What the provider answered, as the action's `output` selects it.
    #[schema(value_type = Object)]
    pub output: Value,
    /// The output in the unified model the action maps it to; `null` when the action
    /// declares no mapping or the output does not map.
    #[schema(value_type = Option<Object>)]
    pub unified: Option<Value>,
    /// Why the output has no unified form although the action declares one.
    pub mapping_error: Option<String>,
}

/// Why an action failed: the problem the synchronous call would have answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActionProblem {
    /// The problem's `code` (`provider_error`, `rate_limited`, `provider_unavailable`, …).
    pub code: String,
    /// The finer code a manifest error rule gave the refusal (`auth_failed`, `not_found`, …).
    pub reason: Option<String>,
    /// What went wrong; the run's `error.message`.
    pub message: String,
}

/// An asynchronous action's outcome: its output once it ran, or the last attempt's problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ActionResult {
    // First: read back, an `{error}` object would also fit `ActionOutput` (with a null
    // output), untagged variants being tried in order.
    Failed {
        /// Set when the last attempt failed (also while a retry is pending).
        error: ActionProblem,
    },
    Succeeded(ActionOutput),
}

#[derive(Debug, thiserror::Error)]
pub enum ActionResultsError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// The `action_results` table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ActionResults {
    database: Database,
}

impl ActionResults {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Records `result` as the outcome of `run` so far.
    pub async fn save(
        &self,
        tenant: TenantId,
        run: RunId,
        result: &ActionResult,
    ) -> Result<(), ActionResultsError> {
        with_conn!(&self.database, |conn| {
            sqlx::query(
                "INSERT INTO action_results (run_id, tenant_id, result, updated_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (run_id) DO UPDATE SET result = excluded.result, \
                 updated_at = excluded.updated_at",
            )
            .bind(run.to_string())
            .bind(tenant.to_string())
            .bind(Json(result))
            .bind(DbTime::now())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// The outcome of the tenant's `run`; `None` before its first attempt ended (or for
    /// another tenant's run).
    pub async fn get(
        &self,
        tenant: TenantId,
        run: RunId,
    ) -> Result<Option<ActionResult>, ActionResultsError> {
        let row: Option<Json<ActionResult>> = with_conn!(&self.database, |conn| {
            sqlx::query_scalar(
                "SELECT result FROM action_results WHERE tenant_id = $1 AND run_id = $2",
            )
            .bind(tenant.to_string())
            .bind(run.to_string())
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(row.map(|Json(result)| result))
    }
}
