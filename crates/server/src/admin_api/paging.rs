//! Paging of admin API lists: `?limit=N&cursor=…`, newest first. `limit` defaults to
//! [`DEFAULT_LIMIT`] and may not exceed [`MAX_LIMIT`] (a larger one is refused, not clamped, so
//! a client learns the maximum instead of silently missing rows). A page's `nextCursor` is
//! passed back as `cursor` for the next one; it is opaque to clients.

use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ApiErrorCode};

/// Rows per page when the request does not say.
pub const DEFAULT_LIMIT: u32 = 50;

/// Most rows per page.
pub const MAX_LIMIT: u32 = 200;

/// The paging part of a list's query string.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page (absent: the first page).
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page size asked for, checked.
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::new(
                ApiErrorCode::InvalidRequest,
                format!("limit must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The cursor parsed by `parse`; a cursor it refuses is `invalid-request`.
    pub fn cursor<T>(&self, parse: impl FnOnce(&str) -> Option<T>) -> Result<Option<T>, ApiError> {
        match &self.cursor {
            None => Ok(None),
            Some(raw) => parse(raw).map(Some).ok_or_else(|| {
                ApiError::new(
                    ApiErrorCode::InvalidRequest,
                    "cursor is not one this API returned",
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_not_clamped() {
        let q = |limit| PageQuery {
            limit,
            cursor: None,
        };
        assert_eq!(q(None).limit().ok(), Some(DEFAULT_LIMIT));
        assert_eq!(q(Some(1)).limit().ok(), Some(1));
        assert_eq!(q(Some(MAX_LIMIT)).limit().ok(), Some(MAX_LIMIT));
        assert!(q(Some(0)).limit().is_err());
        assert!(q(Some(MAX_LIMIT + 1)).limit().is_err());
        let c = PageQuery {
            limit: None,
            cursor: Some("x".into()),
        };
        assert!(c.cursor(|s| s.parse::<u64>().ok()).is_err());
    }
}
