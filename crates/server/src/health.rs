//! Liveness and readiness for orchestrators and load balancers.
//!
//! - `/healthz` (liveness): the process answers HTTP. Restarting a server that fails it is the
//!   fix.
//! - `/readyz` (readiness): this node can serve clients now — it is not shutting down, its store
//!   answers a query and its broker can carry messages, each within [`CHECK_TIMEOUT`]. A load
//!   balancer sends no new clients to a node that fails it; restarting would not fix a database
//!   that is down.
//!
//! The answer names each check as `ok` or `unavailable`; the underlying error is logged, never
//! sent (it may name files or hosts).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::App;

/// Longest one check may take before it counts as failed: a store that takes seconds to answer
/// `SELECT` cannot serve clients either.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// It answered in time.
    Ok,
    /// It failed or did not answer in time.
    Unavailable,
}

/// The `/readyz` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// `false` once shutdown has begun.
    pub accepting: bool,
    /// The store's ping.
    pub store: Check,
    /// The broker's ping.
    pub broker: Check,
}

impl Readiness {
    /// Ready only when every check passed.
    pub fn is_ready(&self) -> bool {
        self.accepting && self.store == Check::Ok && self.broker == Check::Ok
    }

    /// `200` when ready, else `503`.
    pub fn status(&self) -> StatusCode {
        if self.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// Runs `ping` within [`CHECK_TIMEOUT`]; a failure is logged under `what`.
async fn check<E: std::fmt::Display>(
    what: &'static str,
    ping: impl Future<Output = Result<(), E>>,
) -> Check {
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(())) => Check::Ok,
        Ok(Err(err)) => {
            tracing::warn!(%err, "readiness: {what} failed");
            Check::Unavailable
        }
        Err(_) => {
            tracing::warn!("readiness: {what} did not answer within {CHECK_TIMEOUT:?}");
            Check::Unavailable
        }
    }
}

/// Checks the store and the broker (at the same time).
pub async fn readiness(app: &App) -> Readiness {
    let (store, broker) = tokio::join!(
        check("store", app.store.ping()),
        check("broker", app.broker.ping())
    );
    Readiness {
        accepting: !app.shutdown.is_cancelled(),
        store,
        broker,
    }
}

/// `GET /readyz`.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let readiness = readiness(&app).await;
    (readiness.status(), Json(readiness)).into_response()
}

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes() {
        let ready = Readiness {
            accepting: true,
            store: Check::Ok,
            broker: Check::Ok,
        };
        assert_eq!(ready.status(), StatusCode::OK);
        for not in [
            Readiness {
                accepting: false,
                ..ready
            },
            Readiness {
                store: Check::Unavailable,
                ..ready
            },
            Readiness {
                broker: Check::Unavailable,
                ..ready
            },
        ] {
            assert_eq!(not.status(), StatusCode::SERVICE_UNAVAILABLE, "{not:?}");
        }
        assert_eq!(
            serde_json::to_string(&ready).ok().as_deref(),
            Some(r#"{"accepting":true,"store":"ok","broker":"ok"}"#)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_hangs_counts_as_unavailable() {
        let hangs = std::future::pending::<Result<(), std::io::Error>>();
        assert_eq!(check("test", hangs).await, Check::Unavailable);
        let fails = async { Err::<(), _>(std::io::Error::other("down")) };
        assert_eq!(check("test", fails).await, Check::Unavailable);
        assert_eq!(
            check("test", async { Ok::<(), std::io::Error>(()) }).await,
            Check::Ok
        );
    }
}
