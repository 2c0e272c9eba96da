//! `switchyard replay TOPIC`: print a topic's records, decoded through the schema registry, as
//! JSON lines or CSV on stdout, for analysts; progress and a summary on stderr.

mod bounds;
mod decode;
mod error;
mod filter;
mod output;
mod progress;
mod read_loop;
mod reader;

use std::io::BufWriter;
use std::time::Instant;

use clap::Args;
use switchyard_runtime::Namespace;

use crate::context::Context;
use bounds::{Bound, OffsetRange};
use decode::ValueDecoder;
pub use error::ReplayError;
use filter::Filters;
pub use output::Format;
use output::Sink;
use read_loop::Run;

/// Exit status when some records could not be decoded (the others were printed).
pub const EXIT_DECODE_FAILURES: i32 = 4;
/// Exit status when stopped by a signal.
pub const EXIT_INTERRUPTED: i32 = 130;

/// `switchyard replay`'s arguments.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0; 4 when some records could not be decoded (the rest were \
                  printed); 130 when interrupted."
)]
pub struct ReplayArgs {
    /// The topic, by its logical name (as in `switchyard topics list`, e.g. messages.accepted).
    pub topic: String,
    /// Start (inclusive): an offset applied to every partition, or an RFC 3339 time
    /// (e.g. 2026-11-23T09:00:00Z). Default: the beginning.
    #[arg(long, value_name = "TIME|OFFSET")]
    pub from: Option<String>,
    /// End (exclusive): an offset applied to every partition, or an RFC 3339 time. Default:
    /// the end of each partition when the replay starts (records written later are not read).
    #[arg(long, value_name = "TIME|OFFSET")]
    pub to: Option<String>,
    /// Output on stdout.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Only records whose decoded value has FIELD equal to VALUE; FIELD is a dotted path
    /// (submission.channel). Repeat to require several.
    #[arg(long = "filter", value_name = "FIELD=VALUE")]
    pub filters: Vec<String>,
    /// Read in this namespace (topic prefix, e.g. `staging.`) instead of --topic-prefix.
    #[arg(long, value_name = "PREFIX")]
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
    let mut run = Run::new(&physical, ranges, bar.clone());
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
    let flushed = match flushed {
        Ok(Some((records, field))) => {
            eprintln!(
                "replay: {records} records have fields the CSV header (from the first record) \
                 lacks, e.g. {field:?}; --format jsonl shows them"
            );
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            summary.stopped_early.get_or_insert("stdout closed");
            Ok(())
        }
        Err(e) => Err(ReplayError::Output(e.to_string())),
    };
    // The summary also when the replay failed: what was printed before the error.
    eprintln!("{summary}");
    result?;
    flushed?;
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
