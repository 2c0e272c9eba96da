//! Typed settings read from a sender record's `settings` map (every value a string on the
//! topic): a serde deserializer that hands each value to the field's type, parsing numbers
//! and booleans from their text. The same code reads settings in `config apply` and in the
//! dispatch role, so what apply accepts is exactly what dispatch can build.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::de::value::{Error, MapDeserializer};
use serde::de::{self, DeserializeOwned, Expected, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

/// Read `map` as `T`. The error names the field (`None` when the problem is not one field's,
/// e.g. a missing one, which serde names in the reason).
pub fn from_map<T: DeserializeOwned>(
    map: &BTreeMap<String, String>,
) -> Result<T, (Option<String>, String)> {
    let entries = map.iter().map(|(k, v)| (k.as_str(), Text(v.as_str())));
    let deserializer: MapDeserializer<'_, _, Error> = MapDeserializer::new(entries);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        let field = if path.is_empty() || path == "." {
            unknown_field(&reason)
        } else {
            Some(path)
        };
        (field, reason)
    })
}

/// The field an "unknown field `x`, expected …" error is about.
fn unknown_field(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("unknown field `")?;
    rest.split('`').next().map(str::to_string)
}

/// One setting's text, deserialized as whatever its field wants.
#[derive(Debug, Clone, Copy)]
struct Text<'a>(&'a str);

impl<'a> IntoDeserializer<'a, Error> for Text<'a> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl Text<'_> {
    fn parse<T: std::str::FromStr>(&self, expected: &dyn Expected) -> Result<T, Error>
    where
        T::Err: Display,
    {
        self.0.trim().parse().map_err(|_| {
            de::Error::custom(format!("invalid type: `{}`, expected {expected}", self.0))
        })
    }
}

macro_rules! parsed {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let value: $ty = self.parse(&visitor)?;
            visitor.$visit(value)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Text<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    parsed! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct S {
        name: String,
        #[serde(default)]
        window: usize,
        #[serde(default)]
        on: bool,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
    }

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_take_their_field_type() {
        let s: S = from_map(&map(&[
            ("name", "1588"),
            ("window", "12"),
            ("on", "true"),
            ("mode", "fast"),
        ]))
        .expect("valid");
        assert_eq!(s.name, "1588");
        assert_eq!(s.window, 12);
        assert!(s.on);
        assert_eq!(s.mode, Some(Mode::Fast));
    }

    #[test]
    fn errors_name_the_field() {
        let (field, reason) =
            from_map::<S>(&map(&[("name", "x"), ("window", "ten")])).expect_err("bad");
        assert_eq!(field.as_deref(), Some("window"));
        assert!(reason.starts_with("invalid type: `ten`"), "{reason}");
        let (field, reason) =
            from_map::<S>(&map(&[("name", "x"), ("windw", "1")])).expect_err("unknown");
        assert_eq!(field.as_deref(), Some("windw"), "{reason}");
        let (_, reason) = from_map::<S>(&map(&[])).expect_err("missing");
        assert!(reason.contains("name"), "{reason}");
        let (field, _) =
            from_map::<S>(&map(&[("name", "x"), ("mode", "slow")])).expect_err("variant");
        assert_eq!(field.as_deref(), Some("mode"));
    }
}
