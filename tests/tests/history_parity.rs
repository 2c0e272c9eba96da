//! Every history scenario (`switchyard_tests::history_scenarios`) on every engine: SQLite in a
//! temporary file and CQL (Apache Cassandra standing in for ScyllaDB, `SWITCHYARD_TEST_CQL`;
//! unset fails unless `SWITCHYARD_SKIP_CQL=1`), each on a fresh store.

use switchyard_tests::history_scenarios::{self as scenarios, Engine};

macro_rules! parity {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() -> anyhow::Result<()> {
                    run(Engine::Sqlite, |store| Box::pin(async move {
                        scenarios::$scenario(&store).await
                    })).await
                }
            )*
        }
        mod cql {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() -> anyhow::Result<()> {
                    run(Engine::Cql, |store| Box::pin(async move {
                        scenarios::$scenario(&store).await
                    })).await
                }
            )*
        }
    };
}

/// Retention on each engine: SQLite purges with an injected clock, CQL expires by TTL
/// (retention days of three seconds).
mod retention {
    use super::*;

    async fn expire(engine: Engine) -> anyhow::Result<()> {
        let Some(history) = engine.fresh_with(scenarios::short_retention()).await? else {
            return Ok(());
        };
        let outcome =
            scenarios::messages_past_their_customers_retention_leave_every_query(&history).await;
        history.cleanup().await?;
        outcome
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() -> anyhow::Result<()> {
        expire(Engine::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cql() -> anyhow::Result<()> {
        expire(Engine::Cql).await
    }
}

/// Run one scenario on a fresh store of `engine`, then drop the store.
async fn run(
    engine: Engine,
    scenario: impl FnOnce(
        switchyard_history::HistoryStore,
    ) -> futures::future::BoxFuture<'static, anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let Some(history) = engine.fresh().await? else {
        return Ok(());
    };
    let outcome = scenario(history.store.clone()).await;
    history.cleanup().await?;
    outcome
}

parity!(
    events_are_kept_once_and_status_only_moves_forward,
    the_summary_keeps_identity_and_the_latest_event_of_the_furthest_stage,
    a_message_first_seen_without_a_status_is_accepted_until_one_comes,
    undelivered_pages_skip_delivered_and_acked_reports,
    webhook_results_before_the_final_report_still_count,
    clients_see_their_own_and_customer_wide_reports,
    the_failure_summary_counts_by_result_code_within_the_range,
    searching_lists_a_clients_messages_by_time_and_filters,
    sender_statistics_count_final_outcomes_per_sender,
);
