//! Encode and decode records in the Confluent wire format (magic byte 0, 4-byte schema id,
//! Avro datum) through `schema_registry_converter`, registering schemas under `<topic>-value`.

use std::time::Duration;

use apache_avro::from_value;
use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::{CodecError, Record};

/// Encoder and decoder bound to one schema registry; cheap to clone, caches schemas.
#[derive(Clone, Debug)]
pub struct Codec {
    encoder: EasyAvroEncoder,
    decoder: EasyAvroDecoder,
}

impl Codec {
    /// A codec talking to the registry at `registry_url` (e.g. `http://127.0.0.1:8081`).
    pub fn new(registry_url: &str) -> Result<Self, CodecError> {
        let settings = SrSettings::new_builder(registry_url.trim_end_matches('/').to_string())
            .no_proxy()
            .set_timeout(Duration::from_secs(10))
            .build()
            .map_err(registry_error)?;
        Ok(Codec {
            encoder: EasyAvroEncoder::new(settings.clone()),
            decoder: EasyAvroDecoder::new(settings),
        })
    }

    /// Encode `record` as the value of `topic`, registering its schema on first use.
    pub async fn encode<T: Record>(&self, topic: &str, record: &T) -> Result<Vec<u8>, CodecError> {
        let schema = T::schema()?;
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
            topic.to_string(),
            false,
            SuppliedSchema::new(
                Some(schema.full_name.clone()),
                SchemaType::Avro,
                schema.json.clone(),
            ),
        );
        self.encoder
            .encode_struct(record, &strategy)
            .await
            .map_err(|e| {
                if e.error.contains("transform") || e.error.contains("Serial") {
                    CodecError::Encode(describe(&e))
                } else {
                    registry_error(e)
                }
            })
    }

    /// Decode a wire-format value into `T`, resolving the writer's schema to `T`'s schema so
    /// records written by older or newer compatible schemas still read.
    pub async fn decode<T: Record>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let reader = T::schema()?;
        if bytes.len() < 5 || bytes[0] != 0 {
            return Err(CodecError::Decode(format!(
                "not in the Confluent wire format (magic byte 0 + schema id): {} bytes starting {:02x?}",
                bytes.len(),
                &bytes[..bytes.len().min(5)]
            )));
        }
        let decoded = self.decoder.decode(Some(bytes)).await.map_err(|e| {
            if e.retriable {
                CodecError::RegistryUnavailable(describe(&e))
            } else {
                CodecError::Decode(describe(&e))
            }
        })?;
        let value = decoded
            .value
            .resolve(&reader.parsed)
            .map_err(|e| CodecError::Decode(format!("not a {}: {e}", reader.full_name)))?;
        from_value::<T>(&value)
            .map_err(|e| CodecError::Decode(format!("{}: {e}", reader.full_name)))
    }
}

fn describe(e: &SRCError) -> String {
    match &e.cause {
        Some(cause) => format!("{}: {cause}", e.error),
        None => e.error.clone(),
    }
}

fn registry_error(e: SRCError) -> CodecError {
    if e.retriable {
        CodecError::RegistryUnavailable(describe(&e))
    } else {
        CodecError::RegistryRefused(describe(&e))
    }
}
