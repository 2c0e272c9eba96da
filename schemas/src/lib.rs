//! Avro schemas of every switchyard record (`schemas/avro/*.avsc`), their Rust types, and the
//! Confluent wire-format codec that carries them through the schema registry.

mod codec;
mod error;
pub mod files;
mod ids;
pub mod limits;
mod record;
pub mod records;
pub mod unproducible;

pub use codec::Codec;
pub use error::{CodecError, SchemaError};
pub use files::LoadedSchema;
pub use ids::{derived_message_id, event_id, new_message_id, now_millis};
pub use record::{RECORD_NAMES, Record};
pub use records::*;

/// Encode a record as a bare Avro datum with its own schema (no registry, no header).
/// Used by tests and tools that need the datum without a registry.
pub fn to_datum<T: Record>(record: &T) -> Result<Vec<u8>, CodecError> {
    let schema = T::schema()?;
    let value = apache_avro::to_value(record).map_err(|e| CodecError::Encode(e.to_string()))?;
    let value = value
        .resolve(&schema.parsed)
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    apache_avro::writer::datum::GenericDatumWriter::builder(&schema.parsed)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decode a bare Avro datum written with `T`'s own schema.
pub fn from_datum<T: Record>(bytes: &[u8]) -> Result<T, CodecError> {
    let schema = T::schema()?;
    let mut reader = bytes;
    let value = apache_avro::reader::datum::GenericDatumReader::builder(&schema.parsed)
        .build()
        .and_then(|r| r.read_value(&mut reader))
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    apache_avro::from_value::<T>(&value).map_err(|e| CodecError::Decode(e.to_string()))
}
