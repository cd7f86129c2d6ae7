//! Cursor pagination: `?limit=&cursor=` in, `{"data": […], "next_cursor": …}` out.
//!
//! A cursor is the last id of the previous page, base64url-encoded so clients treat it as
//! opaque and we may change what it holds later.

use std::str::FromStr;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use switchyard_core::ErrorCode;
use utoipa::{IntoParams, ToSchema};

use crate::{error::ApiError, state::ApiSettings};

/// The query parameters of every list endpoint.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many items to return (default 50, at most 200 unless configured otherwise).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<Id> {
    pub after: Option<Id>,
    pub limit: u32,
}

impl ListParams {
    /// Checks the limit against the configured bounds and decodes the cursor.
    ///
    /// # Errors
    /// `invalid_query` for a limit out of range, `invalid_cursor` for a cursor this list did
    /// not produce.
    pub fn page<Id: FromStr>(&self, settings: &ApiSettings) -> Result<PageRequest<Id>, ApiError> {
        let limit = self.limit.unwrap_or(settings.default_page_limit);
        if limit == 0 || limit > settings.max_page_limit {
            return Err(ApiError::new(ErrorCode::InvalidQuery).with_detail(format!(
                "limit must be between 1 and {}",
                settings.max_page_limit
            )));
        }
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(PageRequest { after, limit })
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    pub fn new<Item, Id: std::fmt::Display>(
        page: switchyard_store::Page<Item, Id>,
        convert: impl FnMut(Item) -> T,
    ) -> Self {
        Self {
            data: page.items.into_iter().map(convert).collect(),
            next_cursor: page.next_after.map(|id| encode_cursor(&id)),
        }
    }
}

pub fn encode_cursor(after: &impl std::fmt::Display) -> String {
    URL_SAFE_NO_PAD.encode(after.to_string())
}

fn decode_cursor<Id: FromStr>(cursor: &str) -> Result<Id, ApiError> {
    let invalid = || {
        ApiError::new(ErrorCode::InvalidCursor)
            .with_detail("pass back a `next_cursor` from this list unchanged")
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.parse().map_err(|_| invalid())
}
