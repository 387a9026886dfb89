//! Splitting a region (stage 3B).
//!
//! ```text
//!  leader's split-check tick ──► SplitCheckTask (measures, picks a key)
//!                                     │ result
//!  StoreEvent::SplitRegion ──────────►│ on_split_region: still leader? same version?
//!  (tests, tools)                     │ key strictly inside the region?
//!                                     ▼
//!                              scheduler.ask_split ──► new region id + one peer id per peer
//!                                     │
//!                              propose Split{key, ids} with the epoch the key was chosen in
//!                                     │ committed, applied on every replica:
//!                                     ▼
//!   left  = [start, key)  version + 1   (keeps the region id)
//!   right = [key, end)    version + 1, same conf_ver, new ids, one peer per store of the left
//!   both region states written with the applied index; the store's ranges updated (the left
//!   shrinks first, then the right enters); the right's peer started by the store
//! ```
//!
//! Commands proposed before the split but applied after it carry the old `version`: applying
//! them answers `EpochNotMatch` (with both halves), so a client whose key moved to the right
//! half learns of the split and retries there.

use engine::WriteBatch;
use proto::metapb::{Region, RegionEpoch};
use proto::raft_cmdpb::{AdminCmdType, AdminRequest, AdminResponse, RaftCmdRequest, SplitRequest};
use proto::raft_serverpb::PeerState;

use super::PeerMsgHandler;
use crate::msg::{Callback, CmdResponse};
use crate::peer::error_response;
use crate::store::StoreAction;
use crate::task::{SplitCheckResult, SplitCheckTask, Task};
use crate::{meta, util, Error, Result};

impl PeerMsgHandler<'_, '_> {
    /// The leader's split-check tick (provided framework code): measure the region in a task,
    /// unless one is running, or the region's size is known, it has not grown by an eighth of
    /// the split size since, and what it may have grown cannot have taken it past the maximum.
    ///
    /// (The original skips the check on the first condition alone, and never records the size
    /// of a region without an end key, so that region is always checked while the others may
    /// stay unsplit just above the maximum.)
    pub(super) fn on_split_region_check_tick(&mut self) {
        if !self.peer.is_leader() || self.peer.split_check_running {
            return;
        }
        let cfg = self.ctx.cfg;
        if let Some(size) = self.peer.approximate_size {
            let hint = self.peer.size_diff_hint;
            if hint < cfg.region_split_size / 8 && size.saturating_add(hint) <= cfg.region_max_size
            {
                return;
            }
        }
        let snap = match self.ctx.engines.kv.snapshot() {
            Ok(snap) => snap,
            Err(e) => {
                tracing::warn!("{} cannot check its size: {e}", self.peer.tag);
                return;
            }
        };
        self.peer.size_diff_hint = 0;
        self.peer.split_check_running = true;
        self.ctx.fx.spawn(Task::SplitCheck(SplitCheckTask {
            region: self.peer.region().clone(),
            snap,
            max_size: cfg.region_max_size,
            split_size: cfg.region_split_size,
        }));
    }

    /// A split check finished (provided framework code).
    pub(super) fn on_split_checked(&mut self, result: Result<SplitCheckResult>) {
        self.peer.split_check_running = false;
        match result {
            Ok(found) => {
                self.peer.approximate_size = Some(found.size);
                if let Some(key) = found.split_key {
                    self.on_split_region(found.epoch, key, None);
                }
            }
            Err(e) => tracing::warn!("{}: split check failed: {e}", self.peer.tag),
        }
    }

    /// Asks for a split of this region at `split_key`, chosen when the region had `epoch`
    /// (provided framework code): checks it still makes sense, gets the new ids from the
    /// scheduler and proposes the `Split` command. `cb` gets the command's answer, or why
    /// there is none.
    pub fn on_split_region(
        &mut self,
        epoch: RegionEpoch,
        split_key: Vec<u8>,
        cb: Option<Callback>,
    ) {
        let term = self.peer.term();
        let answer = |cb: Option<Callback>, e: Error| {
            if let Some(cb) = cb {
                cb(CmdResponse {
                    resp: error_response(&e, term),
                    snap: None,
                });
            }
        };
        if let Err(e) = self.check_split_request(&epoch, &split_key) {
            tracing::debug!("{} refuses a split: {e}", self.peer.tag);
            answer(cb, e);
            return;
        }
        let ids = match self.ctx.fx.scheduler.ask_split(self.peer.region()) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::debug!("{}: the scheduler refused a split: {e}", self.peer.tag);
                answer(cb, e);
                return;
            }
        };
        let mut req = RaftCmdRequest::new();
        let header = req.mut_header();
        header.region_id = self.peer.region_id;
        header.set_peer(self.peer.meta.clone());
        header.set_region_epoch(epoch);
        let mut admin = AdminRequest::new();
        admin.set_cmd_type(AdminCmdType::Split);
        let mut split = SplitRequest::new();
        split.split_key = split_key;
        split.new_region_id = ids.new_region_id;
        split.new_peer_ids = ids.new_peer_ids;
        admin.set_split(split);
        req.set_admin_request(admin);
        self.propose_raft_command(req, cb.unwrap_or_else(|| Box::new(|_| {})));
    }

    fn check_split_request(&self, epoch: &RegionEpoch, split_key: &[u8]) -> Result<()> {
        if split_key.is_empty() {
            return Err(Error::InvalidRequest("empty split key".into()));
        }
        if !self.peer.is_leader() {
            return Err(Error::NotLeader {
                region_id: self.peer.region_id,
                leader: self.peer.leader(),
            });
        }
        let region = self.peer.region();
        if epoch.version != region.get_region_epoch().version {
            return Err(Error::EpochNotMatch {
                message: format!(
                    "the split key was chosen at version {}, the region is at version {}",
                    epoch.version,
                    region.get_region_epoch().version
                ),
                regions: vec![region.clone()],
            });
        }
        util::check_key_in_region_exclusive(split_key, region)
    }

    /// Applies `Split`: the region keeps `[start, split key)`, a new region takes `[split key,
    /// end)`; both get `version + 1`, both states go into `wb` with the applied index, and
    /// the store starts the new region's peer after this batch is written.
    pub(super) fn apply_split(
        &mut self,
        req: &SplitRequest,
        wb: &mut WriteBatch,
    ) -> Result<AdminResponse> {
        // lab:begin 3b
        // lab:stub let _ = (req, wb);
        // lab:stub todo!("3b: split the region in two, persist both, register and start the new one")
        let mut left = self.peer.region().clone();
        util::check_key_in_region_exclusive(&req.split_key, &left)?;
        if req.new_peer_ids.len() != left.get_peers().len() {
            return Err(Error::InvalidRequest(format!(
                "a split of region {} needs {} new peer ids, got {}",
                left.id,
                left.get_peers().len(),
                req.new_peer_ids.len()
            )));
        }
        if req.new_region_id == 0 || req.new_region_id == left.id {
            return Err(Error::InvalidRequest(format!(
                "bad new region id {} for a split of region {}",
                req.new_region_id, left.id
            )));
        }
        let version = left.get_region_epoch().version + 1;
        let mut right = Region::new();
        right.id = req.new_region_id;
        right.start_key = req.split_key.clone();
        right.end_key = left.end_key.clone();
        right.mut_region_epoch().conf_ver = left.get_region_epoch().conf_ver;
        right.mut_region_epoch().version = version;
        for (p, &id) in left.get_peers().iter().zip(&req.new_peer_ids) {
            right.mut_peers().push(util::new_peer(p.store_id, id));
        }
        left.end_key = req.split_key.clone();
        left.mut_region_epoch().version = version;

        meta::write_region_state(wb, &left, PeerState::Normal)?;
        // The new region's peer here may already be initialised (it is ahead of this split):
        // then its state is newer than what this split would write.
        let right_exists =
            meta::region_local_state(&self.ctx.engines.kv, right.id)?.is_some_and(|s| {
                s.get_state() != PeerState::Tombstone
                    && s.has_region()
                    && !s.get_region().get_peers().is_empty()
            });
        if !right_exists {
            meta::write_region_state(wb, &right, PeerState::Normal)?;
            meta::write_initial_apply_state(wb, right.id)?;
        }

        // The left shrinks before the right enters: the store's ranges never overlap.
        self.peer.storage_mut().set_region(left.clone());
        let ranges = &mut self.ctx.meta.region_ranges;
        if let Err(other) = ranges.insert(&left) {
            return Err(Error::other(format!(
                "region {} overlaps region {other} after a split",
                left.id
            )));
        }
        if !right_exists {
            if let Err(other) = ranges.insert(&right) {
                return Err(Error::other(format!(
                    "new region {} overlaps region {other}",
                    right.id
                )));
            }
        }
        self.peer.approximate_size = None;
        self.peer.size_diff_hint = 0;
        let leader = self.peer.is_leader();
        self.ctx
            .meta
            .actions
            .push_back(StoreAction::CreateSplitPeer {
                region: right.clone(),
                campaign: leader,
            });
        if leader {
            self.peer.heartbeat_scheduler(self.ctx.fx.scheduler);
            if let Err(e) = self.ctx.fx.scheduler.report_split(&left, &right) {
                tracing::debug!("{}: reporting the split failed: {e}", self.peer.tag);
            }
        }
        tracing::info!(
            "{} split at {:?}: left {}, right {}",
            self.peer.tag,
            String::from_utf8_lossy(&req.split_key),
            left.id,
            right.id
        );
        let mut resp = AdminResponse::new();
        resp.set_cmd_type(AdminCmdType::Split);
        resp.mut_split().set_regions(vec![left, right].into());
        Ok(resp)
        // lab:end 3b
    }
}
