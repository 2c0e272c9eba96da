//! What a stage is: a plain function from one decoded input (+ read-only tables it holds) to
//! the outputs it wants produced. No Kafka in here, so every stage is unit-tested without it.

use futures::future::BoxFuture;
use switchyard_schemas::{Codec, CodecError, Record};

use crate::input::StageInput;
use crate::state::StateStore;

/// Where an input record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Producer timestamp in milliseconds, if the broker kept one.
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
}

/// Input that is well-formed Avro but cannot be processed (fails envelope validation).
/// The runtime sends it to the dead-letter topic with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Invalid {
    pub reason: String,
}

impl Invalid {
    /// An invalid input with a reason a person can act on.
    pub fn new(reason: impl Into<String>) -> Self {
        Invalid {
            reason: reason.into(),
        }
    }
}

/// Why a stage did not turn an input into outputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// The input is bad: it goes to the dead-letter topic. A retry will not help.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Something the stage needs is down (a table not ready, a store busy): the runner waits
    /// and processes the same input again. A retry can help.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl StageError {
    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, StageError::Unavailable(_))
    }
}

/// One stage's logic: a plain function.
pub trait Processor: Send + Sync + 'static {
    /// The record type(s) of the input topics.
    type Input: StageInput;

    /// Turn one input into the records to produce. Must be deterministic for a given input
    /// and table state, and idempotent downstream (outputs are keyed by stable ids), because
    /// at-least-once delivery can hand the same input over twice.
    fn process(&self, input: Self::Input, origin: Origin<'_>) -> Result<Vec<Output>, StageError>;

    /// The records that end the message of `input` when the broker can never take its outputs
    /// (too large, invalid: `reason`), e.g. a compact rejection or failed report. The runtime
    /// dead-letters the input and produces these instead, so the message gets its one final
    /// report; the default is none (stages after the final report). Keep them small: a field
    /// that may have caused the trouble is cut or left out.
    fn unproducible(&self, _input: Self::Input, _origin: Origin<'_>, _reason: &str) -> Vec<Output> {
        Vec::new()
    }

    /// Called once an output is acknowledged by the broker.
    fn produced(&self, _topic: &str, _key: &str) {}

    /// Called before a batch is processed again after a failed produce.
    fn batch_failed(&self) {}

    /// Called once every output of a batch is acknowledged, before its offsets are committed:
    /// a sink writes what it buffered. An error makes the runner process the batch again.
    fn flush(&self) -> Result<(), StageError> {
        Ok(())
    }

    /// The state store the runtime keeps for this stage, if it has one (`state/`): restored
    /// per partition before use, its changes written with each batch.
    fn state(&self) -> Option<&StateStore> {
        None
    }
}

/// A stage whose work waits on the outside world (a connector: HTTP, a store). The runner
/// processes up to `concurrency()` inputs of a batch at once and keeps their outputs in order.
pub trait AsyncProcessor: Send + Sync + 'static {
    /// The record type(s) of the input topics.
    type Input: StageInput;

    /// Turn one input into the records to produce (same contract as `Processor::process`).
    fn process<'a>(
        &'a self,
        input: Self::Input,
        origin: Origin<'a>,
    ) -> BoxFuture<'a, Result<Vec<Output>, StageError>>;

    /// How many inputs of a batch may be in progress at once.
    fn concurrency(&self) -> usize {
        1
    }

    /// The records that end the message of a poison input (see `Processor::unproducible`).
    fn unproducible(&self, _input: Self::Input, _origin: Origin<'_>, _reason: &str) -> Vec<Output> {
        Vec::new()
    }

    /// Called once an output is acknowledged by the broker (for stages that remember what
    /// they emitted).
    fn produced(&self, _topic: &str, _key: &str) {}

    /// Called when a batch's outputs could not all be produced and the batch is processed
    /// again: forget anything remembered as in flight.
    fn batch_failed(&self) {}

    /// Called once every output of a batch is acknowledged, before its offsets are committed.
    fn flush(&self) -> BoxFuture<'_, Result<(), StageError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// The state store the runtime keeps for this stage (see `Processor::state`).
    fn state(&self) -> Option<&StateStore> {
        None
    }
}

impl<P: Processor> AsyncProcessor for P {
    type Input = P::Input;

    fn unproducible(&self, input: Self::Input, origin: Origin<'_>, reason: &str) -> Vec<Output> {
        Processor::unproducible(self, input, origin, reason)
    }

    fn produced(&self, topic: &str, key: &str) {
        Processor::produced(self, topic, key);
    }

    fn batch_failed(&self) {
        Processor::batch_failed(self);
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), StageError>> {
        Box::pin(std::future::ready(Processor::flush(self)))
    }

    fn state(&self) -> Option<&StateStore> {
        Processor::state(self)
    }

    fn process<'a>(
        &'a self,
        input: Self::Input,
        origin: Origin<'a>,
    ) -> BoxFuture<'a, Result<Vec<Output>, StageError>> {
        Box::pin(std::future::ready(Processor::process(self, input, origin)))
    }
}

/// A record to produce: topic, key and an Avro value (or a tombstone).
pub struct Output {
    pub topic: String,
    pub key: String,
    value: Option<Box<dyn EncodeRecord>>,
    /// For a delayed topic: when the record may run (ms since the epoch), sent as the
    /// `switchyard.due-at` header; None = its timestamp plus the topic's delay.
    due_at: Option<i64>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("topic", &self.topic)
            .field("key", &self.key)
            .field("tombstone", &self.value.is_none())
            .finish()
    }
}

impl Output {
    /// A record `value` under `key` on `topic`.
    pub fn new<T: Record>(topic: impl Into<String>, key: impl Into<String>, value: T) -> Self {
        Output {
            topic: topic.into(),
            key: key.into(),
            value: Some(Box::new(value)),
            due_at: None,
        }
    }

    /// The same record, to run no earlier than `at` (ms since the epoch) on a delayed topic.
    pub fn due_at(mut self, at: i64) -> Self {
        self.due_at = Some(at);
        self
    }

    /// When the record may run, if set.
    pub fn due(&self) -> Option<i64> {
        self.due_at
    }

    /// A tombstone: deletes `key` from a compacted topic.
    pub fn tombstone(topic: impl Into<String>, key: impl Into<String>) -> Self {
        Output {
            topic: topic.into(),
            key: key.into(),
            value: None,
            due_at: None,
        }
    }

    /// The value, if it is of type `T` (for tests of stage logic).
    pub fn value<T: Record>(&self) -> Option<&T> {
        self.value.as_ref()?.as_any().downcast_ref::<T>()
    }

    /// Whether this output deletes its key.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Encode the value in the wire format for `self.topic` (None for a tombstone).
    pub async fn encode(&self, codec: &Codec) -> Result<Option<Vec<u8>>, CodecError> {
        self.encode_for(codec, &self.topic).await
    }

    /// Encode the value for the topic named `physical` on the broker (its subject is
    /// `<physical>-value`); None for a tombstone.
    pub async fn encode_for(
        &self,
        codec: &Codec,
        physical: &str,
    ) -> Result<Option<Vec<u8>>, CodecError> {
        match &self.value {
            Some(value) => value.encode(codec, physical).await.map(Some),
            None => Ok(None),
        }
    }
}

/// A record of any type that can encode itself (type erasure for `Output`).
trait EncodeRecord: Send + Sync {
    fn encode<'a>(
        &'a self,
        codec: &'a Codec,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, CodecError>>;
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<T: Record> EncodeRecord for T {
    fn encode<'a>(
        &'a self,
        codec: &'a Codec,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, CodecError>> {
        Box::pin(codec.encode(topic, self))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
