//! Typed access to the state a store persists per region.
//!
//! | state | engine | key (see [`engine::keys`]) | written by |
//! |---|---|---|---|
//! | raft log entries | raft | `raft_log_key(region, index)` | [`crate::PeerStorage`] on every `Ready` |
//! | [`RaftLocalState`] (hard state, last index/term) | raft | `raft_state_key(region)` | the same batch as the entries |
//! | [`RaftApplyState`] (applied index, truncated state) | kv | `apply_state_key(region)` | the same batch as the applied data |
//! | [`RegionLocalState`] (Normal/Tombstone, region) | kv | `region_state_key(region)` | bootstrap, conf change, split, snapshot |
//!
//! All of them live in [`Cf::Raft`] of their engine. Readers return `Ok(None)` for a missing
//! key and an error (never a panic) for a value that does not decode.
//!
//! Initialised regions (bootstrapped or created by a split) start at log index and term
//! [`RAFT_INIT_LOG_INDEX`] / [`RAFT_INIT_LOG_TERM`] = 5, not 0: a peer created from a raft
//! message starts at 0, so it always lags an initialised one and is brought up to date with a
//! snapshot rather than a log replay it could not do (there is no entry 1..=5 anywhere).

use engine::{keys, Cf, Engine, WriteBatch};
use proto::eraftpb::HardState;
use proto::raft_serverpb::{
    PeerState, RaftApplyState, RaftLocalState, RaftTruncatedState, RegionLocalState,
};
use proto::{metapb, raft_serverpb};

use crate::Result;

/// The term of the (virtual) last entry of a freshly initialised region's log.
pub const RAFT_INIT_LOG_TERM: u64 = 5;
/// The index of the (virtual) last entry of a freshly initialised region's log.
pub const RAFT_INIT_LOG_INDEX: u64 = 5;

/// Reads a region's [`RaftLocalState`] from the raft engine.
pub fn raft_local_state(raft: &Engine, region_id: u64) -> Result<Option<RaftLocalState>> {
    Ok(raft.get_msg_cf(Cf::Raft, &keys::raft_state_key(region_id))?)
}

/// Reads a region's [`RaftApplyState`] from the kv engine.
pub fn apply_state(kv: &Engine, region_id: u64) -> Result<Option<RaftApplyState>> {
    Ok(kv.get_msg_cf(Cf::Raft, &keys::apply_state_key(region_id))?)
}

/// Reads a region's [`RegionLocalState`] from the kv engine.
pub fn region_local_state(kv: &Engine, region_id: u64) -> Result<Option<RegionLocalState>> {
    Ok(kv.get_msg_cf(Cf::Raft, &keys::region_state_key(region_id))?)
}

/// The indexes of the raft log entries of `region_id` the raft engine holds, in order,
/// whatever the raft state says (for tests, tools and oracles: it reads the whole log).
pub fn raft_log_indexes(raft: &Engine, region_id: u64) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    raft.snapshot()?.scan_cf(
        Cf::Raft,
        &keys::raft_log_key(region_id, 0),
        Some(&keys::raft_state_key(region_id)),
        |k, _| {
            out.extend(keys::raft_log_index(k));
            true
        },
    )?;
    Ok(out)
}

/// Reads the store's identity from the kv engine (`None` before bootstrap).
pub fn store_ident(kv: &Engine) -> Result<Option<raft_serverpb::StoreIdent>> {
    Ok(kv.get_msg_cf(Cf::Raft, keys::STORE_IDENT_KEY)?)
}

/// Adds a put of a region's [`RaftLocalState`] to a raft-engine batch.
pub fn write_raft_state(wb: &mut WriteBatch, region_id: u64, state: &RaftLocalState) -> Result<()> {
    Ok(wb.put_msg_cf(Cf::Raft, &keys::raft_state_key(region_id), state)?)
}

/// Adds a put of a region's [`RaftApplyState`] to a kv-engine batch.
pub fn write_apply_state(
    wb: &mut WriteBatch,
    region_id: u64,
    state: &RaftApplyState,
) -> Result<()> {
    Ok(wb.put_msg_cf(Cf::Raft, &keys::apply_state_key(region_id), state)?)
}

/// Adds a put of `region`'s [`RegionLocalState`] (with peer state `state`) to a kv-engine
/// batch.
pub fn write_region_state(
    wb: &mut WriteBatch,
    region: &metapb::Region,
    state: PeerState,
) -> Result<()> {
    let mut s = RegionLocalState::default();
    s.set_state(state);
    s.set_region(region.clone());
    Ok(wb.put_msg_cf(Cf::Raft, &keys::region_state_key(region.id), &s)?)
}

/// The raft state of a freshly initialised region: hard state (term 5, commit 5), last
/// index 5, last term 5.
pub fn initial_raft_state() -> RaftLocalState {
    let mut s = RaftLocalState::default();
    s.set_hard_state(HardState {
        term: RAFT_INIT_LOG_TERM,
        commit: RAFT_INIT_LOG_INDEX,
        ..Default::default()
    });
    s.last_index = RAFT_INIT_LOG_INDEX;
    s.last_term = RAFT_INIT_LOG_TERM;
    s
}

/// The apply state of a freshly initialised region: applied 5, truncated at (5, 5).
pub fn initial_apply_state() -> RaftApplyState {
    let mut s = RaftApplyState {
        applied_index: RAFT_INIT_LOG_INDEX,
        ..Default::default()
    };
    s.set_truncated_state(RaftTruncatedState {
        index: RAFT_INIT_LOG_INDEX,
        term: RAFT_INIT_LOG_TERM,
        ..Default::default()
    });
    s
}

/// Adds the initial [`RaftLocalState`] of a new region to a raft-engine batch.
pub fn write_initial_raft_state(wb: &mut WriteBatch, region_id: u64) -> Result<()> {
    write_raft_state(wb, region_id, &initial_raft_state())
}

/// Adds the initial [`RaftApplyState`] of a new region to a kv-engine batch.
pub fn write_initial_apply_state(wb: &mut WriteBatch, region_id: u64) -> Result<()> {
    write_apply_state(wb, region_id, &initial_apply_state())
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Durability, EngineOptions, Engines};

    #[test]
    fn states_round_trip_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).unwrap();
        assert_eq!(raft_local_state(&engines.raft, 1).unwrap(), None);
        assert_eq!(apply_state(&engines.kv, 1).unwrap(), None);
        assert_eq!(region_local_state(&engines.kv, 1).unwrap(), None);
        assert_eq!(store_ident(&engines.kv).unwrap(), None);

        let region = metapb::Region {
            id: 1,
            ..Default::default()
        };
        let mut kv_wb = WriteBatch::new();
        write_initial_apply_state(&mut kv_wb, 1).unwrap();
        write_region_state(&mut kv_wb, &region, PeerState::Tombstone).unwrap();
        engines.kv.write(kv_wb, Durability::Sync).unwrap();
        let mut raft_wb = WriteBatch::new();
        write_initial_raft_state(&mut raft_wb, 1).unwrap();
        engines.raft.write(raft_wb, Durability::Sync).unwrap();

        let rs = raft_local_state(&engines.raft, 1).unwrap().unwrap();
        assert_eq!((rs.last_index, rs.last_term), (5, 5));
        assert_eq!(
            (rs.get_hard_state().term, rs.get_hard_state().commit),
            (5, 5)
        );
        let ap = apply_state(&engines.kv, 1).unwrap().unwrap();
        assert_eq!(ap, initial_apply_state());
        let st = region_local_state(&engines.kv, 1).unwrap().unwrap();
        assert_eq!(st.get_state(), PeerState::Tombstone);
        assert_eq!(st.get_region(), &region);
        // Other regions are untouched.
        assert_eq!(raft_local_state(&engines.raft, 2).unwrap(), None);
    }

    #[test]
    fn a_corrupt_value_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).unwrap();
        engines
            .raft
            .put_cf(Cf::Raft, &keys::raft_state_key(1), &[0xff, 0xff, 0xff])
            .unwrap();
        assert!(matches!(
            raft_local_state(&engines.raft, 1),
            Err(crate::Error::Engine(engine::Error::Decode { .. }))
        ));
    }
}
