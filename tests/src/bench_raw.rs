//! The broker's raw produce and consume rates, for `make bench` to set the pipeline's figures
//! against (every bench mode measures them in the same run).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::{TestEnv, apply_topics};

/// The broker's raw rates, records per second.
#[derive(Debug, Clone, Copy)]
pub struct Raw {
    pub produce_per_s: f64,
    pub consume_per_s: f64,
}

impl Raw {
    /// Messages per second the broker could carry if the pipeline did nothing but its hops.
    /// `produces` and `consumes` are the records a message costs on each side.
    pub fn fair_ceiling(&self, produces: f64, consumes: f64) -> f64 {
        (self.produce_per_s / produces).min(self.consume_per_s / consumes)
    }
}

/// Produce `records` records of 300 bytes (the runtime's idempotent producer, acks=all) to a
/// 3-partition topic `bench.raw` in `env`, then consume them in a consumer group committing
/// after every 500: rec/s of each.
pub async fn raw_rate(env: &TestEnv, records: usize) -> anyhow::Result<Raw> {
    apply_topics(env, &["bench.raw"]).await?;
    let kafka = env.kafka();
    let topic = kafka.topic("bench.raw");
    let producer = kafka.producer()?;
    let payload = vec![b'x'; 300];
    // One record first: a fresh broker makes the producer wait for its idempotence id.
    producer
        .send(
            FutureRecord::to(&topic).key("warm-up").payload(&payload),
            Duration::from_secs(60),
        )
        .await
        .map_err(|(e, _)| e)?;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(records);
    for i in 0..records {
        let key = format!("k{i}");
        loop {
            match producer.send_result(FutureRecord::to(&topic).key(&key).payload(&payload)) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                // Queue full: let deliveries drain.
                Err((_, _)) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    let produce_per_s = records as f64 / started.elapsed().as_secs_f64();

    let consumer = kafka.group_consumer("bench.raw")?;
    consumer.subscribe(&[topic.as_str()])?;
    // The clock starts at the first record (the warm-up one): joining the group is not
    // consuming; `records` more follow.
    let mut started = None;
    let mut offsets: HashMap<i32, i64> = HashMap::new();
    for n in 0..=records {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .map_err(|_| anyhow::anyhow!("raw consume: nothing for 60 s after {n} records"))??;
        started.get_or_insert_with(Instant::now);
        offsets.insert(message.partition(), message.offset() + 1);
        if n % 500 == 499 || n == records {
            let mut list = TopicPartitionList::new();
            for (partition, offset) in &offsets {
                list.add_partition_offset(&topic, *partition, Offset::Offset(*offset))?;
            }
            consumer.commit(&list, CommitMode::Async)?;
        }
    }
    let consume_per_s = records as f64 / started.map_or(1e-9, |s| s.elapsed().as_secs_f64());
    Ok(Raw {
        produce_per_s,
        consume_per_s,
    })
}
