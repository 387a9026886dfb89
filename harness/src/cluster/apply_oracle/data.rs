//! A model of one store's user data, kept from the batches the store writes, with a digest of
//! each region's data.
//!
//! The digest of a region is a set hash: the wrapping sum of a 64-bit hash of every
//! (column family, key, value) in the region's range, so a put or delete updates it in O(1)
//! (the model remembers each key's value hash) and two stores hold the same data in a region
//! exactly when (up to hash collisions) their digests are equal, whatever order they wrote it in.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use engine::{keys, BatchOp, Cf, Engine};
use proto::raft_serverpb::{PeerState, RegionLocalState};
use protobuf::Message;

/// The digest and size of a region's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Digest {
    /// The set hash.
    pub sum: u64,
    /// How many pairs.
    pub pairs: u64,
}

impl Digest {
    fn add(&mut self, h: u64) {
        self.sum = self.sum.wrapping_add(h);
        self.pairs += 1;
    }

    fn remove(&mut self, h: u64) {
        self.sum = self.sum.wrapping_sub(h);
        self.pairs = self.pairs.saturating_sub(1);
    }
}

/// One region as the store last wrote its state.
#[derive(Debug, Clone)]
pub(super) struct RegionData {
    start: Vec<u8>,
    end: Vec<u8>,
    /// Normal or Applying (tombstones are dropped from the model).
    pub state: PeerState,
    pub digest: Digest,
}

impl RegionData {
    fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && (self.end.is_empty() || key < self.end.as_slice())
    }
}

/// What the oracle knows of a store's data.
#[derive(Debug, Default)]
pub(super) struct StoreData {
    /// (key, column family) → hash of the value.
    pairs: BTreeMap<(Vec<u8>, Cf), u64>,
    /// Live regions by id.
    regions: BTreeMap<u64, RegionData>,
}

fn value_hash(value: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

fn pair_hash(cf: Cf, key: &[u8], value: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (cf as u8).hash(&mut h);
    key.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

impl StoreData {
    /// Reads a store's data and region states from its kv engine.
    pub(super) fn load(kv: &Engine) -> engine::Result<StoreData> {
        let mut data = StoreData::default();
        let snap = kv.snapshot()?;
        for &cf in Cf::DATA {
            snap.scan_cf(cf, b"", None, |k, v| {
                data.pairs.insert((k.to_vec(), cf), value_hash(v));
                true
            })?;
        }
        let mut states = Vec::new();
        let mut bad = None;
        snap.scan_cf(
            Cf::Raft,
            keys::REGION_META_MIN_KEY,
            Some(keys::REGION_META_MAX_KEY),
            |k, v| {
                if let Some((id, keys::REGION_STATE_SUFFIX)) = keys::decode_region_meta_key(k) {
                    match RegionLocalState::parse_from_bytes(v) {
                        Ok(s) => states.push((id, s)),
                        Err(source) => {
                            bad = Some(engine::Error::Decode {
                                key: k.to_vec(),
                                message: "RegionLocalState",
                                source,
                            })
                        }
                    }
                }
                true
            },
        )?;
        if let Some(e) = bad {
            return Err(e);
        }
        for (id, state) in states {
            data.set_region(id, Some(&state));
        }
        Ok(data)
    }

    /// A region's model, if it is live.
    pub(super) fn region(&self, id: u64) -> Option<&RegionData> {
        self.regions.get(&id)
    }

    /// Takes a written region state (`None`: deleted). A region whose range changes (or that
    /// appears) gets its digest recomputed from the model.
    pub(super) fn set_region(&mut self, id: u64, state: Option<&RegionLocalState>) {
        let Some(state) = state.filter(|s| s.get_state() != PeerState::Tombstone) else {
            self.regions.remove(&id);
            return;
        };
        let region = state.get_region();
        let (start, end) = (region.get_start_key(), region.get_end_key());
        if let Some(r) = self.regions.get_mut(&id) {
            r.state = state.get_state();
            if r.start == start && r.end == end {
                return;
            }
        }
        let mut r = RegionData {
            start: start.to_vec(),
            end: end.to_vec(),
            state: state.get_state(),
            digest: Digest::default(),
        };
        let lower = (r.start.clone(), Cf::Default);
        for ((key, cf), &v) in self.pairs.range(lower..) {
            if !r.end.is_empty() && key.as_slice() >= r.end.as_slice() {
                break;
            }
            r.digest.add(pair_hash(*cf, key, v));
        }
        self.regions.insert(id, r);
    }

    /// Takes one written pair (or delete); returns the state of the region it belongs to.
    pub(super) fn write(&mut self, op: &BatchOp<'_>) -> Option<PeerState> {
        let slot = (op.key.to_vec(), op.cf);
        let old = match op.value {
            Some(v) => self.pairs.insert(slot, value_hash(v)),
            None => self.pairs.remove(&slot),
        };
        let region = self.regions.values_mut().find(|r| r.contains(op.key))?;
        if let Some(old) = old {
            region.digest.remove(pair_hash(op.cf, op.key, old));
        }
        if let Some(v) = op.value {
            region.digest.add(pair_hash(op.cf, op.key, value_hash(v)));
        }
        Some(region.state)
    }
}
