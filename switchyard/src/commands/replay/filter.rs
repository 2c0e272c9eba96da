//! `--filter field=value` of `switchyard replay`: a dotted path into the decoded value and the
//! text it must equal; several filters must all match.

use serde_json::Value;

use super::error::ReplayError;

/// One `path=value` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    path: Vec<String>,
    expected: String,
}

impl Filter {
    /// Parse `customer_id=acme` or `submission.channel=sms`. The value may be empty
    /// (`subject=` matches an empty string) and may contain `=`.
    pub fn parse(text: &str) -> Result<Self, ReplayError> {
        let bad = |reason: &str| ReplayError::BadArgument(format!("--filter {text:?}: {reason}"));
        let (path, expected) = text
            .split_once('=')
            .ok_or_else(|| bad("expected FIELD=VALUE, e.g. customer_id=acme"))?;
        let path: Vec<String> = path.trim().split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(bad("the field is a dotted path such as submission.channel"));
        }
        Ok(Filter {
            path,
            expected: expected.to_string(),
        })
    }

    /// Whether `value` has the field and it equals the expected text. Strings compare as they
    /// are, numbers by value (`5` matches 5 and 5.0), booleans as `true`/`false`, a null as
    /// `null`; an object or array never matches. Array elements are reached by index
    /// (`attachments.0.name`).
    pub fn matches(&self, value: &Value) -> bool {
        let mut current = value;
        for step in &self.path {
            let next = match current {
                Value::Object(fields) => fields.get(step),
                Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(next) => current = next,
                None => return false,
            }
        }
        match current {
            Value::String(text) => *text == self.expected,
            Value::Number(number) => {
                number.to_string() == self.expected
                    || matches!(
                        (number.as_f64(), self.expected.trim().parse::<f64>()),
                        (Some(a), Ok(b)) if a == b
                    )
            }
            Value::Bool(flag) => flag.to_string() == self.expected,
            Value::Null => self.expected == "null",
            Value::Object(_) | Value::Array(_) => false,
        }
    }
}

/// Every `--filter` of a replay; no filter matches every record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(Vec<Filter>);

impl Filters {
    /// Parse each `--filter` argument.
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Self, ReplayError> {
        texts
            .iter()
            .map(|t| Filter::parse(t.as_ref()))
            .collect::<Result<_, _>>()
            .map(Filters)
    }

    /// Whether every filter matches `value`.
    pub fn matches(&self, value: &Value) -> bool {
        self.0.iter().all(|f| f.matches(value))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filters(texts: &[&str]) -> Filters {
        Filters::parse(texts).expect("valid filters")
    }

    fn record() -> Value {
        json!({
            "customer_id": "acme",
            "segments": 2,
            "price": 1.5,
            "urgent": false,
            "subject": null,
            "note": "a=b",
            "submission": {"channel": "sms", "to": "01012345678", "metadata": {"k": "v"}},
            "attachments": [{"name": "a.png"}]
        })
    }

    #[test]
    fn top_level_and_dotted_fields_match() {
        assert!(filters(&["customer_id=acme"]).matches(&record()));
        assert!(filters(&["submission.channel=sms"]).matches(&record()));
        assert!(filters(&["submission.metadata.k=v"]).matches(&record()));
        assert!(filters(&["attachments.0.name=a.png"]).matches(&record()));
        assert!(!filters(&["customer_id=beta"]).matches(&record()));
        assert!(
            !filters(&["submission.channel=SMS"]).matches(&record()),
            "exact"
        );
    }

    #[test]
    fn every_filter_must_match() {
        assert!(filters(&["customer_id=acme", "submission.channel=sms"]).matches(&record()));
        assert!(!filters(&["customer_id=acme", "submission.channel=lms"]).matches(&record()));
        assert!(filters(&[]).matches(&record()), "no filter: everything");
    }

    #[test]
    fn numbers_booleans_and_nulls_compare_by_their_text() {
        assert!(filters(&["segments=2"]).matches(&record()));
        assert!(filters(&["segments=2.0"]).matches(&record()));
        assert!(filters(&["price=1.5"]).matches(&record()));
        assert!(!filters(&["segments=3"]).matches(&record()));
        assert!(filters(&["urgent=false"]).matches(&record()));
        assert!(filters(&["subject=null"]).matches(&record()));
        assert!(!filters(&["subject="]).matches(&record()));
    }

    #[test]
    fn missing_fields_and_containers_never_match() {
        assert!(!filters(&["nope=acme"]).matches(&record()));
        assert!(!filters(&["customer_id.more=acme"]).matches(&record()));
        assert!(!filters(&["submission={}"]).matches(&record()));
        assert!(!filters(&["attachments.9.name=a.png"]).matches(&record()));
        assert!(
            !filters(&["customer_id=acme"]).matches(&Value::Null),
            "tombstone"
        );
    }

    #[test]
    fn the_value_may_hold_equals_signs_and_be_empty() {
        assert!(filters(&["note=a=b"]).matches(&record()));
        assert!(filters(&["x="]).matches(&json!({"x": ""})));
    }

    #[test]
    fn malformed_filters_are_refused() {
        for text in ["customer_id", "=acme", "a..b=1", ".a=1", "a.=1"] {
            let err = Filters::parse(&[text]).expect_err(text);
            assert!(err.to_string().contains("--filter"), "{err}");
        }
    }
}
