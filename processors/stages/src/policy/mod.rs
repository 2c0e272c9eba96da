//! The content and billing rules validate applies, each a plain function in its own file with
//! table-driven tests: bill codes, ad marking, the keyword blocklist, night hours, encodings
//! and lengths. No I/O here: validate hands them the tables and the time.

pub mod ad_marking;
pub mod bill_codes;
pub mod encoding;
pub mod keywords;
pub mod night_hours;

use switchyard_schemas::ContentPolicy;

/// Rule names as written in `Rejection.rule`: the content-policy blocks.
pub mod rules {
    pub const AD_MARKING: &str = "ad_marking";
    pub const KEYWORDS: &str = "keywords";
    pub const NIGHT_HOURS: &str = "night_hours";
    /// Every rule whose refusals are blocks (`switchyard policy blocks`).
    pub const ALL: [&str; 3] = [AD_MARKING, KEYWORDS, NIGHT_HOURS];
}

/// The policy that applies to one customer: the global policy (`*`) with the customer's own
/// added on top. Keywords are the union of both; the ad marking and quiet hours are the
/// customer's own when it has a policy, else the global one's, else the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub blocked_keywords: Vec<String>,
    pub ad_prefix: String,
    pub ad_opt_out_marker: String,
    pub quiet_start_hour: i32,
    pub quiet_end_hour: i32,
}

/// Combine the global policy and the customer's own.
pub fn effective(global: Option<ContentPolicy>, own: Option<ContentPolicy>) -> Effective {
    let mut blocked_keywords = Vec::new();
    for policy in [&global, &own].into_iter().flatten() {
        for word in &policy.blocked_keywords {
            if !blocked_keywords.contains(word) {
                blocked_keywords.push(word.clone());
            }
        }
    }
    let base = own
        .or(global)
        .unwrap_or_else(|| ContentPolicy::new(ContentPolicy::GLOBAL));
    Effective {
        blocked_keywords,
        ad_prefix: base.ad_prefix,
        ad_opt_out_marker: base.ad_opt_out_marker,
        quiet_start_hour: base.ad_quiet_start_hour,
        quiet_end_hour: base.ad_quiet_end_hour,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(id: &str, words: &[&str], start: i32) -> ContentPolicy {
        ContentPolicy {
            blocked_keywords: words.iter().map(|w| w.to_string()).collect(),
            ad_quiet_start_hour: start,
            ..ContentPolicy::new(id)
        }
    }

    #[test]
    fn the_customer_policy_adds_to_the_global_one() {
        // (global, own, effective words, effective quiet start)
        type Case<'a> = (
            Option<ContentPolicy>,
            Option<ContentPolicy>,
            &'a [&'a str],
            i32,
        );
        let cases: &[Case] = &[
            (None, None, &[], 21),
            (Some(policy("*", &["대출"], 22)), None, &["대출"], 22),
            (None, Some(policy("acme", &["도박"], 20)), &["도박"], 20),
            (
                Some(policy("*", &["대출", "도박"], 22)),
                Some(policy("acme", &["도박", "카지노"], 20)),
                &["대출", "도박", "카지노"],
                20,
            ),
        ];
        for (global, own, words, start) in cases {
            let e = effective(global.clone(), own.clone());
            assert_eq!(e.blocked_keywords, *words, "{global:?} {own:?}");
            assert_eq!(e.quiet_start_hour, *start);
            assert_eq!(e.ad_prefix, "(광고)");
        }
    }
}
