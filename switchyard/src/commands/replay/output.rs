//! How replayed records are written: one JSON object per line, or CSV with a header from the
//! value's top-level fields (nested values as JSON text).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per record and line: metadata plus the decoded value.
    Jsonl,
    /// A header line, then one row per record: metadata plus the value's top-level fields.
    Csv,
}

/// One record as it is printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replayed<'a> {
    /// The logical topic (without the namespace).
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp, ms since the epoch.
    pub timestamp: Option<i64>,
    /// The key as text (lossy when not UTF-8); `null` without one.
    pub key: Option<String>,
    /// The decoded value; `null` for a tombstone.
    pub value: &'a Value,
    /// The value's top-level fields in schema order (CSV columns).
    #[serde(skip)]
    pub fields: &'a [String],
}

/// The metadata columns that come before the value's fields in CSV.
pub const META_COLUMNS: [&str; 5] = ["topic", "partition", "offset", "timestamp", "key"];

/// Writes records in one format.
#[derive(Debug)]
pub enum Sink<W: Write> {
    Jsonl(W),
    Csv(Box<CsvSink<W>>),
}

impl<W: Write> Sink<W> {
    /// A sink writing `format` to `out`.
    pub fn new(format: Format, out: W) -> Self {
        match format {
            Format::Jsonl => Sink::Jsonl(out),
            Format::Csv => Sink::Csv(Box::new(CsvSink {
                writer: csv::Writer::from_writer(out),
                columns: None,
                outside: 0,
                first_outside: None,
            })),
        }
    }

    /// Write one record.
    pub fn write(&mut self, record: &Replayed<'_>) -> io::Result<()> {
        match self {
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, record)?;
                out.write_all(b"\n")
            }
            Sink::Csv(csv) => csv.write(record),
        }
    }

    /// Flush what is buffered; in CSV, records with fields outside the header and the first
    /// such field.
    pub fn finish(&mut self) -> io::Result<Option<(u64, String)>> {
        match self {
            Sink::Jsonl(out) => out.flush().map(|()| None),
            Sink::Csv(csv) => {
                csv.writer.flush()?;
                Ok(csv.first_outside.clone().map(|field| (csv.outside, field)))
            }
        }
    }
}

/// CSV: the columns are fixed by the first record written.
#[derive(Debug)]
pub struct CsvSink<W: Write> {
    writer: csv::Writer<W>,
    columns: Option<Columns>,
    /// Records with top-level fields the header lacks (written without them).
    outside: u64,
    first_outside: Option<String>,
}

/// The value columns.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Columns {
    /// The first record's top-level fields, in schema order.
    Fields(Vec<String>),
    /// One `value` column holding the whole value (the first value was not a record).
    Whole,
}

impl<W: Write> CsvSink<W> {
    fn write(&mut self, record: &Replayed<'_>) -> io::Result<()> {
        let columns = match &self.columns {
            Some(columns) => columns,
            None => {
                let columns = header(record);
                let names: Vec<&str> = match &columns {
                    Columns::Fields(names) => names.iter().map(String::as_str).collect(),
                    Columns::Whole => vec!["value"],
                };
                self.writer
                    .write_record(META_COLUMNS.iter().copied().chain(names))?;
                self.columns.insert(columns)
            }
        };
        let meta = [
            record.topic.to_string(),
            record.partition.to_string(),
            record.offset.to_string(),
            record.timestamp.map(|t| t.to_string()).unwrap_or_default(),
            record.key.clone().unwrap_or_default(),
        ];
        let cells: Vec<String> = match (columns, record.value) {
            (Columns::Whole, value) => vec![cell(value)],
            (Columns::Fields(names), Value::Object(fields)) => {
                if let Some(extra) = fields.keys().find(|k| !names.contains(k)) {
                    self.outside += 1;
                    self.first_outside.get_or_insert_with(|| extra.clone());
                }
                names
                    .iter()
                    .map(|name| fields.get(name).map(cell).unwrap_or_default())
                    .collect()
            }
            (Columns::Fields(names), _) => vec![String::new(); names.len()],
        };
        self.writer.write_record(meta.into_iter().chain(cells))?;
        Ok(())
    }
}

/// The value columns of a first record: its fields in schema order (any the schema order
/// lacks after them), or the whole value when it is not a record.
fn header(record: &Replayed<'_>) -> Columns {
    match record.value {
        Value::Object(fields) => {
            let mut columns: Vec<String> = record
                .fields
                .iter()
                .filter(|name| fields.contains_key(*name))
                .cloned()
                .collect();
            let extra: Vec<String> = fields
                .keys()
                .filter(|k| !columns.contains(k))
                .cloned()
                .collect();
            columns.extend(extra);
            Columns::Fields(columns)
        }
        _ => Columns::Whole,
    }
}

/// One CSV cell: text as it is, numbers and booleans as written, null empty, objects and arrays
/// as JSON text.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Object(_) | Value::Array(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn replayed<'a>(value: &'a Value, fields: &'a [String], offset: i64) -> Replayed<'a> {
        Replayed {
            topic: "messages.accepted",
            partition: 2,
            offset,
            timestamp: Some(1_700_000_000_000),
            key: Some("acme".into()),
            value,
            fields,
        }
    }

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn written(format: Format, records: &[Replayed<'_>]) -> (String, Option<(u64, String)>) {
        let mut out = Vec::new();
        let mut sink = Sink::new(format, &mut out);
        for record in records {
            sink.write(record).expect("writes");
        }
        let outside = sink.finish().expect("flushes");
        drop(sink);
        (String::from_utf8(out).expect("utf-8"), outside)
    }

    #[test]
    fn jsonl_is_one_object_per_line_with_metadata() {
        let value = json!({"customer_id": "acme", "n": 1});
        let names = fields(&["customer_id", "n"]);
        let (text, _) = written(
            Format::Jsonl,
            &[replayed(&value, &names, 7), replayed(&Value::Null, &[], 8)],
        );
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            json!({"topic": "messages.accepted", "partition": 2, "offset": 7,
                   "timestamp": 1_700_000_000_000_i64, "key": "acme",
                   "value": {"customer_id": "acme", "n": 1}})
        );
        assert_eq!(lines[1]["value"], Value::Null);
    }

    #[test]
    fn csv_has_a_header_in_schema_order_and_quotes_properly() {
        let first = json!({"text": "hi, \"you\"\nthere", "customer_id": "acme",
                           "submission": {"channel": "sms"}, "tags": [1, 2], "subject": null,
                           "n": 3});
        let names = fields(&["text", "customer_id", "submission", "tags", "subject", "n"]);
        let (text, outside) = written(Format::Csv, &[replayed(&first, &names, 1)]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_string)
            .collect();
        assert_eq!(
            header,
            [
                "topic",
                "partition",
                "offset",
                "timestamp",
                "key",
                "text",
                "customer_id",
                "submission",
                "tags",
                "subject",
                "n"
            ]
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        assert_eq!(rows.len(), 1);
        let row: Vec<&str> = rows[0].iter().collect();
        assert_eq!(
            row,
            [
                "messages.accepted",
                "2",
                "1",
                "1700000000000",
                "acme",
                "hi, \"you\"\nthere",
                "acme",
                r#"{"channel":"sms"}"#,
                "[1,2]",
                "",
                "3"
            ]
        );
        assert_eq!(outside, None);
    }

    #[test]
    fn csv_columns_come_from_the_first_record_and_extra_fields_are_counted() {
        let first = json!({"a": 1});
        let second = json!({"a": 2, "b": "new"});
        let third = json!({"b": "only"});
        let a = fields(&["a"]);
        let ab = fields(&["a", "b"]);
        let b = fields(&["b"]);
        let (text, outside) = written(
            Format::Csv,
            &[
                replayed(&first, &a, 1),
                replayed(&second, &ab, 2),
                replayed(&third, &b, 3),
                replayed(&Value::Null, &[], 4),
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "topic,partition,offset,timestamp,key,a");
        assert_eq!(lines.len(), 5);
        assert!(lines[3].ends_with(",acme,"), "{}", lines[3]);
        assert_eq!(outside, Some((2, "b".to_string())));
    }

    #[test]
    fn a_first_value_that_is_no_record_fills_one_value_column() {
        let later = json!({"a": 1});
        let (text, outside) = written(
            Format::Csv,
            &[replayed(&Value::Null, &[], 1), replayed(&later, &[], 2)],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "topic,partition,offset,timestamp,key,value");
        assert!(lines[1].ends_with(",acme,"), "{}", lines[1]);
        assert!(lines[2].ends_with(r#","{""a"":1}""#), "{}", lines[2]);
        assert_eq!(outside, None);
    }

    #[test]
    fn cells_flatten_one_level() {
        assert_eq!(cell(&json!("x")), "x");
        assert_eq!(cell(&json!(1.5)), "1.5");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&Value::Null), "");
        assert_eq!(cell(&json!({"k": [1]})), r#"{"k":[1]}"#);
    }
}
