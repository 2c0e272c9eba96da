//! Bill codes: a submission's bill code must be one its customer declared, either in the
//! customer's `bill_codes` list or as a `config.bill_codes` record; a record flagged
//! `ad_check` makes every message billed to it an ad.

use switchyard_schemas::BillCode;

/// What a bill code is for a customer: `None` if unknown, else whether it is an ad code.
pub fn lookup(code: &str, listed: &[String], declared: Option<&BillCode>) -> Option<bool> {
    match declared {
        Some(record) => Some(record.ad_check),
        None if listed.iter().any(|c| c == code) => Some(false),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(code: &str, ad_check: bool) -> BillCode {
        BillCode {
            customer_id: "acme".into(),
            code: code.into(),
            ad_check,
            description: "마케팅".into(),
        }
    }

    #[test]
    fn known_codes_and_their_ad_flag() {
        let listed = vec!["B1".to_string(), "요금-1".to_string()];
        let ad = record("AD-1", true);
        let plain = record("B2", false);
        let cases: &[(&str, Option<&BillCode>, Option<bool>)] = &[
            ("B1", None, Some(false)),
            ("요금-1", None, Some(false)),
            ("AD-1", Some(&ad), Some(true)),
            ("B2", Some(&plain), Some(false)),
            ("NOPE", None, None),
            ("b1", None, None), // codes are exact
            ("", None, None),
        ];
        for (code, declared, expected) in cases {
            assert_eq!(lookup(code, &listed, *declared), *expected, "{code}");
        }
    }
}
