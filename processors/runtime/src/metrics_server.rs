//! HTTP serving shared by every role: the metrics address (`/metrics` and `/healthz`), and
//! `serve_http`, which binds, serves a router until shutdown and logs where.

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Metrics, RuntimeError};

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A router with `GET /metrics`, to merge into a role's own router.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
                    metrics.encode(),
                )
                    .into_response()
            }
        }),
    )
}

/// Bind `addr` (port 0 picks one) and serve `app` until `shutdown`; `what` names it in logs.
/// Returns the bound address and the serving task.
pub async fn serve_http(
    addr: SocketAddr,
    app: Router,
    shutdown: CancellationToken,
    what: &'static str,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, what, "HTTP server stopped");
        }
    });
    tracing::info!(%bound, what, "listening");
    Ok((bound, task))
}

/// Serve `/metrics` and `/healthz` on `addr` until `shutdown`; returns the bound address (port
/// 0 picks one).
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Metrics,
    health: crate::Health,
    shutdown: CancellationToken,
) -> Result<SocketAddr, RuntimeError> {
    let app = metrics_router(metrics).merge(crate::health_router(health));
    Ok(serve_http(addr, app, shutdown, "metrics").await?.0)
}
