//! Night hours: no ads in the quiet hours, 21:00–08:00 KST (UTC+9, no daylight saving) by
//! default. `now` is injected (ms since the epoch), never read here.

/// KST is UTC+9 all year.
pub const KST_OFFSET_MS: i64 = 9 * HOUR_MS;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The hour (0..24) a KST clock shows at `now`.
pub fn kst_hour(now: i64) -> i32 {
    // In 0..24: the cast cannot truncate.
    ((now + KST_OFFSET_MS).rem_euclid(DAY_MS) / HOUR_MS) as i32
}

/// Whether `now` is in the quiet hours from `start` (inclusive) to `end` (exclusive), KST
/// hours; wraps midnight when `start > end`; `start == end` means no quiet hours.
pub fn is_quiet(now: i64, start: i32, end: i32) -> bool {
    let hour = kst_hour(now);
    match start.cmp(&end) {
        std::cmp::Ordering::Equal => false,
        std::cmp::Ordering::Less => (start..end).contains(&hour),
        std::cmp::Ordering::Greater => hour >= start || hour < end,
    }
}

/// The first time after `now` a KST clock shows `end`:00 — when held ads are released.
pub fn release_at(now: i64, end: i32) -> i64 {
    let local = now + KST_OFFSET_MS;
    let mut release = local.div_euclid(DAY_MS) * DAY_MS + i64::from(end) * HOUR_MS;
    if release <= local {
        release += DAY_MS;
    }
    release - KST_OFFSET_MS
}

/// ms since the epoch of a KST wall-clock time (tests and tools).
pub fn kst(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> i64 {
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = i64::from(if month <= 2 { year - 1 } else { year });
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * DAY_MS + i64::from(hour) * HOUR_MS + i64::from(minute) * 60_000 - KST_OFFSET_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kst_wall_clock() {
        // 2026-11-23 00:00 KST is 2026-11-22 15:00 UTC.
        assert_eq!(kst(2026, 11, 23, 0, 0), 1_795_359_600_000);
        assert_eq!(kst_hour(kst(2026, 11, 23, 22, 30)), 22);
        assert_eq!(kst_hour(0), 9); // the epoch was 09:00 in Seoul
    }

    #[test]
    fn quiet_hours_21_to_8() {
        let cases: &[(u32, u32, bool)] = &[
            (20, 59, false),
            (21, 0, true),
            (22, 0, true),
            (23, 59, true),
            (0, 0, true),
            (3, 30, true),
            (7, 59, true),
            (8, 0, false),
            (12, 0, false),
        ];
        for (hour, minute, quiet) in cases {
            let now = kst(2026, 11, 23, *hour, *minute);
            assert_eq!(is_quiet(now, 21, 8), *quiet, "{hour}:{minute:02}");
        }
        // A daytime window and no window at all.
        assert!(is_quiet(kst(2026, 1, 1, 13, 0), 12, 14));
        assert!(!is_quiet(kst(2026, 1, 1, 14, 0), 12, 14));
        assert!(!is_quiet(kst(2026, 1, 1, 22, 0), 8, 8));
    }

    #[test]
    fn held_ads_are_released_at_the_next_8_oclock_kst() {
        // ((day, hour, minute), (release day, release hour)) in November 2026.
        type Case = ((u32, u32, u32), (u32, u32));
        let cases: &[Case] = &[
            ((23, 21, 0), (24, 8)), // evening: next morning
            ((23, 23, 59), (24, 8)),
            ((24, 0, 0), (24, 8)), // after midnight: the same morning
            ((24, 7, 59), (24, 8)),
            ((30, 22, 0), (32, 8)), // month end (32 below: December 1st)
        ];
        for ((day, hour, minute), (release_day, release_hour)) in cases {
            let now = kst(2026, 11, *day, *hour, *minute);
            let expected = if *release_day == 32 {
                kst(2026, 12, 1, *release_hour, 0)
            } else {
                kst(2026, 11, *release_day, *release_hour, 0)
            };
            assert_eq!(release_at(now, 8), expected, "{day} {hour}:{minute}");
            assert!(!is_quiet(release_at(now, 8), 21, 8));
        }
    }
}
