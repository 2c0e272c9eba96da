//! `switchyard policy words add|remove|list` (read-modify-write of a `config.policy` record
//! through the shared publish path) and `switchyard policy blocks` (the content-policy blocks
//! recorded in `messages.rejected`).

use switchyard_runtime::{ConfigTables, Output, Runtime, names};
use switchyard_schemas::{ContentPolicy, Rejection};
use switchyard_stages::policy::{keywords, night_hours};

use crate::ConfigError;
use crate::read::{last_values, tables};

/// What a words command changed in one policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WordsChange {
    pub policy_id: String,
    /// Words added or removed.
    pub changed: Vec<String>,
    /// Words already there (add) or not there (remove): nothing to do.
    pub unchanged: Vec<String>,
    /// The policy's words afterwards.
    pub words: Vec<String>,
}

impl std::fmt::Display for WordsChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "policy {}: {} changed ({}), {} unchanged ({}); {} words",
            self.policy_id,
            self.changed.len(),
            self.changed.join(", "),
            self.unchanged.len(),
            self.unchanged.join(", "),
            self.words.len()
        )
    }
}

/// A policy id must be `*` or a configured customer.
fn known_policy_id(tables: &ConfigTables, policy_id: &str) -> Result<(), ConfigError> {
    if policy_id == ContentPolicy::GLOBAL || tables.customers.get(&policy_id.to_string()).is_some()
    {
        return Ok(());
    }
    Err(ConfigError::File(format!(
        "--policy {policy_id:?} is neither \"*\" nor a configured customer"
    )))
}

/// Add words to a policy's blocklist (the policy is created with the defaults if missing).
/// Written only if something changed.
pub async fn add_words(
    runtime: &Runtime,
    policy_id: &str,
    words: &[String],
) -> Result<WordsChange, ConfigError> {
    for (i, word) in words.iter().enumerate() {
        if keywords::normalize(word).is_empty() {
            return Err(ConfigError::File(format!(
                "WORD[{i}] is {word:?}, empty once spaces and punctuation are ignored"
            )));
        }
    }
    let tables = tables(runtime).await?;
    known_policy_id(&tables, policy_id)?;
    let mut policy = tables
        .policy
        .get(&policy_id.to_string())
        .unwrap_or_else(|| ContentPolicy::new(policy_id));
    let mut change = WordsChange {
        policy_id: policy_id.to_string(),
        ..WordsChange::default()
    };
    for word in words {
        let word = word.trim().to_string();
        if policy.blocked_keywords.contains(&word) || change.changed.contains(&word) {
            change.unchanged.push(word);
        } else {
            policy.blocked_keywords.push(word.clone());
            change.changed.push(word);
        }
    }
    change.words = policy.blocked_keywords.clone();
    if !change.changed.is_empty() {
        publish(runtime, policy).await?;
    }
    Ok(change)
}

/// Remove words from a policy's blocklist; written only if something changed.
pub async fn remove_words(
    runtime: &Runtime,
    policy_id: &str,
    words: &[String],
) -> Result<WordsChange, ConfigError> {
    let tables = tables(runtime).await?;
    let Some(mut policy) = tables.policy.get(&policy_id.to_string()) else {
        return Err(ConfigError::File(format!(
            "there is no policy {policy_id:?} to remove words from"
        )));
    };
    let mut change = WordsChange {
        policy_id: policy_id.to_string(),
        ..WordsChange::default()
    };
    for word in words {
        let word = word.trim().to_string();
        let before = policy.blocked_keywords.len();
        policy.blocked_keywords.retain(|w| *w != word);
        if policy.blocked_keywords.len() < before {
            change.changed.push(word);
        } else {
            change.unchanged.push(word);
        }
    }
    change.words = policy.blocked_keywords.clone();
    if !change.changed.is_empty() {
        publish(runtime, policy).await?;
    }
    Ok(change)
}

/// Every policy's words (or only `policy_id`'s), sorted by policy id.
pub async fn list_words(
    runtime: &Runtime,
    policy_id: Option<&str>,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let tables = tables(runtime).await?;
    let mut all: Vec<(String, Vec<String>)> = tables
        .policy
        .snapshot()
        .into_iter()
        .filter(|(id, _)| policy_id.is_none_or(|p| p == id))
        .map(|(id, p)| (id, p.blocked_keywords))
        .collect();
    all.sort();
    Ok(all)
}

async fn publish(runtime: &Runtime, policy: ContentPolicy) -> Result<(), ConfigError> {
    let key = policy.policy_id.clone();
    runtime
        .publish("policy", &[Output::new(names::CONFIG_POLICY, key, policy)])
        .await?;
    Ok(())
}

/// Which blocks to list.
#[derive(Debug, Clone, Default)]
pub struct BlockFilter {
    pub customer: Option<String>,
    /// Only blocks at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Only the most recent this many.
    pub limit: Option<usize>,
}

/// One content-policy block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub rule: String,
    pub code: String,
    pub message_id: String,
    pub customer_id: String,
    pub at: i64,
    pub detail: String,
}

impl std::fmt::Display for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\t{}\t{}\t{}\t{}\t{}",
            format_kst(self.at),
            self.rule,
            self.code,
            self.message_id,
            self.customer_id,
            self.detail
        )
    }
}

/// The blocks recorded in `messages.rejected` (rejections with a rule), oldest first: the last
/// `limit` of those matching the filter.
pub async fn blocks(runtime: &Runtime, filter: &BlockFilter) -> Result<Vec<Block>, ConfigError> {
    let rejected = last_values::<Rejection>(runtime, names::REJECTED).await?;
    Ok(select_blocks(rejected.into_values(), filter))
}

/// The blocks among `rejections` that match `filter`, oldest first.
pub fn select_blocks(
    rejections: impl IntoIterator<Item = Rejection>,
    filter: &BlockFilter,
) -> Vec<Block> {
    let mut blocks: Vec<Block> = rejections
        .into_iter()
        .filter_map(|r| {
            let rule = r.rule?;
            Some(Block {
                rule,
                code: r.code,
                message_id: r.message_id,
                customer_id: r.customer_id,
                at: r.rejected_at,
                detail: r.detail,
            })
        })
        .filter(|b| filter.customer.as_ref().is_none_or(|c| *c == b.customer_id))
        .filter(|b| filter.since.is_none_or(|since| b.at >= since))
        .collect();
    blocks.sort_by(|a, b| (a.at, &a.message_id).cmp(&(b.at, &b.message_id)));
    if let Some(limit) = filter.limit
        && blocks.len() > limit
    {
        blocks.drain(..blocks.len() - limit);
    }
    blocks
}

/// A time for `--since`: ms since the epoch, a duration back from `now` (`90m`, `12h`, `7d`),
/// or a KST date and time `YYYY-MM-DD` / `YYYY-MM-DDTHH:MM` (`Z` at the end: UTC).
pub fn parse_since(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    for (suffix, unit) in [("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)] {
        if let Some(n) = text
            .strip_suffix(suffix)
            .and_then(|n| n.parse::<i64>().ok())
        {
            return Ok(now - n * unit);
        }
    }
    let (text, utc) = match text.strip_suffix('Z') {
        Some(t) => (t, true),
        None => (text, false),
    };
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00"));
    let numbers = |s: &str, sep: char| -> Option<Vec<u32>> {
        s.split(sep).map(|p| p.parse::<u32>().ok()).collect()
    };
    let bad = || format!("{text:?} is not ms, 90m/12h/7d, or YYYY-MM-DD[THH:MM] (KST; Z for UTC)");
    let d = numbers(date, '-')
        .filter(|d| d.len() == 3)
        .ok_or_else(bad)?;
    let t = numbers(time, ':')
        .filter(|t| t.len() == 2 || t.len() == 3)
        .ok_or_else(bad)?;
    let year = i32::try_from(d[0]).map_err(|_| bad())?;
    if !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) || t[0] > 23 || t[1] > 59 {
        return Err(bad());
    }
    let seconds = i64::from(t.get(2).copied().unwrap_or(0)) * 1000;
    let kst = night_hours::kst(year, d[1], d[2], t[0], t[1]) + seconds;
    Ok(if utc {
        kst + night_hours::KST_OFFSET_MS
    } else {
        kst
    })
}

/// `YYYY-MM-DD HH:MM:SS KST` of a time in ms since the epoch.
pub fn format_kst(ms: i64) -> String {
    let local = ms + night_hours::KST_OFFSET_MS;
    let days = local.div_euclid(86_400_000);
    let of_day = local.rem_euclid(86_400_000) / 1000;
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} KST",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_ms_durations_and_kst_times() {
        let now = night_hours::kst(2026, 11, 23, 22, 0);
        let cases: &[(&str, Result<i64, ()>)] = &[
            ("1700000000000", Ok(1_700_000_000_000)),
            ("90m", Ok(now - 90 * 60_000)),
            ("12h", Ok(now - 12 * 3_600_000)),
            ("7d", Ok(now - 7 * 86_400_000)),
            ("2026-11-23", Ok(night_hours::kst(2026, 11, 23, 0, 0))),
            ("2026-11-23T22:00", Ok(now)),
            ("2026-11-23T22:00:30", Ok(now + 30_000)),
            ("2026-11-23T13:00Z", Ok(now)),
            ("yesterday", Err(())),
            ("2026-13-01", Err(())),
            ("2026-11-23T25:00", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_since(text, now).map_err(|_| ()), *expected, "{text}");
        }
    }

    #[test]
    fn times_print_in_kst() {
        assert_eq!(
            format_kst(night_hours::kst(2026, 11, 23, 22, 5) + 7_000),
            "2026-11-23 22:05:07 KST"
        );
        assert_eq!(format_kst(0), "1970-01-01 09:00:00 KST");
        assert_eq!(
            format_kst(night_hours::kst(2024, 2, 29, 0, 0)),
            "2024-02-29 00:00:00 KST"
        );
    }

    fn rejection(id: &str, customer: &str, at: i64, rule: Option<&str>) -> Rejection {
        Rejection {
            message_id: id.into(),
            customer_id: customer.into(),
            code: "blocked_keyword".into(),
            detail: "rule keywords: text contains the blocked word \"대출\"".into(),
            submission: switchyard_schemas::Submission {
                message_id: Some(id.into()),
                customer_id: customer.into(),
                client_id: None,
                client_message_id: None,
                channel: switchyard_schemas::Channel::Sms,
                to: "01012345678".into(),
                from: None,
                text: "대출".into(),
                subject: None,
                bill_code: None,
                priority: switchyard_schemas::Priority::Normal,
                template_code: None,
                fallback: None,
                attachments: vec![],
                expires_at: None,
                metadata: Default::default(),
                accepted_at: at,
            },
            rejected_at: at,
            rule: rule.map(String::from),
        }
    }

    #[test]
    fn blocks_are_the_rejections_with_a_rule_filtered_newest_kept() {
        let all = vec![
            rejection("m1", "acme", 10, Some("keywords")),
            rejection("m2", "acme", 20, None), // not a block
            rejection("m3", "beta", 30, Some("night_hours")),
            rejection("m4", "acme", 40, Some("ad_marking")),
            rejection("m5", "acme", 50, Some("keywords")),
        ];
        let ids = |filter: BlockFilter| -> Vec<String> {
            select_blocks(all.clone(), &filter)
                .into_iter()
                .map(|b| b.message_id)
                .collect()
        };
        assert_eq!(ids(BlockFilter::default()), ["m1", "m3", "m4", "m5"]);
        let acme = Some("acme".to_string());
        assert_eq!(
            ids(BlockFilter {
                customer: acme.clone(),
                ..Default::default()
            }),
            ["m1", "m4", "m5"]
        );
        assert_eq!(
            ids(BlockFilter {
                since: Some(30),
                ..Default::default()
            }),
            ["m3", "m4", "m5"]
        );
        assert_eq!(
            ids(BlockFilter {
                customer: acme,
                since: Some(15),
                limit: Some(1)
            }),
            ["m5"]
        );
    }
}
