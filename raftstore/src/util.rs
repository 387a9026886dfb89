//! Small facts about regions, epochs, keys and raft messages that the store checks everywhere.
//!
//! A region covers the user keys `[start_key, end_key)`; an empty `end_key` means "to the end
//! of the key space" (and an empty `start_key` "from the beginning"). Its epoch `(conf_ver,
//! version)` says which of two descriptions of it is newer: `conf_ver` grows with every applied
//! membership change, `version` with every split.

use std::cmp::Ordering;

use proto::eraftpb::{ConfState, Message, MessageType};
use proto::metapb::{Peer, Region, RegionEpoch};
use proto::raft_cmdpb::{AdminCmdType, RaftCmdRequest};

use crate::{Error, Result};

/// Whether `epoch` is older than `check` in either dimension: a smaller `version` or a smaller
/// `conf_ver`.
pub fn is_epoch_stale(epoch: &RegionEpoch, check: &RegionEpoch) -> bool {
    epoch.version < check.version || epoch.conf_ver < check.conf_ver
}

/// Compares two end keys, where an empty key is "unbounded" and sorts last.
fn cmp_end_keys(a: &[u8], b: &[u8]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

/// Whether two regions' ranges share a key.
pub fn regions_overlap(a: &Region, b: &Region) -> bool {
    // Each starts before the other ends.
    starts_before_end(a.get_start_key(), b.get_end_key())
        && starts_before_end(b.get_start_key(), a.get_end_key())
}

/// Whether a range starting at `start` begins before `end` (an empty end is unbounded).
fn starts_before_end(start: &[u8], end: &[u8]) -> bool {
    end.is_empty() || start < end
}

/// Whether `key` lies in `[region.start_key, region.end_key)`.
pub fn region_contains_key(region: &Region, key: &[u8]) -> bool {
    let end = region.get_end_key();
    key >= region.get_start_key() && (end.is_empty() || key < end)
}

/// `Ok` if `key` lies in the region, else [`Error::KeyNotInRegion`].
pub fn check_key_in_region(key: &[u8], region: &Region) -> Result<()> {
    if region_contains_key(region, key) {
        Ok(())
    } else {
        Err(Error::KeyNotInRegion {
            key: key.to_vec(),
            region: Box::new(region.clone()),
        })
    }
}

/// `Ok` if `key` lies in `[start_key, end_key]` (the end key itself counts).
pub fn check_key_in_region_inclusive(key: &[u8], region: &Region) -> Result<()> {
    let end = region.get_end_key();
    if key >= region.get_start_key() && (end.is_empty() || key <= end) {
        Ok(())
    } else {
        Err(Error::KeyNotInRegion {
            key: key.to_vec(),
            region: Box::new(region.clone()),
        })
    }
}

/// `Ok` if `key` lies strictly inside `(start_key, end_key)`: what a split key must satisfy.
pub fn check_key_in_region_exclusive(key: &[u8], region: &Region) -> Result<()> {
    let end = region.get_end_key();
    if region.get_start_key() < key && (end.is_empty() || key < end) {
        Ok(())
    } else {
        Err(Error::KeyNotInRegion {
            key: key.to_vec(),
            region: Box::new(region.clone()),
        })
    }
}

/// A peer value.
pub fn new_peer(store_id: u64, peer_id: u64) -> Peer {
    Peer {
        id: peer_id,
        store_id,
        ..Default::default()
    }
}

/// The region's peer on `store_id`, if any.
pub fn find_peer(region: &Region, store_id: u64) -> Option<&Peer> {
    region.get_peers().iter().find(|p| p.store_id == store_id)
}

/// The region's peer on `store_id`, mutably, if any.
pub fn find_peer_mut(region: &mut Region, store_id: u64) -> Option<&mut Peer> {
    region
        .mut_peers()
        .iter_mut()
        .find(|p| p.store_id == store_id)
}

/// The region's peer with id `peer_id`, if any.
pub fn find_peer_by_id(region: &Region, peer_id: u64) -> Option<&Peer> {
    region.get_peers().iter().find(|p| p.id == peer_id)
}

/// Removes the region's peer on `store_id` and returns it (`None` if there was none).
pub fn remove_peer(region: &mut Region, store_id: u64) -> Option<Peer> {
    let pos = region
        .get_peers()
        .iter()
        .position(|p| p.store_id == store_id)?;
    Some(region.mut_peers().remove(pos))
}

/// The raft membership a region's peer list describes (every peer is a voter).
pub fn conf_state_from_region(region: &Region) -> ConfState {
    ConfState {
        voters: region.get_peers().iter().map(|p| p.id).collect(),
        ..Default::default()
    }
}

/// Whether a raft message may create a peer on a store that does not know the region yet: a
/// vote request, or a heartbeat with commit 0 (a leader sends commit `min(match, committed)`,
/// which is 0 only for a follower it has never replicated to).
pub fn is_initial_msg(msg: &Message) -> bool {
    let t = msg.get_msg_type();
    t == MessageType::MsgRequestVote || (t == MessageType::MsgHeartbeat && msg.commit == 0)
}

/// Checks a command's region epoch against the region's current one. Which dimensions matter
/// depends on the command:
///
/// | command | checks |
/// |---|---|
/// | normal requests (get, put, delete, snap) | `version` (a split moves keys away) |
/// | `ChangePeer` | `conf_ver` |
/// | `Split`, `TransferLeader` | both |
/// | `CompactLog`, `InvalidAdmin` | nothing |
///
/// A command that needs a check but carries no header or epoch is an error. A mismatch is
/// [`Error::EpochNotMatch`], carrying `region` when `include_region` (so the client can
/// refresh its view).
pub fn check_region_epoch(
    req: &RaftCmdRequest,
    region: &Region,
    include_region: bool,
) -> Result<()> {
    let (check_ver, check_conf_ver) = if !req.has_admin_request() {
        (true, false)
    } else {
        match req.get_admin_request().get_cmd_type() {
            AdminCmdType::CompactLog | AdminCmdType::InvalidAdmin => (false, false),
            AdminCmdType::ChangePeer => (false, true),
            AdminCmdType::Split | AdminCmdType::TransferLeader => (true, true),
        }
    };
    if !check_ver && !check_conf_ver {
        return Ok(());
    }
    if !req.has_header() {
        return Err(Error::other("missing header"));
    }
    if !req.get_header().has_region_epoch() {
        return Err(Error::other("missing epoch"));
    }
    let from = req.get_header().get_region_epoch();
    let current = region.get_region_epoch();
    if (check_conf_ver && from.conf_ver != current.conf_ver)
        || (check_ver && from.version != current.version)
    {
        return Err(Error::EpochNotMatch {
            message: format!(
                "current epoch of region {} is (conf_ver {}, version {}), but you sent (conf_ver {}, version {})",
                region.id, current.conf_ver, current.version, from.conf_ver, from.version
            ),
            regions: if include_region {
                vec![region.clone()]
            } else {
                Vec::new()
            },
        });
    }
    Ok(())
}

/// A range of user keys `[start, end)`; an empty `end` is unbounded, as in a region.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyRange {
    /// The first key of the range (empty: from the beginning).
    pub start: Vec<u8>,
    /// The key just past the range (empty: to the end of the key space).
    pub end: Vec<u8>,
}

impl KeyRange {
    /// The range of a region's data.
    pub fn of_region(region: &Region) -> KeyRange {
        KeyRange {
            start: region.get_start_key().to_vec(),
            end: region.get_end_key().to_vec(),
        }
    }

    /// The upper bound as an iterator bound (`None` = unbounded).
    pub fn end_bound(&self) -> Option<&[u8]> {
        (!self.end.is_empty()).then_some(self.end.as_slice())
    }

    /// Whether the two ranges share a key.
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        starts_before_end(&self.start, &other.end) && starts_before_end(&other.start, &self.end)
    }

    /// Whether the range holds no key.
    pub fn is_empty(&self) -> bool {
        !self.end.is_empty() && self.start >= self.end
    }
}

/// The parts of `old`'s range that `new` no longer covers: the data to delete when a region
/// shrinks (a snapshot for a narrower region replaces a wider one). At most two ranges, in key
/// order, never empty ones.
pub fn extra_data_ranges(old: &Region, new: &Region) -> Vec<KeyRange> {
    let (os, oe) = (old.get_start_key(), old.get_end_key());
    let (ns, ne) = (new.get_start_key(), new.get_end_key());
    let mut out = Vec::with_capacity(2);
    // Left of the new range: [old start, min(new start, old end)).
    if os < ns {
        let end = if cmp_end_keys(ns, oe) == Ordering::Less {
            ns
        } else {
            oe
        };
        out.push(KeyRange {
            start: os.to_vec(),
            end: end.to_vec(),
        });
    }
    // Right of the new range: [max(new end, old start), old end); nothing if new is unbounded.
    if !ne.is_empty() && cmp_end_keys(ne, oe) == Ordering::Less {
        let start = if ne > os { ne } else { os };
        out.push(KeyRange {
            start: start.to_vec(),
            end: oe.to_vec(),
        });
    }
    out.retain(|r| !r.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proto::raft_cmdpb::{AdminRequest, RaftRequestHeader};

    fn region(start: &[u8], end: &[u8]) -> Region {
        Region {
            id: 1,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            ..Default::default()
        }
    }

    fn epoch(conf_ver: u64, version: u64) -> RegionEpoch {
        RegionEpoch {
            conf_ver,
            version,
            ..Default::default()
        }
    }

    // The original's TestCheckKeyInRegion table: (key, start, end, in, inclusive, exclusive).
    #[test]
    fn key_in_region_table() {
        type Case = (
            &'static [u8],
            &'static [u8],
            &'static [u8],
            bool,
            bool,
            bool,
        );
        let cases: &[Case] = &[
            (b"", b"", b"", true, true, false),
            (b"", b"", &[6], true, true, false),
            (b"", &[3], &[6], false, false, false),
            (&[4], &[3], &[6], true, true, true),
            (&[4], b"", &[6], true, true, true),
            (&[3], &[3], &[6], true, true, false),
            (&[2], &[3], &[6], false, false, false),
            (b"", &[3], b"", false, false, false),
            (&[6], &[3], &[6], false, true, false),
        ];
        for &(key, start, end, is_in, inclusive, exclusive) in cases {
            let r = region(start, end);
            assert_eq!(region_contains_key(&r, key), is_in, "{key:?} in {r:?}");
            match check_key_in_region(key, &r) {
                Ok(()) => assert!(is_in),
                Err(Error::KeyNotInRegion { key: k, region: rr }) => {
                    assert!(!is_in);
                    assert_eq!((k.as_slice(), &*rr), (key, &r));
                }
                Err(e) => panic!("unexpected {e}"),
            }
            assert_eq!(check_key_in_region_inclusive(key, &r).is_ok(), inclusive);
            assert_eq!(check_key_in_region_exclusive(key, &r).is_ok(), exclusive);
        }
    }

    #[test]
    fn epoch_staleness_is_per_dimension() {
        let e = epoch(10, 10);
        assert!(!is_epoch_stale(&e, &epoch(10, 10)));
        assert!(!is_epoch_stale(&e, &epoch(10, 1)));
        assert!(!is_epoch_stale(&e, &epoch(1, 10)));
        assert!(is_epoch_stale(&e, &epoch(10, 11)));
        assert!(is_epoch_stale(&e, &epoch(11, 10)));
        assert!(is_epoch_stale(&e, &epoch(11, 11)));
    }

    #[test]
    fn initial_messages_are_votes_and_commit_zero_heartbeats() {
        let msg = |t: MessageType, commit: u64| Message {
            msg_type: t,
            commit,
            ..Default::default()
        };
        assert!(is_initial_msg(&msg(MessageType::MsgRequestVote, 0)));
        assert!(is_initial_msg(&msg(MessageType::MsgRequestVote, 7)));
        assert!(is_initial_msg(&msg(MessageType::MsgHeartbeat, 0)));
        assert!(!is_initial_msg(&msg(MessageType::MsgHeartbeat, 1)));
        assert!(!is_initial_msg(&msg(MessageType::MsgAppend, 0)));
        assert!(!is_initial_msg(&msg(
            MessageType::MsgRequestVoteResponse,
            0
        )));
    }

    fn admin(t: AdminCmdType) -> RaftCmdRequest {
        let mut req = RaftCmdRequest::default();
        req.set_admin_request(AdminRequest {
            cmd_type: t,
            ..Default::default()
        });
        req
    }

    fn with_epoch(mut req: RaftCmdRequest, e: &RegionEpoch) -> RaftCmdRequest {
        req.set_header(RaftRequestHeader {
            region_epoch: Some(e.clone()).into(),
            ..Default::default()
        });
        req
    }

    // The original's TestCheckRegionEpoch.
    #[test]
    fn region_epoch_checks_depend_on_the_command() {
        let e = epoch(2, 2);
        let mut r = region(b"", b"");
        r.set_region_epoch(e.clone());

        // Normal requests need an epoch even if empty.
        assert!(check_region_epoch(&RaftCmdRequest::default(), &r, false).is_err());
        assert!(check_region_epoch(&with_epoch(RaftCmdRequest::default(), &e), &r, false).is_ok());

        for t in [AdminCmdType::CompactLog, AdminCmdType::InvalidAdmin] {
            assert!(check_region_epoch(&admin(t), &r, false).is_ok());
            let req = with_epoch(admin(t), &epoch(9, 9));
            assert!(check_region_epoch(&req, &r, true).is_ok());
        }

        // (command, checks version, checks conf_ver)
        for (t, ver, conf) in [
            (AdminCmdType::Split, true, true),
            (AdminCmdType::TransferLeader, true, true),
            (AdminCmdType::ChangePeer, false, true),
        ] {
            assert!(
                check_region_epoch(&admin(t), &r, false).is_err(),
                "{t:?} needs an epoch"
            );
            let mut missing = admin(t);
            missing.set_header(RaftRequestHeader::default());
            assert!(check_region_epoch(&missing, &r, false).is_err());
            assert!(check_region_epoch(&with_epoch(admin(t), &e), &r, false).is_ok());
            for (other, differs) in [
                (epoch(2, 1), ver),
                (epoch(2, 3), ver),
                (epoch(1, 2), conf),
                (epoch(3, 2), conf),
            ] {
                let req = with_epoch(admin(t), &other);
                match check_region_epoch(&req, &r, true) {
                    Ok(()) => assert!(!differs, "{t:?} {other:?}"),
                    Err(Error::EpochNotMatch { regions, .. }) => {
                        assert!(differs, "{t:?} {other:?}");
                        assert_eq!(regions, vec![r.clone()]);
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
                if let Err(Error::EpochNotMatch { regions, .. }) =
                    check_region_epoch(&req, &r, false)
                {
                    assert!(regions.is_empty());
                }
            }
        }
    }

    #[test]
    fn peers_are_found_and_removed_by_store() {
        let mut r = region(b"", b"");
        r.mut_peers().push(new_peer(1, 11));
        r.mut_peers().push(new_peer(2, 12));
        assert_eq!(find_peer(&r, 2).map(|p| p.id), Some(12));
        assert_eq!(find_peer(&r, 3), None);
        assert_eq!(find_peer_by_id(&r, 11).map(|p| p.store_id), Some(1));
        if let Some(p) = find_peer_mut(&mut r, 1) {
            p.id = 21;
        }
        assert_eq!(conf_state_from_region(&r).voters, vec![21, 12]);
        assert_eq!(remove_peer(&mut r, 1), Some(new_peer(1, 21)));
        assert_eq!(remove_peer(&mut r, 1), None);
        assert_eq!(r.get_peers(), &[new_peer(2, 12)][..]);
    }

    #[test]
    fn extra_ranges_when_a_region_shrinks() {
        let kr = |s: &[u8], e: &[u8]| KeyRange {
            start: s.to_vec(),
            end: e.to_vec(),
        };
        assert_eq!(
            extra_data_ranges(&region(b"", b""), &region(b"", b"")),
            vec![]
        );
        assert_eq!(
            extra_data_ranges(&region(b"", b""), &region(b"b", b"d")),
            vec![kr(b"", b"b"), kr(b"d", b"")]
        );
        assert_eq!(
            extra_data_ranges(&region(b"a", b"z"), &region(b"a", b"m")),
            vec![kr(b"m", b"z")]
        );
        // A new unbounded end never clears the right side (the original got this case wrong).
        assert_eq!(
            extra_data_ranges(&region(b"a", b"m"), &region(b"c", b"")),
            vec![kr(b"a", b"c")]
        );
        // Growing clears nothing.
        assert_eq!(
            extra_data_ranges(&region(b"c", b"m"), &region(b"a", b"")),
            vec![]
        );
    }

    fn arb_region() -> impl Strategy<Value = Region> {
        (
            prop::collection::vec(0u8..4, 0..3),
            prop::collection::vec(0u8..4, 0..3),
        )
            .prop_filter("non-empty range", |(s, e)| e.is_empty() || s < e)
            .prop_map(|(s, e)| region(&s, &e))
    }

    proptest! {
        // Two ranges overlap iff the later of their starts lies in both.
        #[test]
        fn regions_overlap_iff_the_later_start_is_in_both(a in arb_region(), b in arb_region()) {
            let w = a.get_start_key().max(b.get_start_key());
            prop_assert_eq!(
                regions_overlap(&a, &b),
                region_contains_key(&a, w) && region_contains_key(&b, w)
            );
            prop_assert_eq!(regions_overlap(&a, &b), regions_overlap(&b, &a));
        }

        // A key is cleared iff the old region held it and the new one does not.
        #[test]
        fn extra_ranges_cover_exactly_old_minus_new(
            old in arb_region(),
            new in arb_region(),
            key in prop::collection::vec(0u8..4, 0..4),
        ) {
            let ranges = extra_data_ranges(&old, &new);
            let in_ranges = ranges.iter().any(|r| region_contains_key(&region(&r.start, &r.end), &key));
            prop_assert_eq!(
                in_ranges,
                region_contains_key(&old, &key) && !region_contains_key(&new, &key)
            );
        }
    }
}
