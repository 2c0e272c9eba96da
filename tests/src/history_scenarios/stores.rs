//! The stores history tests run on: SQLite in a temporary directory, CQL in a keyspace of the
//! test's own on the run's server (`SWITCHYARD_TEST_CQL`).

use std::time::Duration;

use switchyard_history::{HistoryStore, Retention};

use crate::shared_cql;

/// A history engine the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Cql,
}

/// A store of one test: its URL and what keeps it alive (a temporary directory).
#[derive(Debug)]
pub struct TestHistory {
    pub url: String,
    pub store: HistoryStore,
    _dir: tempfile::TempDir,
}

impl Engine {
    /// A fresh store URL on this engine (`dir` holds SQLite files); `None` for CQL when the
    /// run skips CQL (`SWITCHYARD_SKIP_CQL=1`), an error when it has no server otherwise.
    pub fn fresh_url(self, dir: &std::path::Path) -> anyhow::Result<Option<String>> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Ok(match self {
            Engine::Sqlite => Some(format!(
                "sqlite://{}",
                dir.join(format!("history-{}.db", &id[..8])).display()
            )),
            Engine::Cql => shared_cql()?.map(|node| format!("cql://{node}/h{}", &id[..12])),
        })
    }

    /// A fresh, empty store on this engine (`None`: CQL skipped).
    pub async fn fresh(self) -> anyhow::Result<Option<TestHistory>> {
        self.fresh_with(Retention::default()).await
    }

    /// The same with a retention.
    pub async fn fresh_with(self, retention: Retention) -> anyhow::Result<Option<TestHistory>> {
        let dir = tempfile::tempdir()?;
        let Some(url) = self.fresh_url(dir.path())? else {
            eprintln!("CQL history tests skipped (SWITCHYARD_SKIP_CQL=1)");
            return Ok(None);
        };
        let store = HistoryStore::open_with(&url, retention).await?;
        Ok(Some(TestHistory {
            url,
            store,
            _dir: dir,
        }))
    }
}

/// The history a pipeline test runs with on an engine (`Engine::for_pipeline`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineHistory {
    /// SQLite: the pipeline's own file in its temporary directory.
    Own,
    /// CQL: a fresh keyspace on the run's server (this URL).
    Cql(String),
    /// CQL skipped this run (`SWITCHYARD_SKIP_CQL=1`): the test does nothing.
    Skipped,
}

impl Engine {
    /// The history a pipeline test on this engine runs with.
    pub fn for_pipeline(self) -> anyhow::Result<PipelineHistory> {
        Ok(match self {
            Engine::Sqlite => PipelineHistory::Own,
            Engine::Cql => match shared_cql()? {
                Some(node) => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    PipelineHistory::Cql(format!("cql://{node}/p{}", &id[..12]))
                }
                None => {
                    eprintln!("CQL pipeline test skipped (SWITCHYARD_SKIP_CQL=1)");
                    PipelineHistory::Skipped
                }
            },
        })
    }
}

impl PipelineHistory {
    /// Point the pipeline's role settings at this history.
    pub fn apply(&self, settings: &mut switchyard::pipeline::Settings) {
        if let PipelineHistory::Cql(url) = self {
            settings.history_url = url.clone();
        }
    }
}

impl TestHistory {
    /// Let `time` pass for the retention: SQLite purges as of now + `time` (an injected
    /// clock); CQL waits for the TTLs (keep `time` to seconds: retention days of a second).
    pub async fn let_pass(&self, time: Duration) -> anyhow::Result<()> {
        match &self.store {
            HistoryStore::Sqlite(_) => {
                let now = switchyard_schemas::now_millis() + i64::try_from(time.as_millis())?;
                self.store.purge_expired(now).await?;
            }
            HistoryStore::Cql(_) => tokio::time::sleep(time).await,
        }
        Ok(())
    }

    /// Drop a CQL keyspace (SQLite files go with the directory).
    pub async fn cleanup(self) -> anyhow::Result<()> {
        if let HistoryStore::Cql(cql) = &self.store {
            cql.drop_keyspace().await?;
        }
        Ok(())
    }
}
