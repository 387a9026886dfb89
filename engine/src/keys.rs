//! The byte layout of the course's local keys.
//!
//! Every local key starts with [`LOCAL_PREFIX`]; raft data of a region sits under
//! `LOCAL_PREFIX REGION_RAFT_PREFIX region_id`, region metadata under
//! `LOCAL_PREFIX REGION_META_PREFIX region_id`. Integers are 8-byte big-endian, so byte order
//! is numeric order: all raft log keys of a region are contiguous and sorted by index, and
//! regions sort by id. The layout is the original course's, so its tables carry over.
//!
//! | state | engine | key |
//! |---|---|---|
//! | raft log entry | raft | `01 02 region 01 index` |
//! | `RaftLocalState` | raft | `01 02 region 02` |
//! | `RaftApplyState` | kv | `01 02 region 03` |
//! | `RegionLocalState` | kv | `01 03 region 01` |
//! | prepare-bootstrap marker | kv | `01 01` |
//! | store identity | kv | `01 02` |
//!
//! These keys live in [`crate::Cf::Raft`], so user keys can never collide with them.

/// First byte of every local key.
pub const LOCAL_PREFIX: u8 = 0x01;
/// Second byte of the keys holding a region's raft data.
pub const REGION_RAFT_PREFIX: u8 = 0x02;
/// Second byte of the keys holding a region's metadata.
pub const REGION_META_PREFIX: u8 = 0x03;
/// Suffix of raft log keys.
pub const RAFT_LOG_SUFFIX: u8 = 0x01;
/// Suffix of the raft state key.
pub const RAFT_STATE_SUFFIX: u8 = 0x02;
/// Suffix of the apply state key.
pub const APPLY_STATE_SUFFIX: u8 = 0x03;
/// Suffix of the region state key.
pub const REGION_STATE_SUFFIX: u8 = 0x01;

/// Length of `LOCAL_PREFIX REGION_RAFT_PREFIX region_id suffix`.
pub const REGION_RAFT_PREFIX_LEN: usize = 11;
/// Length of a raft log key.
pub const RAFT_LOG_KEY_LEN: usize = 19;

/// The smallest local key.
pub const LOCAL_MIN_KEY: &[u8] = &[LOCAL_PREFIX];
/// The key just past every local key.
pub const LOCAL_MAX_KEY: &[u8] = &[LOCAL_PREFIX + 1];
/// The smallest region meta key.
pub const REGION_META_MIN_KEY: &[u8] = &[LOCAL_PREFIX, REGION_META_PREFIX];
/// The key just past every region meta key.
pub const REGION_META_MAX_KEY: &[u8] = &[LOCAL_PREFIX, REGION_META_PREFIX + 1];
/// Marks a store whose first region is written but not yet confirmed by the scheduler.
pub const PREPARE_BOOTSTRAP_KEY: &[u8] = &[LOCAL_PREFIX, 0x01];
/// Holds the store's identity (cluster id, store id).
pub const STORE_IDENT_KEY: &[u8] = &[LOCAL_PREFIX, 0x02];

fn region_key(prefix: u8, region_id: u64, suffix: u8) -> [u8; REGION_RAFT_PREFIX_LEN] {
    let mut key = [0u8; REGION_RAFT_PREFIX_LEN];
    key[0] = LOCAL_PREFIX;
    key[1] = prefix;
    key[2..10].copy_from_slice(&region_id.to_be_bytes());
    key[10] = suffix;
    key
}

/// `01 02 region`: the prefix of every raft key of a region.
pub fn region_raft_prefix(region_id: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[0] = LOCAL_PREFIX;
    key[1] = REGION_RAFT_PREFIX;
    key[2..].copy_from_slice(&region_id.to_be_bytes());
    key
}

/// The key of the raft log entry `index` of `region_id`.
pub fn raft_log_key(region_id: u64, index: u64) -> [u8; RAFT_LOG_KEY_LEN] {
    let mut key = [0u8; RAFT_LOG_KEY_LEN];
    key[..REGION_RAFT_PREFIX_LEN].copy_from_slice(&region_key(
        REGION_RAFT_PREFIX,
        region_id,
        RAFT_LOG_SUFFIX,
    ));
    key[REGION_RAFT_PREFIX_LEN..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The half-open key range `[start, end)` holding the raft log entries with index in
/// `[low, high)` of `region_id`.
pub fn raft_log_range(region_id: u64, low: u64, high: u64) -> ([u8; 19], [u8; 19]) {
    (raft_log_key(region_id, low), raft_log_key(region_id, high))
}

/// The index of a raft log key, or `None` if `key` is not one.
pub fn raft_log_index(key: &[u8]) -> Option<u64> {
    if key.len() != RAFT_LOG_KEY_LEN
        || key[0] != LOCAL_PREFIX
        || key[1] != REGION_RAFT_PREFIX
        || key[10] != RAFT_LOG_SUFFIX
    {
        return None;
    }
    let bytes: [u8; 8] = key[REGION_RAFT_PREFIX_LEN..].try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The key of a region's `RaftLocalState` (raft engine).
pub fn raft_state_key(region_id: u64) -> [u8; REGION_RAFT_PREFIX_LEN] {
    region_key(REGION_RAFT_PREFIX, region_id, RAFT_STATE_SUFFIX)
}

/// The key of a region's `RaftApplyState` (kv engine).
pub fn apply_state_key(region_id: u64) -> [u8; REGION_RAFT_PREFIX_LEN] {
    region_key(REGION_RAFT_PREFIX, region_id, APPLY_STATE_SUFFIX)
}

/// `01 03 region`: the prefix of every metadata key of a region.
pub fn region_meta_prefix(region_id: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[0] = LOCAL_PREFIX;
    key[1] = REGION_META_PREFIX;
    key[2..].copy_from_slice(&region_id.to_be_bytes());
    key
}

/// The key of a region's `RegionLocalState` (kv engine).
pub fn region_state_key(region_id: u64) -> [u8; REGION_RAFT_PREFIX_LEN] {
    region_key(REGION_META_PREFIX, region_id, REGION_STATE_SUFFIX)
}

/// Splits a region meta key into (region id, suffix), or `None` if `key` is not one.
pub fn decode_region_meta_key(key: &[u8]) -> Option<(u64, u8)> {
    if key.len() != REGION_RAFT_PREFIX_LEN || !key.starts_with(REGION_META_MIN_KEY) {
        return None;
    }
    let id: [u8; 8] = key[2..10].try_into().ok()?;
    Some((u64::from_be_bytes(id), key[10]))
}

/// The region id of an apply state key ([`apply_state_key`]), or `None` if `key` is not one.
pub fn decode_apply_state_key(key: &[u8]) -> Option<u64> {
    if key.len() != REGION_RAFT_PREFIX_LEN
        || key[..2] != [LOCAL_PREFIX, REGION_RAFT_PREFIX]
        || key[10] != APPLY_STATE_SUFFIX
    {
        return None;
    }
    let id: [u8; 8] = key[2..10].try_into().ok()?;
    Some(u64::from_be_bytes(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_the_courses() {
        assert_eq!(
            raft_log_key(1, 5).to_vec(),
            vec![1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 5]
        );
        assert_eq!(
            raft_state_key(1).to_vec(),
            vec![1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 2]
        );
        assert_eq!(
            apply_state_key(1).to_vec(),
            vec![1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 3]
        );
        assert_eq!(
            region_state_key(1).to_vec(),
            vec![1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 1]
        );
        assert_eq!(decode_region_meta_key(&region_state_key(7)), Some((7, 1)));
        assert_eq!(decode_region_meta_key(&raft_state_key(7)), None);
        assert_eq!(raft_log_index(&raft_log_key(3, 99)), Some(99));
        assert_eq!(raft_log_index(&raft_state_key(3)), None);
        assert_eq!(decode_apply_state_key(&apply_state_key(9)), Some(9));
        assert_eq!(decode_apply_state_key(&raft_state_key(9)), None);
        assert_eq!(decode_apply_state_key(&region_state_key(9)), None);
        assert_eq!(decode_apply_state_key(&raft_log_key(9, 3)), None);
    }

    proptest! {
        #[test]
        fn raft_log_keys_sort_by_region_then_index(a: (u64, u64), b: (u64, u64)) {
            let (ka, kb) = (raft_log_key(a.0, a.1), raft_log_key(b.0, b.1));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(raft_log_index(&ka), Some(a.1));
        }

        #[test]
        fn a_regions_raft_keys_stay_under_its_prefix(region: u64, index: u64) {
            let prefix = region_raft_prefix(region);
            prop_assert!(raft_log_key(region, index).starts_with(&prefix));
            prop_assert!(raft_state_key(region).starts_with(&prefix));
            prop_assert!(apply_state_key(region).starts_with(&prefix));
            // Log entries sort before the states, so a log range never covers them.
            prop_assert!(raft_log_key(region, index)[..] < raft_state_key(region)[..]);
            prop_assert!(raft_state_key(region) < apply_state_key(region));
        }

        #[test]
        fn region_meta_keys_sort_by_region_inside_the_meta_range(a: u64, b: u64) {
            let (ka, kb) = (region_state_key(a), region_state_key(b));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert!(&ka[..] >= REGION_META_MIN_KEY && &ka[..] < REGION_META_MAX_KEY);
            prop_assert!(ka.starts_with(&region_meta_prefix(a)));
            prop_assert_eq!(decode_region_meta_key(&ka), Some((a, REGION_STATE_SUFFIX)));
        }

        #[test]
        fn log_range_covers_exactly_the_indexes(region: u64, low in 0u64..1000, len in 0u64..100, probe in 0u64..1200) {
            let (start, end) = raft_log_range(region, low, low + len);
            let key = raft_log_key(region, probe);
            prop_assert_eq!(key >= start && key < end, probe >= low && probe < low + len);
        }
    }
}
