//! `publish`: what a connector writes outside a stage (the ingress, receipts, config apply),
//! through the process's shared idempotent producer. It answers only once the broker
//! acknowledged every record, and counts them in the same metrics as the stages.

use std::time::Duration;

use rdkafka::producer::FutureRecord;

use crate::metrics::StageTopic;
use crate::permanent::{RECORD_OVERHEAD_BYTES, is_permanent, record_bytes};
use crate::processor::Output;
use crate::{Runtime, RuntimeError};

/// How long a publish waits for the broker before giving up.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the broker wrote one published record (its logical topic, as stages see it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Why a publish failed, and whether sending again can help.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A record is larger than the broker accepts; nothing was produced. Do not retry.
    #[error("a record for {topic} is {bytes} bytes; the broker accepts at most {limit}")]
    TooLarge {
        topic: String,
        bytes: usize,
        limit: usize,
    },
    /// The broker will never take this record (too large, or otherwise refused). Do not retry.
    #[error("the broker refuses the record for {topic}: {reason}")]
    Refused { topic: String, reason: String },
    /// The broker or the registry is unreachable or slow. A retry can help.
    #[error("not acknowledged for {topic}: {reason}")]
    Unavailable { topic: String, reason: String },
    /// A record cannot be encoded (the schema refuses it). Do not retry.
    #[error(transparent)]
    Encode(RuntimeError),
}

impl PublishError {
    /// Whether publishing the same records again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            PublishError::Unavailable { .. } => true,
            PublishError::Refused { .. } | PublishError::TooLarge { .. } => false,
            PublishError::Encode(e) => e.is_retriable(),
        }
    }
}

impl Runtime {
    /// Encode and produce `outputs` (logical topics) on behalf of `origin` (a metrics label:
    /// `ingress`, `receipts`, `config`), and wait until every one is acknowledged. Records
    /// larger than the broker accepts are refused before anything is produced. Answers where
    /// each record was written, in the order of `outputs`.
    pub async fn publish(
        &self,
        origin: &str,
        outputs: &[Output],
    ) -> Result<Vec<Written>, PublishError> {
        let producer = self.producer().map_err(PublishError::Encode)?;
        let encoded = self.encode_all(outputs).await?;
        self.send_all(origin, &producer, &encoded).await
    }

    /// Like `publish`, but all or nothing: several records go in one Kafka transaction, so a
    /// failure leaves none of them visible to `read_committed` readers (every switchyard
    /// consumer). For the ingress's batches (decision 0011).
    pub async fn publish_atomic(
        &self,
        origin: &str,
        outputs: &[Output],
    ) -> Result<Vec<Written>, PublishError> {
        if outputs.len() <= 1 {
            return self.publish(origin, outputs).await;
        }
        let encoded = self.encode_all(outputs).await?;
        self.atomic
            .run(self, |producer| async move {
                self.send_all(origin, &producer, &encoded).await
            })
            .await
    }

    /// Encode every output for its topic on the broker, refusing any record over the limit.
    async fn encode_all<'a>(
        &self,
        outputs: &'a [Output],
    ) -> Result<Vec<(&'a Output, String, Option<Vec<u8>>)>, PublishError> {
        let mut encoded = Vec::with_capacity(outputs.len());
        for output in outputs {
            let physical = self.kafka.topic(&output.topic);
            let payload = output
                .encode_for(&self.codec, &physical)
                .await
                .map_err(|e| PublishError::Encode(e.into()))?;
            let bytes = payload.as_ref().map_or(0, Vec::len) + output.key.len();
            let limit = self.kafka.max_record_bytes;
            if record_bytes(output.key.len(), payload.as_ref().map_or(0, Vec::len), 0) > limit {
                return Err(PublishError::TooLarge {
                    topic: output.topic.clone(),
                    bytes,
                    limit: limit.saturating_sub(RECORD_OVERHEAD_BYTES),
                });
            }
            encoded.push((output, physical, payload));
        }
        Ok(encoded)
    }

    /// Send encoded records with `producer` and wait for every acknowledgement.
    async fn send_all(
        &self,
        origin: &str,
        producer: &crate::kafka::Producer,
        encoded: &[(&Output, String, Option<Vec<u8>>)],
    ) -> Result<Vec<Written>, PublishError> {
        let sends = encoded.iter().map(|(output, physical, payload)| {
            let mut record = FutureRecord::<str, Vec<u8>>::to(physical).key(&output.key);
            if let Some(payload) = payload {
                record = record.payload(payload);
            }
            let producer = producer.clone();
            async move {
                producer
                    .send(record, PUBLISH_TIMEOUT)
                    .await
                    .map(|delivery| Written {
                        topic: output.topic.clone(),
                        partition: delivery.partition,
                        offset: delivery.offset,
                    })
                    .map_err(|(e, _)| {
                        let (topic, reason) = (output.topic.clone(), e.to_string());
                        if is_permanent(&e) {
                            PublishError::Refused { topic, reason }
                        } else {
                            PublishError::Unavailable { topic, reason }
                        }
                    })
            }
        });
        let written = futures::future::try_join_all(sends).await?;
        for (output, _, _) in encoded {
            self.metrics
                .produced
                .get_or_create(&StageTopic {
                    stage: origin.to_string(),
                    topic: output.topic.clone(),
                })
                .inc();
        }
        Ok(written)
    }
}
