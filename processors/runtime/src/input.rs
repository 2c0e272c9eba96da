//! What a stage consumes: one record type (any `Record`), or several when a stage reads more
//! than one topic (validate reads submissions and balance commands); decoded by topic.

use futures::future::BoxFuture;
use switchyard_schemas::{Codec, CodecError, Record};

/// A stage's input, decoded from the wire format of the (logical) topic it was read from.
pub trait StageInput: Send + Sized + 'static {
    /// Decode `payload`, read from the logical topic `topic`.
    fn decode<'a>(
        codec: &'a Codec,
        topic: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<Self, CodecError>>;
}

impl<T: Record> StageInput for T {
    fn decode<'a>(
        codec: &'a Codec,
        _topic: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<Self, CodecError>> {
        Box::pin(codec.decode::<T>(payload))
    }
}
