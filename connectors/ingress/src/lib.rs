//! The HTTP ingress for external customers: `POST /v1/messages` (one message or up to 1,000),
//! Bearer API keys (compared by SHA-256), RFC 7807 errors, 202 only after the broker
//! acknowledged; `GET /v1/messages/{id}`, `GET /v1/messages` (search) and
//! `GET /v1/stats/senders` from the history store. `/metrics` is not served here
//! but on the process's metrics address (`--metrics-addr`).

pub mod api;
pub mod json;
pub mod problem;
pub mod rate_limit;
pub mod reports;
pub mod request;
pub mod search;
pub mod server;

use std::net::SocketAddr;

use switchyard_runtime::CancellationToken;

pub use api::{Ingress, router};
pub use server::ServerLimits;

/// The OpenAPI document of the ingress.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Serve the ingress on `addr` with the default [`ServerLimits`] until `shutdown`; returns the
/// bound address and the serving task, which ends once the requests in progress at shutdown
/// have been answered.
pub async fn serve(
    addr: SocketAddr,
    ingress: Ingress,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(addr, ingress, ServerLimits::default(), shutdown).await
}

/// The same with these connection limits (header-read and idle timeouts, connection cap).
pub async fn serve_with(
    addr: SocketAddr,
    ingress: Ingress,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    server::serve_router(addr, router(ingress), limits, shutdown, "ingress").await
}
