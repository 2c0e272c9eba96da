//! The HTTP ingress for external customers: `POST /v1/messages` (one message or up to 1,000),
//! Bearer API keys (compared by SHA-256), RFC 7807 errors, 202 only after the broker
//! acknowledged; `GET /v1/messages/{id}`, `GET /v1/messages` (search) and
//! `GET /v1/stats/senders` from the history store. `/metrics` is not served here
//! but on the process's metrics address (`--metrics-addr`).

pub mod api;
pub mod problem;
pub mod rate_limit;
pub mod reports;
pub mod request;
pub mod search;

use std::net::SocketAddr;

use switchyard_runtime::CancellationToken;

pub use api::{Ingress, router};

/// The OpenAPI document of the ingress.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Serve the ingress on `addr` until `shutdown`; returns the bound address and the serving
/// task, which ends once the requests in progress at shutdown have been answered.
pub async fn serve(
    addr: SocketAddr,
    ingress: Ingress,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    switchyard_runtime::serve_http(addr, router(ingress), shutdown, "ingress").await
}
