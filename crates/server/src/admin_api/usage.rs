//! A tenant's usage per UTC day (`GET …/usage?from=&to=`): frames and bytes sent to widgets
//! (`pubSubMessageCount`, `pubSubBandwidth`), discussions, comments, ops, connections and the
//! peak of connections open at once, as every node flushed them (`usage`). This node flushes
//! first, so what it counted a moment ago is included; other nodes' last few seconds (at most
//! one flush interval) may not be.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::TenantAdmin;
use super::error::{ApiError, ApiErrorCode, ApiQuery, ApiResult, ErrorBody};
use crate::app::App;
use crate::store::DayUsage;
use crate::usage::calendar::{day_of, format_day, parse_day};

/// Most days one request may cover.
pub const MAX_DAYS: i64 = 366;
/// Days covered when `from` is not given (up to and including `to`).
pub const DEFAULT_DAYS: i64 = 30;

/// `?from=…&to=…`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// First day (UTC, `YYYY-MM-DD`); default: 29 days before `to`.
    #[param(example = "2026-12-01")]
    pub from: Option<String>,
    /// Last day, included (UTC, `YYYY-MM-DD`); default: today. At most 366 days after `from`.
    #[param(example = "2026-12-06")]
    pub to: Option<String>,
}

/// One day's usage (or the whole range's, in `totals`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayUsageView {
    /// The UTC day (`YYYY-MM-DD`); absent in `totals`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-12-06")]
    pub day: Option<String>,
    /// Frames sent to widgets (every WebSocket text frame: events, batches, presence, acks…).
    #[serde(rename = "pubSubMessageCount")]
    #[schema(example = 18_204)]
    pub frames: u64,
    /// Bytes of those frames (payload, without WebSocket and TCP framing).
    #[serde(rename = "pubSubBandwidth")]
    #[schema(example = 7_340_112)]
    pub bytes: u64,
    /// Discussions created.
    #[schema(example = 12)]
    pub discussions: u64,
    /// Comments created, opening comments included.
    #[schema(example = 57)]
    pub comments: u64,
    /// Changes committed (every kind: create, reply, edit, delete, resolve, move).
    #[schema(example = 80)]
    pub ops: u64,
    /// WebSocket connections admitted.
    #[schema(example = 431)]
    pub connections: u64,
    /// The most connections open at once (per minute, summed over nodes; in `totals`, the
    /// highest day's).
    #[schema(example = 37)]
    pub peak_viewers: u64,
}

impl From<&DayUsage> for DayUsageView {
    fn from(day: &DayUsage) -> Self {
        Self {
            day: Some(day.day.clone()),
            frames: day.counts.frames,
            bytes: day.counts.bytes,
            discussions: day.counts.discussions,
            comments: day.counts.comments,
            ops: day.counts.ops,
            connections: day.counts.connections,
            peak_viewers: day.peak_viewers,
        }
    }
}

/// A tenant's usage over a range of days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    /// The tenant.
    #[schema(example = "acme")]
    pub tenant: String,
    /// First day covered.
    #[schema(example = "2026-12-01")]
    pub from: String,
    /// Last day covered (included).
    #[schema(example = "2026-12-06")]
    pub to: String,
    /// Days with any activity, oldest first (days without any are left out).
    pub days: Vec<DayUsageView>,
    /// The sums over the range (`peakViewers`: the highest day's).
    pub totals: DayUsageView,
}

/// The days a query asks for, checked: `(from, to)` as `YYYY-MM-DD`.
pub fn range(query: &UsageQuery, today_ms: u64) -> Result<(String, String), ApiError> {
    let bad = |message: &str| ApiError::new(ApiErrorCode::InvalidRequest, message);
    let day = |raw: &Option<String>, what: &str| -> Result<Option<i64>, ApiError> {
        raw.as_deref()
            .map(|text| {
                parse_day(text).ok_or_else(|| {
                    bad(&format!(
                        "{what} must be a date as YYYY-MM-DD (UTC), e.g. 2026-12-06"
                    ))
                })
            })
            .transpose()
    };
    let today = parse_day(&day_of(today_ms)).unwrap_or(0);
    let to = day(&query.to, "to")?.unwrap_or(today);
    let from = day(&query.from, "from")?.unwrap_or(to - (DEFAULT_DAYS - 1));
    if from > to {
        return Err(bad("from must not be after to"));
    }
    if to - from >= MAX_DAYS {
        return Err(bad("at most 366 days per request"));
    }
    Ok((format_day(from), format_day(to)))
}

/// The report of `days` for `tenant` over `from..=to`.
pub fn report(tenant: &str, from: String, to: String, days: &[DayUsage]) -> UsageReport {
    let days: Vec<DayUsageView> = days.iter().map(DayUsageView::from).collect();
    let totals = days.iter().fold(DayUsageView::default(), |mut sum, d| {
        sum.frames += d.frames;
        sum.bytes += d.bytes;
        sum.discussions += d.discussions;
        sum.comments += d.comments;
        sum.ops += d.ops;
        sum.connections += d.connections;
        sum.peak_viewers = sum.peak_viewers.max(d.peak_viewers);
        sum
    });
    UsageReport {
        tenant: tenant.to_owned(),
        from,
        to,
        days,
        totals,
    }
}

/// Read the tenant's usage per day.
#[utoipa::path(
    get,
    path = "/admin/api/v1/tenants/{tenant}/usage",
    tag = "usage",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme"), UsageQuery),
    responses(
        (status = 200, description = "Usage per UTC day with activity, and the totals", body = UsageReport,
         example = json!({"tenant": "acme", "from": "2026-12-05", "to": "2026-12-06", "days": [{"day": "2026-12-05", "pubSubMessageCount": 18_204, "pubSubBandwidth": 7_340_112, "discussions": 12, "comments": 57, "ops": 80, "connections": 431, "peakViewers": 37}, {"day": "2026-12-06", "pubSubMessageCount": 912, "pubSubBandwidth": 301_877, "discussions": 1, "comments": 4, "ops": 6, "connections": 22, "peakViewers": 5}], "totals": {"pubSubMessageCount": 19_116, "pubSubBandwidth": 7_641_989, "discussions": 13, "comments": 61, "ops": 86, "connections": 453, "peakViewers": 37}})),
        (status = 400, description = "A date that is not YYYY-MM-DD, from after to, or more than 366 days", body = ErrorBody,
         example = json!({"code": "invalid-request", "message": "from must be a date as YYYY-MM-DD (UTC), e.g. 2026-12-06"})),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    )
)]
pub async fn get_usage(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> ApiResult<Json<UsageReport>> {
    let now = crate::app::now_ms();
    let (from, to) = range(&query, now)?;
    if let Err(err) = app.flush_usage().await {
        // The stored days are still worth answering with; what this node holds is written
        // by its next flush.
        tracing::warn!(%err, "could not write usage before reading it");
    }
    let days = app
        .store
        .read_usage(admin.id(), &from, &to)
        .await
        .map_err(|err| ApiError::store(&err))?;
    Ok(Json(report(admin.id().as_str(), from, to, &days)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_553_000_000; // 2026-12-06T10:30:00Z

    fn q(from: Option<&str>, to: Option<&str>) -> UsageQuery {
        UsageQuery {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        }
    }

    #[test]
    fn ranges_default_and_are_checked() {
        let ok = |from, to| range(&q(from, to), NOW).map_err(|e| e.to_string());
        assert_eq!(
            ok(None, None),
            Ok(("2026-11-07".into(), "2026-12-06".into()))
        );
        assert_eq!(
            ok(Some("2026-12-01"), None),
            Ok(("2026-12-01".into(), "2026-12-06".into()))
        );
        assert_eq!(
            ok(None, Some("2026-01-31")),
            Ok(("2026-01-02".into(), "2026-01-31".into()))
        );
        // 366 days, both ends included: the most one request covers.
        assert!(ok(Some("2025-12-05"), Some("2026-12-05")).is_ok());
        for (from, to) in [
            (Some("2025-12-04"), Some("2026-12-05")),
            (Some("2026-12-07"), Some("2026-12-06")),
            (Some("06/12/2026"), None),
            (None, Some("2026-02-30")),
            (Some(""), None),
        ] {
            assert!(ok(from, to).is_err(), "{from:?} {to:?}");
        }
    }
}
