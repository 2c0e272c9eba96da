//! The upgrade from one consumer group per retry tier (`switchyard.callback.retry.<n>`) to the
//! callback role's one group (`switchyard.callback`, which already has the offsets of
//! `reports.final`): the old groups whose offsets the role carries over on its first start
//! (`switchyard_runtime::group_upgrade`), waiting while an older instance still consumes a tier.

use switchyard_runtime::OldGroup;
use switchyard_runtime::names::{CALLBACK_RETRY_TIERS, callback_retry};

/// The consumer group retry tier `tier` had before the callback role became one consumer.
pub fn old_group(tier: u32) -> String {
    format!("switchyard.callback.retry.{tier}")
}

/// Every tier's old group, with the tier's topic.
pub fn old_groups() -> Vec<OldGroup> {
    (1..=CALLBACK_RETRY_TIERS)
        .map(|tier| OldGroup::new(old_group(tier), callback_retry(tier)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_groups_are_the_tiers_names() {
        assert_eq!(old_group(1), "switchyard.callback.retry.1");
        assert_eq!(old_group(10), "switchyard.callback.retry.10");
    }

    #[test]
    fn each_tier_topic_has_its_old_group() {
        let old = old_groups();
        assert_eq!(old.len(), 10);
        assert_eq!(
            old[2],
            OldGroup::new("switchyard.callback.retry.3", callback_retry(3))
        );
    }
}
