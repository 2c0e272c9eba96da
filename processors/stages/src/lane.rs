//! The priority lane a message is dispatched in (decision 0023): its priority, except that a
//! message billed to a bill code flagged `ad_check` is an ad whatever its priority, as validate
//! treats it.

use switchyard_runtime::{ConfigTables, bill_code_key, names};
use switchyard_schemas::{Priority, ValidatedMessage};

use crate::policy::ad_marking::is_ad;

/// The lane name (one of [`names::LANES`]) of a priority.
pub fn lane_of_priority(priority: Priority) -> &'static str {
    match priority {
        Priority::Otp => names::LANES[0],
        Priority::Normal => names::LANES[1],
        Priority::Bulk => names::LANES[2],
        Priority::Ad => names::LANES[3],
    }
}

/// The lane `message` goes in.
pub fn lane_of(message: &ValidatedMessage, tables: &ConfigTables) -> &'static str {
    let s = &message.submission;
    let ad_by_bill_code = s.bill_code.as_ref().is_some_and(|code| {
        tables
            .bill_codes
            .get(&bill_code_key(&message.customer_id, code))
            .is_some_and(|declared| declared.ad_check)
    });
    if is_ad(s.priority, ad_by_bill_code) {
        lane_of_priority(Priority::Ad)
    } else {
        lane_of_priority(s.priority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_priority_has_its_lane_in_order_of_precedence() {
        let lanes: Vec<&str> = [
            Priority::Otp,
            Priority::Normal,
            Priority::Bulk,
            Priority::Ad,
        ]
        .into_iter()
        .map(lane_of_priority)
        .collect();
        assert_eq!(lanes, names::LANES);
        assert_eq!(lane_of_priority(Priority::Normal), names::NORMAL_LANE);
    }
}
