//! Settings every sender kind shares, taken out of a sender's map before its kind reads the
//! rest: when dispatch gives up on a sender that cannot take messages (down, or throttling for
//! too long) and sends them to route for another one, and how long a submitted message may
//! wait for its receipt.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::settings::KindError;

/// The setting that says how long a sender may fail before its messages fail over.
pub const FAILOVER_AFTER_MS: &str = "failover_after_ms";
/// Its default: a carrier blip shorter than this is waited out; a longer outage moves traffic.
pub const DEFAULT_FAILOVER_AFTER_MS: u64 = 3_000;
/// The setting that says how long a sender may answer "slow down" (HTTP 429, SMPP throttled or
/// queue full) without taking anything before its messages fail over.
pub const THROTTLED_FAILOVER_AFTER_MS: &str = "throttled_failover_after_ms";
/// Its default: throttling is the carrier pacing us, normally over in seconds.
pub const DEFAULT_THROTTLED_FAILOVER_AFTER_MS: u64 = 30_000;

/// The shared settings of one sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonSettings {
    /// A submitted message with no final report this long after its submit ends unknown
    /// (3006): `receipt_deadline_seconds`, decision 0020.
    pub receipt_deadline: Duration,
    /// How long the sender may have been failing (down, unbound) before a message it cannot
    /// take goes to route for another sender instead of waiting for this one.
    pub failover_after: Duration,
    /// How long the sender may have been throttling, taking nothing, before a message it
    /// throttles goes to route for another sender.
    pub throttled_failover_after: Duration,
}

impl CommonSettings {
    /// The receipt deadline in milliseconds.
    pub fn receipt_deadline_ms(&self) -> i64 {
        i64::try_from(self.receipt_deadline.as_millis()).unwrap_or(i64::MAX)
    }
}

impl Default for CommonSettings {
    fn default() -> Self {
        CommonSettings {
            receipt_deadline: Duration::from_secs(crate::deadline::DEFAULT_SECONDS),
            failover_after: Duration::from_millis(DEFAULT_FAILOVER_AFTER_MS),
            throttled_failover_after: Duration::from_millis(DEFAULT_THROTTLED_FAILOVER_AFTER_MS),
        }
    }
}

/// The shared settings of `map`, and the rest for the kind.
pub fn split(
    map: &BTreeMap<String, String>,
) -> Result<(CommonSettings, BTreeMap<String, String>), KindError> {
    let mut rest = map.clone();
    let mut common = CommonSettings {
        receipt_deadline: Duration::from_secs(crate::deadline::take_seconds(&mut rest)?),
        ..CommonSettings::default()
    };
    if let Some(ms) = take_ms(&mut rest, FAILOVER_AFTER_MS)? {
        common.failover_after = ms;
    }
    if let Some(ms) = take_ms(&mut rest, THROTTLED_FAILOVER_AFTER_MS)? {
        common.throttled_failover_after = ms;
    }
    Ok((common, rest))
}

/// Take the duration setting `name` (whole ms, 1 ms to a day) out of `rest`, if there.
fn take_ms(
    rest: &mut BTreeMap<String, String>,
    name: &'static str,
) -> Result<Option<Duration>, KindError> {
    let Some(value) = rest.remove(name) else {
        return Ok(None);
    };
    let ms: u64 = value
        .trim()
        .parse()
        .map_err(|_| KindError::setting(name, format!("{value:?} is not a whole number of ms")))?;
    if !(1..=86_400_000).contains(&ms) {
        return Err(KindError::setting(name, "must be 1..=86400000"));
    }
    Ok(Some(Duration::from_millis(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_setting_is_taken_out_and_checked() {
        let map = BTreeMap::from([
            (FAILOVER_AFTER_MS.to_string(), "1500".to_string()),
            (THROTTLED_FAILOVER_AFTER_MS.to_string(), "9000".to_string()),
            ("window".to_string(), "4".to_string()),
        ]);
        let (common, rest) = split(&map).expect("valid");
        assert_eq!(common.failover_after, Duration::from_millis(1500));
        assert_eq!(common.throttled_failover_after, Duration::from_millis(9000));
        assert_eq!(rest.keys().collect::<Vec<_>>(), vec!["window"]);
        let (common, _) = split(&BTreeMap::new()).expect("valid");
        assert_eq!(common, CommonSettings::default());
        for bad in ["soon", "0", "-1"] {
            let map = BTreeMap::from([(FAILOVER_AFTER_MS.to_string(), bad.to_string())]);
            let e = split(&map).expect_err(bad);
            assert!(
                e.to_string().starts_with("settings.failover_after_ms:"),
                "{e}"
            );
            let map = BTreeMap::from([(THROTTLED_FAILOVER_AFTER_MS.to_string(), bad.to_string())]);
            let e = split(&map).expect_err(bad);
            assert!(
                e.to_string()
                    .starts_with("settings.throttled_failover_after_ms:"),
                "{e}"
            );
        }
    }
}
