//! The reading loop of a replay: receive each record of the assigned ranges, decode it (waiting
//! for the registry while it does not answer), filter it, write it, and count; a partition is
//! done at the end of its range or when it has nothing more to give.

use std::collections::BTreeMap;
use std::io::Write;

use indicatif::ProgressBar;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::TopicPartitionList;
use switchyard_runtime::{CancellationToken, Reader, retry};

use super::bounds::OffsetRange;
use super::decode::{DecodeError, Decoded, ValueDecoder};
use super::error::ReplayError;
use super::filter::Filters;
use super::output::{Replayed, Sink};
use super::progress::Summary;

/// How often a record is decoded again while the registry does not answer, before giving up.
const REGISTRY_TRIES: u32 = 6;

/// The state of one replay while it reads.
#[derive(Debug)]
pub struct Run {
    /// The partitions still being read, and their ranges.
    ranges: BTreeMap<i32, OffsetRange>,
    /// What was read so far.
    pub summary: Summary,
    bar: ProgressBar,
    /// The topic on the broker.
    physical: String,
}

impl Run {
    /// A run over the non-empty `ranges` of the `physical` topic, counting on `bar`.
    pub fn new(physical: &str, ranges: BTreeMap<i32, OffsetRange>, bar: ProgressBar) -> Self {
        Run {
            ranges: ranges.into_iter().filter(|(_, r)| !r.is_empty()).collect(),
            summary: Summary::default(),
            bar,
            physical: physical.to_string(),
        }
    }

    /// Read until every partition reached its end (or a signal, or stdout closed).
    pub async fn read<W: Write>(
        &mut self,
        consumer: &Reader,
        decoder: &ValueDecoder,
        filters: &Filters,
        topic: &str,
        sink: &mut Sink<W>,
        shutdown: &CancellationToken,
    ) -> Result<(), ReplayError> {
        while !self.ranges.is_empty() {
            let received = tokio::select! {
                _ = shutdown.cancelled() => {
                    self.summary.stopped_early = Some("interrupted");
                    return Ok(());
                }
                received = consumer.recv() => received,
            };
            let message = match received {
                Ok(message) => message,
                // Nothing more to read in this partition now: its range is done.
                Err(KafkaError::PartitionEOF(partition)) => {
                    self.close(consumer, partition);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let (partition, offset) = (message.partition(), message.offset());
            let Some(range) = self.ranges.get(&partition).copied() else {
                continue;
            };
            if offset >= range.end {
                self.close(consumer, partition);
                continue;
            }
            self.summary.read += 1;
            self.bar.inc(1);
            let decoded = decode(decoder, message.payload(), shutdown).await?;
            match decoded {
                Ok(Decoded { fields, value }) if filters.matches(&value) => {
                    let record = Replayed {
                        topic,
                        partition,
                        offset,
                        timestamp: message.timestamp().to_millis(),
                        key: message
                            .key()
                            .map(|k| String::from_utf8_lossy(k).into_owned()),
                        value: &value,
                        fields: &fields,
                    };
                    match sink.write(&record) {
                        Ok(()) => self.summary.matched += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                            self.summary.stopped_early = Some("stdout closed");
                            return Ok(());
                        }
                        Err(e) => return Err(ReplayError::Output(e.to_string())),
                    }
                }
                Ok(_) => {}
                Err(reason) => {
                    self.summary.failed += 1;
                    if self.summary.first_failure.is_none() {
                        let first = format!("partition {partition} offset {offset}: {reason}");
                        self.bar
                            .suspend(|| eprintln!("replay: cannot decode {first}"));
                        self.summary.first_failure = Some(first);
                    }
                }
            }
            if offset + 1 >= range.end {
                self.close(consumer, partition);
            }
        }
        Ok(())
    }

    /// A partition is read to its end: stop fetching it (its other partitions may take longer).
    fn close(&mut self, consumer: &Reader, partition: i32) {
        if self.ranges.remove(&partition).is_some() {
            let mut done = TopicPartitionList::new();
            done.add_partition(&self.physical, partition);
            if let Err(e) = consumer.pause(&done) {
                tracing::debug!(partition, error = %e, "cannot pause a finished partition");
            }
        }
    }
}

/// Decode one value, waiting for the registry while it does not answer; the inner error is a
/// record that will never decode (counted, not fatal).
async fn decode(
    decoder: &ValueDecoder,
    payload: Option<&[u8]>,
    shutdown: &CancellationToken,
) -> Result<Result<Decoded, DecodeError>, ReplayError> {
    let mut tries = 0;
    loop {
        match decoder.decode(payload).await {
            Err(e) if e.is_retryable() => {
                tries += 1;
                if tries >= REGISTRY_TRIES
                    || retry::sleep_or_stop(retry::backoff(tries), shutdown).await
                {
                    return Err(ReplayError::RegistryUnavailable(e));
                }
            }
            decoded => return Ok(decoded),
        }
    }
}
