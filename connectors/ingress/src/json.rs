//! Request bodies parsed strictly: an object that names a key twice is refused. serde_json's
//! `Value` keeps the last of two equal keys without a word, so `{"to":"+1","to":"010…"}` would
//! mean whichever one a reader happens to keep; here it is an error that says where. It costs
//! what building a `Value` costs, plus one map lookup per key.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Item(usize),
}

/// Why a body is not a JSON document the ingress reads.
#[derive(Debug)]
pub enum JsonError {
    /// Not JSON.
    Syntax(serde_json::Error),
    /// An object names a key twice: the path of that key (from the document's root).
    DuplicateKey(Vec<Step>),
}

/// Parse `bytes` as one JSON document; an object naming a key twice is an error.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, JsonError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict {
        at: &At::Root,
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(path)) => Err(JsonError::DuplicateKey(path)),
        (Err(e), None) => Err(JsonError::Syntax(e)),
    }
}

/// `path` written as the API names fields: `metadata.k`, `attachments[0].uri`.
pub fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Item(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Where the parse is: a chain on the stack, written out only for an error.
#[derive(Debug)]
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Item(&'a At<'a>, usize),
}

impl At<'_> {
    fn path_to(&self, last: &str) -> Vec<Step> {
        let mut steps = vec![Step::Key(last.to_string())];
        let mut at = self;
        loop {
            match at {
                At::Root => break,
                At::Key(parent, key) => {
                    steps.push(Step::Key((*key).to_string()));
                    at = parent;
                }
                At::Item(parent, index) => {
                    steps.push(Step::Item(*index));
                    at = parent;
                }
            }
        }
        steps.reverse();
        steps
    }
}

#[derive(Debug, Clone, Copy)]
struct Strict<'a> {
    at: &'a At<'a>,
    duplicate: &'a RefCell<Option<Vec<Step>>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // As serde_json's own Value: JSON has no NaN or infinity, so this is always a number.
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let at = At::Item(self.at, items.len());
            let seed = Strict {
                at: &at,
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(self.at.path_to(&key));
                return Err(de::Error::custom(format_args!(
                    "the key {key:?} appears twice in one object"
                )));
            }
            let at = At::Key(self.at, &key);
            let value = map.next_value_seed(Strict {
                at: &at,
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(body: &str) -> String {
        match parse_strict(body.as_bytes()) {
            Err(JsonError::DuplicateKey(path)) => render(&path),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn the_same_document_as_serde_json_reads_when_no_key_repeats() {
        for body in [
            r#"{"a":1,"b":[1,2.5,-3,"x",null,true,{"c":{}}],"d":"\u00e9\n"}"#,
            "[]",
            "18446744073709551615",
            "-9223372036854775809",
            "1e400",
            r#""""#,
        ] {
            let strict = parse_strict(body.as_bytes()).map_err(|e| format!("{e:?}"));
            let plain: Result<Value, _> = serde_json::from_str(body).map_err(|e| format!("{e:?}"));
            match (strict, plain) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{body}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{body}: strict {a:?}, serde_json {b:?}"),
            }
        }
    }

    #[test]
    fn a_repeated_key_is_named_with_its_path() {
        assert_eq!(duplicate(r#"{"to":"+1","to":"010"}"#), "to");
        assert_eq!(
            duplicate(r#"{"messages":[{"to":"1"},{"metadata":{"k":"a","k":"b"}}]}"#),
            "messages[1].metadata.k"
        );
        assert_eq!(duplicate(r#"[[{"a":{"b":1,"b":1}}]]"#), "[0][0].a.b");
        // The same key in two objects is not a repeat.
        assert!(parse_strict(br#"[{"a":1},{"a":2}]"#).is_ok());
    }

    #[test]
    fn trailing_bytes_and_broken_json_are_syntax_errors() {
        for body in [r#"{"a":1} x"#, "{nope", "", r#"{"a":1,"#] {
            assert!(
                matches!(parse_strict(body.as_bytes()), Err(JsonError::Syntax(_))),
                "{body}"
            );
        }
    }
}
