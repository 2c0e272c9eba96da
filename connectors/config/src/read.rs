//! Reading what the topics hold for the operator commands: the config tables, and the last
//! value per key of a topic.

use std::collections::HashMap;
use std::time::Duration;

use switchyard_runtime::{CancellationToken, ConfigTables, Runtime, Table};
use switchyard_schemas::Record;

use crate::ConfigError;

/// The config tables as the topics hold them now.
pub(crate) async fn tables(runtime: &Runtime) -> Result<ConfigTables, ConfigError> {
    let shutdown = CancellationToken::new();
    let tables = ConfigTables::start(runtime, shutdown.clone()).await;
    shutdown.cancel();
    Ok(tables?)
}

/// The last value per key of the logical `topic`, read to its end.
pub(crate) async fn last_values<V: Record + Clone>(
    runtime: &Runtime,
    topic: &str,
) -> Result<HashMap<String, V>, ConfigError> {
    let shutdown = CancellationToken::new();
    let table = Table::<String, V>::start(runtime, topic, shutdown.clone()).await;
    let table = match table {
        Ok(table) => table
            .wait_ready(Duration::from_secs(60))
            .await
            .map(|_| table),
        Err(e) => Err(e),
    };
    shutdown.cancel();
    Ok(table?.snapshot())
}
