//! A Confluent-compatible schema registry (`switchyard registry`) whose only state is the
//! compacted `_schemas` topic: restarts and several instances agree on every id.

pub mod api;
mod compatibility;
mod error;
mod log;
mod service;
mod state;

use std::net::SocketAddr;

use switchyard_runtime::{CancellationToken, KafkaSettings, Metrics, metrics_router};

pub use compatibility::{Compatibility, incompatibilities};
pub use error::RegistryError;
pub use log::SchemaLog;
pub use service::{Registry, SubjectVersion};
pub use state::RegistryState;

/// The topic the registry keeps its state in (logical name; the namespace applies).
pub const SCHEMAS_TOPIC: &str = switchyard_runtime::names::SCHEMAS;

/// Open the store, bind `addr` (port 0 picks one) and serve until `shutdown`.
/// Returns the bound address and the task serving it.
pub async fn serve(
    kafka: &KafkaSettings,
    addr: SocketAddr,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), RegistryError> {
    let log = SchemaLog::open(kafka, &kafka.topic(SCHEMAS_TOPIC), shutdown.clone()).await?;
    let app = api::router(Registry::new(log)).merge(metrics_router(metrics));
    let (bound, task) = switchyard_runtime::serve_http(addr, app, shutdown, "schema registry")
        .await
        .map_err(RegistryError::store)?;
    Ok((bound, task))
}
