//! Admin commands: proposing and applying them, and the raft-log GC they drive.
//!
//! | command | proposed by | applied by | stage |
//! |---|---|---|---|
//! | `CompactLog` | the leader's GC tick ([`PeerMsgHandler::on_raft_log_gc_tick`]) | [`PeerMsgHandler::apply_compact_log`] | 2C |
//! | `TransferLeader` | clients and the scheduler | not replicated: done at propose (`conf_change`) | 3B |
//! | `ChangePeer` | clients and the scheduler | `conf_change` | 3B |
//! | `Split` | the split checker, tests and tools ([`PeerMsgHandler::on_split_region`]) | `split` | 3B |

use engine::WriteBatch;
use proto::raft_cmdpb::{
    AdminCmdType, AdminRequest, AdminResponse, CompactLogRequest, RaftCmdRequest, RaftCmdResponse,
};
use proto::raft_serverpb::RaftApplyState;
use proto::schedulerpb::RegionHeartbeatResponse;

use super::PeerMsgHandler;
use crate::msg::{Callback, CmdResponse};
use crate::peer::error_response;
use crate::task::{RaftLogGcTask, Task};
use crate::{Error, Result};

impl PeerMsgHandler<'_, '_> {
    /// Proposes an admin command (provided framework code): `CompactLog` and `Split` are
    /// replicated like normal commands, `ChangePeer` as a raft conf change, and
    /// `TransferLeader` is carried out at once.
    pub(super) fn propose_admin(&mut self, req: RaftCmdRequest, cb: Callback) {
        match req.get_admin_request().get_cmd_type() {
            AdminCmdType::CompactLog | AdminCmdType::Split => self.propose_command(req, cb),
            AdminCmdType::TransferLeader => self.propose_transfer_leader(req, cb),
            AdminCmdType::ChangePeer => self.propose_change_peer(req, cb),
            AdminCmdType::InvalidAdmin => cb(CmdResponse {
                resp: error_response(
                    &Error::InvalidRequest("an admin request without a type".into()),
                    self.peer.term(),
                ),
                snap: None,
            }),
        }
    }

    /// Applies an admin command (provided framework code dispatching to the stages' parts).
    /// Region and apply state changes go into `wb`, written with the applied index.
    pub(super) fn apply_admin(
        &mut self,
        req: &RaftCmdRequest,
        wb: &mut WriteBatch,
        apply_state: &mut RaftApplyState,
    ) -> Result<CmdResponse> {
        self.check_epoch_with_sibling(req)?;
        let admin = req.get_admin_request();
        let answer = match admin.get_cmd_type() {
            AdminCmdType::CompactLog => {
                self.apply_compact_log(admin.get_compact_log(), apply_state)?
            }
            AdminCmdType::Split => self.apply_split(admin.get_split(), wb)?,
            other => {
                return Err(Error::InvalidRequest(format!(
                    "admin command {other:?} is not replicated through the log"
                )))
            }
        };
        let mut resp = RaftCmdResponse::new();
        resp.mut_header().current_term = self.peer.term();
        resp.set_admin_response(answer);
        Ok(CmdResponse { resp, snap: None })
    }

    /// The scheduler's answer to this leader's region heartbeat (provided framework code): an
    /// operator step becomes an admin command, proposed with the epoch the heartbeat carried
    /// (so a step for a region that changed since is refused as stale). Nobody waits for the
    /// answer: the scheduler sees the outcome in later heartbeats and repeats the step until
    /// then.
    pub fn on_scheduler_response(&mut self, resp: RegionHeartbeatResponse) {
        if self.peer.stopped
            || !self.peer.is_leader()
            || resp.get_target_peer().id != self.peer.meta.id
        {
            return;
        }
        let mut admin = AdminRequest::new();
        if resp.has_change_peer() {
            let cp = resp.get_change_peer();
            admin.set_cmd_type(AdminCmdType::ChangePeer);
            admin
                .mut_change_peer()
                .set_change_type(cp.get_change_type());
            admin.mut_change_peer().set_peer(cp.get_peer().clone());
        } else if resp.has_transfer_leader() {
            admin.set_cmd_type(AdminCmdType::TransferLeader);
            admin
                .mut_transfer_leader()
                .set_peer(resp.get_transfer_leader().get_peer().clone());
        } else {
            return;
        }
        let mut req = RaftCmdRequest::new();
        let header = req.mut_header();
        header.region_id = self.peer.region_id;
        header.set_peer(self.peer.meta.clone());
        header.set_region_epoch(resp.get_region_epoch().clone());
        req.set_admin_request(admin);
        self.propose_raft_command(req, Box::new(|_| {}));
    }

    /// Applies `CompactLog`: moves the truncated state up to the compact index (a request at
    /// or below it is a no-op: another compaction went further). The entries themselves are
    /// deleted later by a raft-log GC task, once this apply state is written
    /// ([`PeerMsgHandler::schedule_raft_log_gc`]), and raft's in-memory log drops them at
    /// the next `advance`.
    pub(super) fn apply_compact_log(
        &mut self,
        req: &CompactLogRequest,
        apply_state: &mut RaftApplyState,
    ) -> Result<AdminResponse> {
        // lab:begin 2c
        // lab:stub let _ = (req, apply_state);
        // lab:stub todo!("2c: move the truncated state to the compact index")
        let mut resp = AdminResponse::new();
        resp.set_cmd_type(AdminCmdType::CompactLog);
        resp.mut_compact_log();
        let (index, term) = (req.compact_index, req.compact_term);
        if index <= apply_state.get_truncated_state().index {
            return Ok(resp);
        }
        if index > apply_state.applied_index {
            return Err(Error::other(format!(
                "{}: compacting to {index}, past the applied index {}",
                self.peer.tag, apply_state.applied_index
            )));
        }
        let actual = self.peer.raft_group.raft.raft_log.term(index)?;
        if actual != term {
            return Err(Error::other(format!(
                "{}: compacting to {index} at term {term}, but the entry's term is {actual}",
                self.peer.tag
            )));
        }
        let truncated = apply_state.mut_truncated_state();
        truncated.index = index;
        truncated.term = term;
        Ok(resp)
        // lab:end 2c
    }

    /// The leader's raft-log GC check (provided framework code): once the log holds at least
    /// `raft_log_gc_count_limit` applied entries (or about `raft_log_gc_size_limit` bytes of
    /// them), propose `CompactLog` up to the entry before the applied one.
    pub(super) fn on_raft_log_gc_tick(&mut self) {
        if !self.peer.is_leader() {
            return;
        }
        let storage = self.peer.storage();
        let (applied, first) = (storage.applied_index(), storage.first_index());
        if applied <= first {
            return;
        }
        let cfg = self.ctx.cfg;
        let count = applied - first;
        if count < cfg.raft_log_gc_count_limit
            && self.applied_log_bytes(first, applied) < cfg.raft_log_gc_size_limit
        {
            return;
        }
        let compact_index = applied - 1;
        let Ok(compact_term) = self.peer.raft_group.raft.raft_log.term(compact_index) else {
            return;
        };
        let mut req = RaftCmdRequest::new();
        let header = req.mut_header();
        header.region_id = self.peer.region_id;
        header.set_peer(self.peer.meta.clone());
        header.set_region_epoch(self.peer.region().get_region_epoch().clone());
        let mut admin = AdminRequest::new();
        admin.set_cmd_type(AdminCmdType::CompactLog);
        admin.mut_compact_log().compact_index = compact_index;
        admin.mut_compact_log().compact_term = compact_term;
        req.set_admin_request(admin);
        // Nobody waits for the answer.
        self.propose_raft_command(req, Box::new(|_| {}));
    }

    /// About how many bytes the entries `[first, applied]` hold: summed over the ones raft
    /// keeps in memory, extrapolated over the ones it released.
    fn applied_log_bytes(&self, first: u64, applied: u64) -> u64 {
        let in_memory = self.peer.raft_group.raft.raft_log.slice(first, applied + 1);
        if in_memory.is_empty() {
            return 0;
        }
        let bytes: u64 = in_memory.iter().map(|e| e.data.len() as u64 + 16).sum();
        bytes.saturating_mul(applied - first + 1) / in_memory.len() as u64
    }

    /// Hands the deletion of the log entries below the truncated state to a GC task, once an
    /// applied `CompactLog` (written with the apply state) moved it past what an earlier
    /// task deleted (provided framework code; after a start, the first task also deletes
    /// whatever a crash kept of earlier deletions).
    pub(super) fn schedule_raft_log_gc(&mut self) {
        let end = self.peer.storage().truncated_index() + 1;
        if end <= self.peer.last_compacted_idx {
            return;
        }
        let start = self.peer.last_compacted_idx;
        self.peer.last_compacted_idx = end;
        self.ctx.fx.spawn(Task::RaftLogGc(RaftLogGcTask::new(
            self.peer.region_id,
            start,
            end,
            self.ctx.cfg.task_batch_bytes,
        )));
    }
}
