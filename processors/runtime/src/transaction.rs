//! One transactional producer per runner: begin, commit outputs together with the consumed
//! offsets (`send_offsets_to_transaction`, checked against the group generation), abort, and
//! start over with a fresh producer when the old one is fenced or hit a fatal error.

use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;

use crate::kafka::Producer;
use rdkafka::topic_partition_list::TopicPartitionList;
use tokio_util::sync::CancellationToken;

use crate::kafka::KafkaSettings;
use crate::retry::{backoff, sleep_or_stop};

const TIMEOUT: Duration = Duration::from_secs(30);
/// How many times a commit whose answer timed out is asked again.
const COMMIT_RETRIES: u32 = 5;

/// Why a transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// The transaction was aborted (or must be): process the batch again. A retry helps.
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// The producer is fenced or broken: build a new one, then process the batch again.
    #[error("transactional producer unusable: {0}")]
    Fatal(String),
    /// The commit was sent but its outcome is unknown (it timed out, or the producer broke
    /// after sending it): the transaction may have committed. Build a new producer (which
    /// completes or aborts it) and go on from the group's committed offsets, not the batch.
    #[error("transaction outcome unknown: {0}")]
    Uncertain(String),
}

/// A transactional producer and what it needs to be rebuilt.
pub(crate) struct Transactions {
    kafka: KafkaSettings,
    id: String,
    producer: Producer,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions")
            .field("id", &self.id)
            .finish()
    }
}

impl Transactions {
    /// Create the producer for `transactional.id` = `id` and register it with the broker,
    /// waiting (with backoff) while the broker cannot be reached. `None` if stopped first.
    pub async fn start(
        kafka: &KafkaSettings,
        id: &str,
        shutdown: &CancellationToken,
    ) -> Result<Option<Self>, KafkaError> {
        let mut tries = 0;
        loop {
            let producer = kafka.transactional_producer(id)?;
            let init = producer.clone();
            match blocking(move || init.init_transactions(TIMEOUT)).await {
                Ok(()) => {
                    tracing::info!(transactional_id = id, "transactions ready");
                    return Ok(Some(Transactions {
                        kafka: kafka.clone(),
                        id: id.to_string(),
                        producer,
                    }));
                }
                Err(e) => {
                    tries += 1;
                    tracing::warn!(transactional_id = id, error = %e, tries, "cannot start transactions; retrying");
                    if sleep_or_stop(backoff(tries), shutdown).await {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The producer to send the transaction's records with.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Begin a transaction.
    pub fn begin(&self) -> Result<(), TransactionError> {
        self.producer.begin_transaction().map_err(classify)
    }

    /// Commit the records sent since `begin` together with `offsets` of the consumer group
    /// `group`; the broker refuses the offsets if the group has moved on (rebalance).
    pub async fn commit(
        &self,
        offsets: TopicPartitionList,
        group: ConsumerGroupMetadata,
    ) -> Result<(), TransactionError> {
        let producer = self.producer.clone();
        blocking(move || producer.send_offsets_to_transaction(&offsets, &group, TIMEOUT))
            .await
            .map_err(classify)?;
        // librdkafka: a commit that failed retriably (a timeout) may be called again and
        // finishes the same transaction; any other failure after sending it leaves its outcome
        // unknown unless librdkafka says the transaction must be aborted.
        let mut tries = 0;
        loop {
            let producer = self.producer.clone();
            match blocking(move || producer.commit_transaction(TIMEOUT)).await {
                Ok(()) => return Ok(()),
                Err(KafkaError::Transaction(e)) if e.is_retriable() && tries < COMMIT_RETRIES => {
                    tries += 1;
                    tracing::warn!(transactional_id = %self.id, error = %e, tries, "commit not confirmed; asking again");
                }
                Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                    return Err(TransactionError::Aborted(e.to_string()));
                }
                Err(e) => return Err(TransactionError::Uncertain(e.to_string())),
            }
        }
    }

    /// Commit the records sent since `begin` (no consumed offsets: a publish, not a stage).
    pub async fn commit_records(&self) -> Result<(), TransactionError> {
        let producer = self.producer.clone();
        blocking(move || producer.commit_transaction(TIMEOUT))
            .await
            .map_err(classify)
    }

    /// Abort the open transaction; after a fatal error, replace the producer (fencing the old
    /// one). `false` if stopped while waiting for the broker.
    pub async fn recover(
        &mut self,
        error: &TransactionError,
        shutdown: &CancellationToken,
    ) -> Result<bool, KafkaError> {
        if let TransactionError::Aborted(_) = error {
            let producer = self.producer.clone();
            match blocking(move || producer.abort_transaction(TIMEOUT)).await {
                Ok(()) => return Ok(true),
                Err(e) => {
                    tracing::warn!(transactional_id = %self.id, error = %e, "abort failed; replacing the producer")
                }
            }
        }
        match Self::start(&self.kafka, &self.id, shutdown).await? {
            Some(fresh) => {
                *self = fresh;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Abort whatever is open, on the way out (the broker would abort it after its timeout).
    pub async fn abort_quietly(&self) {
        let producer = self.producer.clone();
        if let Err(e) = blocking(move || producer.abort_transaction(TIMEOUT)).await {
            tracing::debug!(transactional_id = %self.id, error = %e, "abort on exit");
        }
    }
}

/// Whether a failed transactional call means "abort and retry" or "new producer".
fn classify(error: KafkaError) -> TransactionError {
    match &error {
        KafkaError::Transaction(e) if e.is_fatal() => TransactionError::Fatal(error.to_string()),
        _ => TransactionError::Aborted(error.to_string()),
    }
}

/// librdkafka's transactional calls block: run them off the async threads.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    match tokio::task::spawn_blocking(call).await {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "transactional call did not finish");
            Err(KafkaError::Canceled)
        }
    }
}
