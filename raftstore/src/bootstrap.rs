//! Bootstrapping a store and the cluster's first region.
//!
//! A brand-new store first writes its identity ([`bootstrap_store`]). The store that
//! bootstraps the cluster then writes the first region locally ([`prepare_bootstrap_cluster`]):
//! a prepare-bootstrap marker plus the region's initial states, all durable, *before* asking
//! the scheduler to accept the cluster. If the scheduler accepts, the marker is dropped
//! ([`clear_prepare_bootstrap_state`]); if another store won the race, the region is dropped
//! too ([`clear_prepare_bootstrap`]). A store that restarts with the marker present resumes
//! from [`prepare_bootstrap_region`].

use engine::{keys, Cf, Durability, Engine, Engines, WriteBatch};
use proto::metapb::{Peer, Region, RegionEpoch};
use proto::raft_serverpb::{PeerState, RegionLocalState, StoreIdent};

use crate::meta::{write_initial_apply_state, write_initial_raft_state, write_region_state};
use crate::util::new_peer;
use crate::{Error, Result};

/// `version` of the first region's epoch.
pub const INIT_EPOCH_VER: u64 = 1;
/// `conf_ver` of the first region's epoch.
pub const INIT_EPOCH_CONF_VER: u64 = 1;

/// Whether `[start, end)` of `cf` holds no key (`end = None`: unbounded).
pub(crate) fn range_is_empty(
    engine: &Engine,
    cf: Cf,
    start: &[u8],
    end: Option<&[u8]>,
) -> Result<bool> {
    let mut it = engine.iter_cf(cf, start, end)?;
    it.seek_to_first();
    let empty = !it.valid();
    it.status()?;
    Ok(empty)
}

/// Writes the store's identity. Fails with [`Error::StoreNotEmpty`] unless both engines are
/// completely empty: bootstrapping twice, or over old data, would mix two stores' state.
pub fn bootstrap_store(engines: &Engines, cluster_id: u64, store_id: u64) -> Result<()> {
    for &cf in engine::Cf::KV_ENGINE {
        if !range_is_empty(&engines.kv, cf, &[], None)? {
            return Err(Error::StoreNotEmpty("kv"));
        }
    }
    for &cf in engine::Cf::RAFT_ENGINE {
        if !range_is_empty(&engines.raft, cf, &[], None)? {
            return Err(Error::StoreNotEmpty("raft"));
        }
    }
    let ident = StoreIdent {
        cluster_id,
        store_id,
        ..Default::default()
    };
    let mut wb = WriteBatch::new();
    wb.put_msg_cf(Cf::Raft, keys::STORE_IDENT_KEY, &ident)?;
    engines.kv.write(wb, Durability::Sync)?;
    Ok(())
}

/// The cluster's first region: range `["", "")`, epoch (conf_ver 1, version 1), the given
/// peers.
pub fn new_first_region(region_id: u64, peers: Vec<Peer>) -> Region {
    let mut region = Region {
        id: region_id,
        ..Default::default()
    };
    region.set_region_epoch(RegionEpoch {
        conf_ver: INIT_EPOCH_CONF_VER,
        version: INIT_EPOCH_VER,
        ..Default::default()
    });
    region.set_peers(peers.into());
    region
}

/// Builds the first region with one peer (`peer_id` on `store_id`), writes it with
/// [`prepare_bootstrap_cluster`] and returns it.
pub fn prepare_bootstrap(
    engines: &Engines,
    store_id: u64,
    region_id: u64,
    peer_id: u64,
) -> Result<Region> {
    let region = new_first_region(region_id, vec![new_peer(store_id, peer_id)]);
    prepare_bootstrap_cluster(engines, &region)?;
    Ok(region)
}

/// Writes the first region locally, durably:
/// - kv engine, one batch: the prepare-bootstrap marker (holding the region's
///   `RegionLocalState`), the `RegionLocalState` (Normal, region) and the `RaftApplyState`
///   (applied 5, truncated (5, 5));
/// - raft engine: the `RaftLocalState` (hard state term 5, commit 5; last index 5, last term 5).
///
/// The kv batch goes first: a crash in between leaves the marker, and the restarted store
/// redoes the whole preparation (the raft state is written again, idempotently).
pub fn prepare_bootstrap_cluster(engines: &Engines, region: &Region) -> Result<()> {
    let mut state = RegionLocalState::default();
    state.set_state(PeerState::Normal);
    state.set_region(region.clone());
    let mut kv_wb = WriteBatch::new();
    kv_wb.put_msg_cf(Cf::Raft, keys::PREPARE_BOOTSTRAP_KEY, &state)?;
    write_region_state(&mut kv_wb, region, PeerState::Normal)?;
    write_initial_apply_state(&mut kv_wb, region.id)?;
    engines.kv.write(kv_wb, Durability::Sync)?;

    let mut raft_wb = WriteBatch::new();
    write_initial_raft_state(&mut raft_wb, region.id)?;
    engines.raft.write(raft_wb, Durability::Sync)?;
    Ok(())
}

/// The region a previous [`prepare_bootstrap_cluster`] wrote, if its marker is still there.
pub fn prepare_bootstrap_region(kv: &Engine) -> Result<Option<Region>> {
    let state: Option<RegionLocalState> = kv.get_msg_cf(Cf::Raft, keys::PREPARE_BOOTSTRAP_KEY)?;
    Ok(state.map(|mut s| s.take_region()))
}

/// Undoes [`prepare_bootstrap_cluster`] for `region_id` (another store bootstrapped the
/// cluster first): deletes its raft state, then the marker, region state and apply state.
pub fn clear_prepare_bootstrap(engines: &Engines, region_id: u64) -> Result<()> {
    let mut raft_wb = WriteBatch::new();
    raft_wb.delete_cf(Cf::Raft, &keys::raft_state_key(region_id))?;
    engines.raft.write(raft_wb, Durability::Sync)?;

    let mut kv_wb = WriteBatch::new();
    kv_wb.delete_cf(Cf::Raft, keys::PREPARE_BOOTSTRAP_KEY)?;
    kv_wb.delete_cf(Cf::Raft, &keys::region_state_key(region_id))?;
    kv_wb.delete_cf(Cf::Raft, &keys::apply_state_key(region_id))?;
    engines.kv.write(kv_wb, Durability::Sync)?;
    Ok(())
}

/// Drops the prepare-bootstrap marker once the scheduler accepted the cluster; the region
/// stays.
pub fn clear_prepare_bootstrap_state(engines: &Engines) -> Result<()> {
    let mut wb = WriteBatch::new();
    wb.delete_cf(Cf::Raft, keys::PREPARE_BOOTSTRAP_KEY)?;
    engines.kv.write(wb, Durability::Sync)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{apply_state, raft_local_state, region_local_state, store_ident};
    use engine::EngineOptions;

    fn open_engines() -> (tempfile::TempDir, Engines) {
        let dir = tempfile::tempdir().unwrap();
        let engines = Engines::open(dir.path(), &EngineOptions::for_tests()).unwrap();
        (dir, engines)
    }

    // The original's TestBootstrapStore, with the values checked too.
    #[test]
    fn bootstrap_store_then_prepare_and_clear() {
        let (_dir, engines) = open_engines();
        bootstrap_store(&engines, 1, 1).unwrap();
        assert!(matches!(
            bootstrap_store(&engines, 1, 1),
            Err(Error::StoreNotEmpty("kv"))
        ));
        let ident = store_ident(&engines.kv).unwrap().unwrap();
        assert_eq!((ident.cluster_id, ident.store_id), (1, 1));

        let region = prepare_bootstrap(&engines, 1, 1, 1).unwrap();
        assert_eq!(region.id, 1);
        assert!(region.start_key.is_empty() && region.end_key.is_empty());
        let epoch = region.get_region_epoch();
        assert_eq!((epoch.conf_ver, epoch.version), (1, 1));
        assert_eq!(region.get_peers(), &[new_peer(1, 1)][..]);

        assert_eq!(
            prepare_bootstrap_region(&engines.kv).unwrap(),
            Some(region.clone())
        );
        let state = region_local_state(&engines.kv, 1).unwrap().unwrap();
        assert_eq!(state.get_state(), PeerState::Normal);
        assert_eq!(state.get_region(), &region);
        let apply = apply_state(&engines.kv, 1).unwrap().unwrap();
        assert_eq!(apply.applied_index, 5);
        let t = apply.get_truncated_state();
        assert_eq!((t.index, t.term), (5, 5));
        let raft = raft_local_state(&engines.raft, 1).unwrap().unwrap();
        let hs = raft.get_hard_state();
        assert_eq!((hs.term, hs.vote, hs.commit), (5, 0, 5));
        assert_eq!((raft.last_index, raft.last_term), (5, 5));

        clear_prepare_bootstrap_state(&engines).unwrap();
        assert_eq!(prepare_bootstrap_region(&engines.kv).unwrap(), None);
        // The region survives dropping just the marker.
        assert!(region_local_state(&engines.kv, 1).unwrap().is_some());

        clear_prepare_bootstrap(&engines, 1).unwrap();
        let meta = (keys::region_meta_prefix(1), keys::region_meta_prefix(2));
        assert!(range_is_empty(&engines.kv, Cf::Raft, &meta.0, Some(&meta.1)).unwrap());
        let raft_keys = (keys::region_raft_prefix(1), keys::region_raft_prefix(2));
        assert!(range_is_empty(&engines.kv, Cf::Raft, &raft_keys.0, Some(&raft_keys.1)).unwrap());
        assert!(range_is_empty(&engines.raft, Cf::Raft, &raft_keys.0, Some(&raft_keys.1)).unwrap());
        // The identity stays.
        assert!(store_ident(&engines.kv).unwrap().is_some());
    }

    #[test]
    fn bootstrap_refuses_engines_with_old_data() {
        let (_dir, engines) = open_engines();
        engines.kv.put_cf(Cf::Default, b"k", b"v").unwrap();
        assert!(matches!(
            bootstrap_store(&engines, 1, 1),
            Err(Error::StoreNotEmpty("kv"))
        ));

        let (_dir, engines) = open_engines();
        engines
            .raft
            .put_cf(Cf::Raft, &keys::raft_state_key(9), b"x")
            .unwrap();
        assert!(matches!(
            bootstrap_store(&engines, 1, 1),
            Err(Error::StoreNotEmpty("raft"))
        ));
    }

    #[test]
    fn first_region_holds_all_given_peers() {
        let r = new_first_region(7, vec![new_peer(1, 1), new_peer(2, 2), new_peer(3, 3)]);
        assert_eq!(r.id, 7);
        assert_eq!(r.get_peers().len(), 3);
        assert_eq!(r.get_region_epoch().conf_ver, INIT_EPOCH_CONF_VER);
        assert_eq!(r.get_region_epoch().version, INIT_EPOCH_VER);
    }
}
