//! What the routes share with the test's handle.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use axum::{body::Bytes, http::StatusCode};

use super::{
    StandInOptions, clock::Clock, dataset::DataSet, faults::Faults, rate_limit::Budget,
    request_log::RequestLog,
};

pub(crate) struct Shared {
    pub(crate) options: StandInOptions,
    /// `http://127.0.0.1:<port>`, for the absolute links the styles send.
    pub(crate) base_url: String,
    pub(crate) clock: Clock,
    data: Mutex<DataSet>,
    pub(crate) budget: Option<Budget>,
    pub(crate) faults: Faults,
    pub(crate) log: RequestLog,
    /// First responses of `POST /items` by `Idempotency-Key`.
    idempotency: Mutex<HashMap<String, SavedResponse>>,
}

/// A response kept to be replayed.
#[derive(Debug, Clone)]
pub(crate) struct SavedResponse {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Shared {
    pub(crate) fn new(options: StandInOptions, base_url: String, data: DataSet) -> Self {
        Self {
            clock: Clock::starting_at(options.clock_start),
            budget: options.rate_limit.map(Budget::new),
            options,
            base_url,
            data: Mutex::new(data),
            faults: Faults::default(),
            log: RequestLog::default(),
            idempotency: Mutex::new(HashMap::new()),
        }
    }

    /// The data set, locked for one read or change. Routes never hold it across an await.
    pub(crate) fn data(&self) -> MutexGuard<'_, DataSet> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The saved responses, locked while a keyed request is answered, so two requests with
    /// one key cannot both create.
    pub(crate) fn idempotency(&self) -> MutexGuard<'_, HashMap<String, SavedResponse>> {
        self.idempotency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }
}
