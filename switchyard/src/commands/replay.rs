//! `switchyard replay TOPIC`: print a topic's records, decoded through the schema registry, as
//! JSON lines or CSV on stdout, for analysts; progress and a summary on stderr.

mod bounds;
mod decode;
mod error;
mod filter;
mod output;
mod progress;
mod reader;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::time::Instant;

use clap::Args;
use rdkafka::Message;
use rdkafka::error::KafkaError;
use switchyard_runtime::{CancellationToken, Namespace, retry};

use crate::context::Context;
use bounds::{Bound, OffsetRange};
use decode::{DecodeError, Decoded, ValueDecoder};
pub use error::ReplayError;
use filter::Filters;
pub use output::Format;
use output::{Replayed, Sink};
use progress::Summary;

/// Exit status when some records could not be decoded (the others were printed).
pub const EXIT_DECODE_FAILURES: i32 = 4;
/// Exit status when stopped by a signal.
pub const EXIT_INTERRUPTED: i32 = 130;

/// How often a record is decoded again while the registry does not answer, before giving up.
const REGISTRY_TRIES: u32 = 6;

/// `switchyard replay`'s arguments.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The topic, by its logical name (as in `switchyard topics list`, e.g. messages.accepted).
    pub topic: String,
    /// Start (inclusive): an offset applied to every partition, or an RFC 3339 time
    /// (e.g. 2026-11-23T09:00:00Z). Default: the beginning.
    #[arg(long)]
    pub from: Option<String>,
    /// End (exclusive): an offset applied to every partition, or an RFC 3339 time. Default:
    /// the end of each partition when the replay starts (records written later are not read).
    #[arg(long)]
    pub to: Option<String>,
    /// Output on stdout.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Only records whose decoded value has FIELD equal to VALUE; FIELD is a dotted path
    /// (submission.channel). Repeat to require several.
    #[arg(long = "filter", value_name = "FIELD=VALUE")]
    pub filters: Vec<String>,
    /// Read in this namespace (topic prefix, e.g. `staging.`) instead of --topic-prefix.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Draw progress on stderr even when it is not a terminal (as one line a second).
    #[arg(long)]
    pub progress: bool,
}

/// Run a replay; the exit status: 0, or `EXIT_DECODE_FAILURES`, or `EXIT_INTERRUPTED`.
pub async fn run(app: &Context, args: ReplayArgs) -> anyhow::Result<i32> {
    match replay(app, args).await {
        Ok(status) => Ok(status),
        Err(e) if e.is_retryable() => {
            Err(anyhow::Error::new(e).context("replay stopped; this may pass: run it again"))
        }
        Err(e) => Err(e.into()),
    }
}

async fn replay(app: &Context, args: ReplayArgs) -> Result<i32, ReplayError> {
    let from = args
        .from
        .as_deref()
        .map(|t| Bound::parse("--from", t))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|t| Bound::parse("--to", t))
        .transpose()?;
    bounds::check_order(from, to)?;
    let filters = Filters::parse(&args.filters)?;
    let kafka = match args.namespace {
        Some(prefix) => app.kafka.clone().in_namespace(Namespace::new(prefix)),
        None => app.kafka.clone(),
    };
    // A name given with its prefix is taken as the physical name.
    let logical = kafka.namespace.logical(&args.topic).to_string();
    let physical = kafka.topic(&logical);
    let decoder = ValueDecoder::new(&app.schema_registry_url)?;

    let started = Instant::now();
    let consumer = reader::consumer(&kafka)?;
    let ranges = reader::plan(&consumer, &logical, &physical, from, to)?;
    reader::assign(&consumer, &physical, &ranges)?;
    let total: u64 = ranges.values().map(OffsetRange::len).sum();
    let bar = progress::bar(total, args.progress);

    let stdout = BufWriter::with_capacity(256 * 1024, std::io::stdout());
    let mut sink = Sink::new(args.format, stdout);
    let mut run = Run {
        ranges: ranges.into_iter().filter(|(_, r)| !r.is_empty()).collect(),
        summary: Summary::default(),
        bar: bar.clone(),
    };
    let result = run
        .read(
            &consumer,
            &decoder,
            &filters,
            &logical,
            &mut sink,
            &app.shutdown,
        )
        .await;
    let flushed = sink.finish();
    let mut summary = run.summary;
    if result.is_ok() && summary.stopped_early.is_none() {
        // Offsets that hold no record (transaction markers, aborted records) count as done.
        bar.finish();
    } else {
        bar.abandon();
    }
    summary.elapsed = started.elapsed();
    result?;
    match flushed {
        Ok(Some((records, field))) => eprintln!(
            "replay: {records} records have fields the CSV header (from the first record) \
             lacks, e.g. {field:?}; --format jsonl shows them"
        ),
        Ok(None) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            summary.stopped_early.get_or_insert("stdout closed");
        }
        Err(e) => return Err(ReplayError::Output(e.to_string())),
    }
    eprintln!("{summary}");
    Ok(if summary.stopped_early == Some("interrupted") {
        EXIT_INTERRUPTED
    } else if summary.failed > 0 {
        eprintln!(
            "replay: exit status {EXIT_DECODE_FAILURES}: {} records could not be decoded",
            summary.failed
        );
        EXIT_DECODE_FAILURES
    } else {
        0
    })
}

/// The state of one replay while it reads.
struct Run {
    /// The partitions still being read, and their ranges.
    ranges: BTreeMap<i32, OffsetRange>,
    summary: Summary,
    bar: indicatif::ProgressBar,
}

impl Run {
    /// Read until every partition reached its end (or a signal, or stdout closed).
    async fn read<W: Write>(
        &mut self,
        consumer: &switchyard_runtime::Reader,
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
                    self.close(partition);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let (partition, offset) = (message.partition(), message.offset());
            let Some(range) = self.ranges.get(&partition).copied() else {
                continue;
            };
            if offset >= range.end {
                self.close(partition);
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
                self.close(partition);
            }
        }
        Ok(())
    }

    /// A partition is read to its end.
    fn close(&mut self, partition: i32) {
        self.ranges.remove(&partition);
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
