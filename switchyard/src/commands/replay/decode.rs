//! Decoding any record of any topic for `switchyard replay`: the Confluent wire format through
//! the schema registry with the same decoder as the runtime's codec (`schema_registry_converter`),
//! read with the writer's own schema (replay needs no Rust type), then turned into JSON.

use std::time::Duration;

use apache_avro::types::Value as AvroValue;
use schema_registry_converter::async_impl::easy_avro::EasyAvroDecoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use serde_json::Value;
use thiserror::Error;

use super::error::ReplayError;

/// Why one record did not decode.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is not readable (not the wire format, unknown schema id, bad datum). This
    /// record will never decode; the replay counts it and goes on.
    #[error("{0}")]
    Undecodable(String),
    /// The registry did not answer. The same record may decode on a retry.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
}

impl DecodeError {
    /// Whether decoding the same bytes again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DecodeError::RegistryUnavailable(_))
    }
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The top-level field names in the writer schema's order (empty unless a record).
    pub fields: Vec<String>,
    /// The value as JSON (`null` for a tombstone).
    pub value: Value,
}

/// Decodes wire-format values through one registry; caches schemas.
#[derive(Debug, Clone)]
pub struct ValueDecoder {
    decoder: EasyAvroDecoder,
}

impl ValueDecoder {
    /// A decoder asking the registry at `registry_url` (settings as the runtime's codec).
    pub fn new(registry_url: &str) -> Result<Self, ReplayError> {
        let settings = SrSettings::new_builder(registry_url.trim_end_matches('/').to_string())
            .no_proxy()
            .set_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ReplayError::Registry(describe(&e)))?;
        Ok(ValueDecoder {
            decoder: EasyAvroDecoder::new(settings),
        })
    }

    /// Decode one record's value; `None` (a tombstone) is `null`.
    pub async fn decode(&self, payload: Option<&[u8]>) -> Result<Decoded, DecodeError> {
        let decoded = self.decoder.decode(payload).await.map_err(|e| {
            if e.retriable {
                DecodeError::RegistryUnavailable(describe(&e))
            } else {
                DecodeError::Undecodable(describe(&e))
            }
        })?;
        to_json(decoded.value)
    }
}

/// JSON of an Avro value: records and maps are objects, unions their branch, enums their
/// symbol, timestamps their number, bytes arrays of numbers.
pub fn to_json(value: AvroValue) -> Result<Decoded, DecodeError> {
    let fields = match &value {
        AvroValue::Record(fields) => fields.iter().map(|(name, _)| name.clone()).collect(),
        _ => Vec::new(),
    };
    let value = Value::try_from(value)
        .map_err(|e| DecodeError::Undecodable(format!("no JSON for the value: {e}")))?;
    Ok(Decoded { fields, value })
}

fn describe(e: &SRCError) -> String {
    match &e.cause {
        Some(cause) => format!("{}: {cause}", e.error),
        None => e.error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn records_keep_their_field_order_and_become_objects() {
        let value = AvroValue::Record(vec![
            ("zeta".into(), AvroValue::String("z".into())),
            (
                "alpha".into(),
                AvroValue::Union(1, Box::new(AvroValue::Long(7))),
            ),
            ("kind".into(), AvroValue::Enum(0, "sms".into())),
            (
                "inner".into(),
                AvroValue::Record(vec![("at".into(), AvroValue::TimestampMillis(5))]),
            ),
        ]);
        let decoded = to_json(value).expect("converts");
        assert_eq!(decoded.fields, ["zeta", "alpha", "kind", "inner"]);
        assert_eq!(
            decoded.value,
            json!({"zeta": "z", "alpha": 7, "kind": "sms", "inner": {"at": 5}})
        );
    }

    #[test]
    fn a_value_json_cannot_hold_is_undecodable() {
        let err = to_json(AvroValue::Double(f64::NAN)).expect_err("NaN has no JSON");
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn bytes_not_in_the_wire_format_are_undecodable_without_asking_the_registry() {
        // Nothing listens on port 9: a registry call would be a retryable error instead.
        let decoder = ValueDecoder::new("http://127.0.0.1:9").expect("settings");
        let err = decoder
            .decode(Some(b"plain text"))
            .await
            .expect_err("not Avro");
        assert!(matches!(err, DecodeError::Undecodable(_)), "{err:?}");
        let tombstone = decoder.decode(None).await.expect("a tombstone is null");
        assert_eq!(tombstone.value, Value::Null);
    }
}
