//! Membership changes: `TransferLeader` and `ChangePeer` (stage 3B).
//!
//! `TransferLeader` is not replicated: only the leader can hand its leadership over, so the
//! command is carried out where it arrives and answered at once.
//!
//! `ChangePeer` is a raft conf change, one peer added or removed at a time (single-step
//! membership change, not joint consensus). It goes through the log like any command and takes
//! effect where it is *applied*, on every replica, in the same order:
//!
//! ```text
//!  propose                          apply (every replica)
//!  ───────                          ─────────────────────
//!  epoch conf_ver current?          epoch conf_ver still current? (a duplicate is not)
//!  the change makes sense?          the change is not already reflected?
//!  removing myself, the leader?     region.peers ± peer, conf_ver + 1,
//!    → hand leadership over first     region state written with the applied index
//!  raft: one change in flight       raft learns the new membership
//!                                   the peer cache learns the new peer's store
//!                                   removed myself? → destroy
//! ```
//!
//! The scheduler repeats a change on every heartbeat until it sees it done, so a store gets
//! the same `ChangePeer` many times; the epoch check (`conf_ver` moved once the first copy
//! applied) makes the duplicates harmless, at propose time and again at apply time.

use proto::eraftpb::{ConfChange, ConfChangeType, Entry};
use proto::metapb::Region;
use proto::raft_cmdpb::{AdminCmdType, AdminResponse, RaftCmdRequest, RaftCmdResponse};
use proto::raft_serverpb::PeerState;
use protobuf::Message as _;

use engine::WriteBatch;

use super::PeerMsgHandler;
use crate::msg::{Callback, CmdResponse};
use crate::peer::{error_response, Proposal};
use crate::{meta, util, Error, Result};

impl PeerMsgHandler<'_, '_> {
    /// Hands leadership to the command's peer (raft sends it `MsgTimeoutNow` once its log is
    /// caught up) and answers at once: the client watches who leads to see the outcome.
    pub(super) fn propose_transfer_leader(&mut self, req: RaftCmdRequest, cb: Callback) {
        // lab:begin 3b
        // lab:stub let _ = (req, cb);
        // lab:stub todo!("3b: start the leader transfer and answer at once")
        let target = req.get_admin_request().get_transfer_leader().get_peer();
        self.peer.raft_group.transfer_leader(target.id);
        let mut resp = RaftCmdResponse::new();
        resp.mut_header().current_term = self.peer.term();
        let mut admin = AdminResponse::new();
        admin.set_cmd_type(AdminCmdType::TransferLeader);
        admin.mut_transfer_leader();
        resp.set_admin_response(admin);
        cb(CmdResponse { resp, snap: None });
        // lab:end 3b
    }

    /// Proposes a `ChangePeer` as a raft conf change carrying the whole command in its
    /// context (apply needs the peer's store, which raft's conf change does not carry).
    pub(super) fn propose_change_peer(&mut self, req: RaftCmdRequest, cb: Callback) {
        // lab:begin 3b
        // lab:stub let _ = (req, cb);
        // lab:stub todo!("3b: check the change, propose it as a conf change, record the proposal")
        let term = self.peer.term();
        match self.try_propose_change_peer(&req) {
            Ok(index) => self.peer.proposals.push_back(Proposal { index, term, cb }),
            Err(e) => cb(CmdResponse {
                resp: error_response(&e, term),
                snap: None,
            }),
        }
        // lab:end 3b
    }

    // lab:begin 3b
    /// The checks and the proposal of a `ChangePeer`; the index its entry got.
    fn try_propose_change_peer(&mut self, req: &RaftCmdRequest) -> Result<u64> {
        let cp = req.get_admin_request().get_change_peer();
        let peer = cp.get_peer();
        if peer.id == 0 || peer.store_id == 0 {
            return Err(Error::InvalidRequest(format!(
                "ChangePeer names no peer: {peer:?}"
            )));
        }
        check_change(self.peer.region(), cp.get_change_type(), peer)?;
        if cp.get_change_type() == ConfChangeType::RemoveNode && peer.id == self.peer.meta.id {
            // A leader never removes itself. It would commit its removal under the old
            // membership and may destroy itself before the others learn that the entry is
            // committed; in a two-peer region the survivor then still counts two voters and can
            // never win an election. Hand leadership to the most caught-up peer instead: the
            // scheduler repeats the request, and the new leader carries it out.
            let to = self
                .peer
                .raft_group
                .raft
                .prs
                .iter()
                .filter(|(&id, _)| id != self.peer.meta.id)
                .max_by_key(|(_, pr)| pr.matched)
                .map(|(&id, _)| id);
            if let Some(to) = to {
                self.peer.raft_group.transfer_leader(to);
            }
            return Err(Error::NotLeader {
                region_id: self.peer.region_id,
                leader: None,
            });
        }
        let mut cc = ConfChange::new();
        cc.set_change_type(cp.get_change_type());
        cc.node_id = peer.id;
        cc.context = req
            .write_to_bytes()
            .map_err(|e| Error::other(format!("cannot encode the command: {e}")))?
            .into();
        let index = self.peer.next_proposal_index();
        // Raft refuses a second change while one is proposed and not applied: one change in
        // flight per region.
        self.peer
            .raft_group
            .propose_conf_change(cc)
            .map_err(|e| match e {
                raft::Error::ProposalDropped => {
                    Error::other("another membership change is in flight (or a leader transfer)")
                }
                e => e.into(),
            })?;
        if self.peer.next_proposal_index() == index {
            return Err(Error::other("raft dropped the membership change"));
        }
        Ok(index)
    }
    // lab:end 3b

    /// Applies a conf change entry: the region's membership and `conf_ver`, persisted in `wb`
    /// with the applied index; raft's membership; the peer cache. A change whose epoch is
    /// stale, or that is already reflected, changes nothing (an error for its proposer).
    pub(super) fn apply_conf_change(
        &mut self,
        entry: &Entry,
        wb: &mut WriteBatch,
    ) -> Result<CmdResponse> {
        // lab:begin 3b
        // lab:stub let _ = (entry, wb);
        // lab:stub todo!("3b: apply the membership change to the region, raft and the peer cache")
        let cc = ConfChange::parse_from_bytes(&entry.data)
            .map_err(|e| Error::other(format!("undecodable conf change: {e}")))?;
        let req = RaftCmdRequest::parse_from_bytes(&cc.context)
            .map_err(|e| Error::other(format!("undecodable conf change context: {e}")))?;
        // A copy the scheduler repeated, proposed before the first one applied: stale now.
        self.check_epoch_with_sibling(&req)?;
        let cp = req.get_admin_request().get_change_peer();
        let peer = cp.get_peer();
        if cc.node_id != peer.id || cc.get_change_type() != cp.get_change_type() {
            return Err(Error::other(format!(
                "conf change {:?} of node {} does not match its command {cp:?}",
                cc.get_change_type(),
                cc.node_id
            )));
        }
        let mut region = self.peer.region().clone();
        check_change(&region, cp.get_change_type(), peer)?;
        let removes_me = match cp.get_change_type() {
            ConfChangeType::AddNode => {
                region.mut_peers().push(peer.clone());
                self.peer.peer_cache.insert(peer.id, peer.clone());
                false
            }
            ConfChangeType::RemoveNode => {
                region.mut_peers().retain(|p| p.id != peer.id);
                self.peer.peer_cache.remove(&peer.id);
                peer.id == self.peer.meta.id
            }
            ConfChangeType::AddLearnerNode => {
                return Err(Error::InvalidRequest("learners are not supported".into()))
            }
        };
        region.mut_region_epoch().conf_ver += 1;
        if !removes_me {
            // (A removed peer's state becomes its tombstone instead, when it is destroyed.)
            meta::write_region_state(wb, &region, PeerState::Normal)?;
        }
        self.peer.storage_mut().set_region(region.clone());
        if let Err(other) = self.ctx.meta.region_ranges.insert(&region) {
            return Err(Error::other(format!(
                "region {} overlaps region {other} after a conf change",
                region.id
            )));
        }
        self.peer.raft_group.apply_conf_change(&cc)?;
        tracing::info!(
            "{} applied {:?} of peer {} (store {}) at index {}: conf_ver {}, peers {:?}",
            self.peer.tag,
            cp.get_change_type(),
            peer.id,
            peer.store_id,
            entry.index,
            region.get_region_epoch().conf_ver,
            region.get_peers().iter().map(|p| p.id).collect::<Vec<_>>()
        );
        if removes_me {
            if self.peer.is_leader() {
                // Removed while leading (the change was proposed by an earlier leader). Tell the
                // others the commit index now, and stay two election timeouts longer to vote:
                // in a two-peer region the survivor still counts this peer as a voter until it
                // applies the removal, and if the commit never reached it (lost, or overtaken
                // by a leader transfer that moved it to a newer term) it needs this vote once.
                self.send_final_commit();
                let stay = 2 * self.ctx.cfg.raft_election_timeout_ticks as u64;
                self.peer.retiring = Some((self.peer.ticks + stay, region.clone()));
            } else {
                self.peer.pending_destroy = Some(region.clone());
            }
        } else if self.peer.is_leader() {
            // The scheduler must see every change, one conf_ver at a time.
            self.peer.heartbeat_scheduler(self.ctx.fx.scheduler);
        }
        let mut resp = RaftCmdResponse::new();
        resp.mut_header().current_term = self.peer.term();
        let mut admin = AdminResponse::new();
        admin.set_cmd_type(AdminCmdType::ChangePeer);
        admin.mut_change_peer().set_region(region);
        resp.set_admin_response(admin);
        Ok(CmdResponse { resp, snap: None })
        // lab:end 3b
    }

    /// Heartbeats carrying the commit index to every remaining voter, sent right away.
    fn send_final_commit(&mut self) {
        let ids: Vec<u64> = self.peer.raft_group.raft.prs.keys().copied().collect();
        for id in ids {
            if id != self.peer.meta.id {
                self.peer.raft_group.raft.send_heartbeat(id);
            }
        }
        let msgs = std::mem::take(&mut self.peer.raft_group.raft.msgs);
        self.peer.send(self.ctx, msgs);
    }
}

// lab:begin 3b
/// Whether `change` of `peer` makes sense for `region`: an added peer's store has no peer of
/// the region yet; a removed peer is in it.
fn check_change(region: &Region, change: ConfChangeType, peer: &proto::metapb::Peer) -> Result<()> {
    match change {
        ConfChangeType::AddNode => {
            if let Some(p) = util::find_peer(region, peer.store_id) {
                return Err(Error::other(format!(
                    "region {} already has peer {} on store {}",
                    region.id, p.id, peer.store_id
                )));
            }
            if util::find_peer_by_id(region, peer.id).is_some() {
                return Err(Error::other(format!(
                    "region {} already has a peer with id {}",
                    region.id, peer.id
                )));
            }
        }
        ConfChangeType::RemoveNode => {
            if util::find_peer_by_id(region, peer.id).is_none() {
                return Err(Error::other(format!(
                    "region {} has no peer {}",
                    region.id, peer.id
                )));
            }
        }
        ConfChangeType::AddLearnerNode => {
            return Err(Error::InvalidRequest("learners are not supported".into()))
        }
    }
    Ok(())
}
// lab:end 3b
