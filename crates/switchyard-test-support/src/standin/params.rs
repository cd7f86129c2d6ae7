//! Query parameters, checked the same way by every style: a bad value is a 400, never a
//! silent default.

use std::collections::HashMap;

use axum::{extract::Query, http::Uri};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::problem::Problem;

/// A style's page size: what it uses when none is asked for, and the most it allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageLimits {
    pub(crate) default: usize,
    pub(crate) max: usize,
}

pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn of(uri: &Uri) -> Result<Self, Problem> {
        Query::<HashMap<String, String>>::try_from_uri(uri)
            .map(|Query(params)| Self(params))
            .map_err(|error| Problem::InvalidParameter {
                name: "query",
                reason: error.body_text(),
            })
    }

    /// A parameter, with an empty value meaning absent (`cursor=` starts a walk, as in Slack).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn page_size(
        &self,
        name: &'static str,
        limits: PageLimits,
    ) -> Result<usize, Problem> {
        let size = self.number(name, limits.default)?;
        check_page_size(name, size, limits)
    }

    /// A whole number of at least `min`, or `default` when absent.
    pub(crate) fn number_at_least(
        &self,
        name: &'static str,
        default: usize,
        min: usize,
    ) -> Result<usize, Problem> {
        let value = self.number(name, default)?;
        if value < min {
            return Err(Problem::InvalidParameter {
                name,
                reason: format!("must be at least {min}"),
            });
        }
        Ok(value)
    }

    /// The inclusive lower bound of an incremental read.
    pub(crate) fn updated_since(&self) -> Result<Option<OffsetDateTime>, Problem> {
        self.get("updated_since")
            .map(|value| {
                OffsetDateTime::parse(value, &Rfc3339).map_err(|_| Problem::InvalidParameter {
                    name: "updated_since",
                    reason: "must be an RFC 3339 timestamp".into(),
                })
            })
            .transpose()
    }

    fn number(&self, name: &'static str, default: usize) -> Result<usize, Problem> {
        self.get(name).map_or(Ok(default), |value| {
            value.parse().map_err(|_| Problem::InvalidParameter {
                name,
                reason: "must be a whole number".into(),
            })
        })
    }
}

pub(crate) fn check_page_size(
    name: &'static str,
    size: usize,
    limits: PageLimits,
) -> Result<usize, Problem> {
    if (1..=limits.max).contains(&size) {
        Ok(size)
    } else {
        Err(Problem::InvalidParameter {
            name,
            reason: format!("must be between 1 and {}", limits.max),
        })
    }
}
