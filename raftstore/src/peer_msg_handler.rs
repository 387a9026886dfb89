//! Handling what happens to one peer: raft messages, ticks and client commands in; persisted
//! state, raft messages, applied commands and answered callbacks out.
//!
//! Data flows one way: a client command is proposed to raft, comes back in a `Ready` as a
//! committed entry, is applied to the kv engine, and its callback is answered.

use engine::{Cf, Durability, WriteBatch};
use proto::eraftpb::{Entry, EntryType};
use proto::raft_cmdpb::{
    CmdType, RaftCmdRequest, RaftCmdResponse, Request, Response, SnapResponse,
};
use proto::raft_serverpb::RaftMessage;
use protobuf::Message as _;

use crate::msg::{Callback, CmdResponse, RegionSnapshot};
use crate::peer::{error_response, Peer, Proposal};
use crate::store::StoreContext;
use crate::{util, Error, Result};

/// Handles the events of one peer with the store's context.
pub struct PeerMsgHandler<'a, 'b> {
    peer: &'a mut Peer,
    ctx: &'a mut StoreContext<'b>,
}

impl<'a, 'b> PeerMsgHandler<'a, 'b> {
    /// A handler for `peer`.
    pub fn new(peer: &'a mut Peer, ctx: &'a mut StoreContext<'b>) -> Self {
        PeerMsgHandler { peer, ctx }
    }

    /// Steps a raft message from another store into the peer (provided framework code).
    pub fn on_raft_msg(&mut self, msg: RaftMessage) -> Result<()> {
        if msg.get_to_peer().id != self.peer.meta.id {
            return Err(Error::other(format!(
                "{} got a message for peer {}",
                self.peer.tag,
                msg.get_to_peer().id
            )));
        }
        let from = msg.get_from_peer().clone();
        self.peer.peer_cache.insert(from.id, from);
        let mut msg = msg;
        self.peer.raft_group.step(msg.take_message())?;
        Ok(())
    }

    /// One base tick: the raft clock, and the leader's periodic report to the scheduler
    /// (provided framework code).
    pub fn on_tick(&mut self) {
        if self.peer.stopped {
            return;
        }
        self.peer.ticks += 1;
        self.peer.raft_group.tick();
        let every = self
            .ctx
            .cfg
            .ticks(self.ctx.cfg.scheduler_heartbeat_interval);
        if self.peer.is_leader() && self.peer.ticks.is_multiple_of(every) {
            self.peer.heartbeat_scheduler(self.ctx.scheduler);
        }
    }

    /// The checks every command passes before it is proposed (provided framework code): the
    /// command is for this store, this peer leads, the header names this peer, its term is
    /// not stale, and its region epoch is current.
    fn pre_propose_raft_command(&self, req: &RaftCmdRequest) -> Result<()> {
        let header = req.get_header();
        if header.get_peer().store_id != self.ctx.store_id {
            return Err(Error::StoreNotMatch {
                to_store_id: header.get_peer().store_id,
                my_store_id: self.ctx.store_id,
            });
        }
        if !self.peer.is_leader() {
            return Err(Error::NotLeader {
                region_id: self.peer.region_id,
                leader: self.peer.leader(),
            });
        }
        if header.get_peer().id != self.peer.meta.id {
            return Err(Error::other(format!(
                "{}: the command is addressed to peer {}",
                self.peer.tag,
                header.get_peer().id
            )));
        }
        if header.term != 0 && self.peer.term() > header.term + 1 {
            return Err(Error::StaleCommand);
        }
        util::check_region_epoch(req, self.peer.region(), true)
    }

    /// Proposes a client command to raft and remembers its callback until the command's
    /// entry is applied. Errors are answered at once.
    pub fn propose_raft_command(&mut self, req: RaftCmdRequest, cb: Callback) {
        if let Err(e) = self.pre_propose_raft_command(&req) {
            cb(CmdResponse {
                resp: error_response(&e, self.peer.term()),
                snap: None,
            });
            return;
        }
        // lab:begin 2b
        // lab:stub todo!("2b: check the requests, propose the encoded command, record the proposal")
        let term = self.peer.term();
        let proposed = (|| {
            if req.has_admin_request() {
                return Err(Error::other(format!(
                    "admin command {:?} is not supported by this store yet",
                    req.get_admin_request().get_cmd_type()
                )));
            }
            check_requests(&req, self.peer.region())?;
            let data = req
                .write_to_bytes()
                .map_err(|e| Error::other(format!("cannot encode the command: {e}")))?;
            let index = self.peer.next_proposal_index();
            self.peer.raft_group.propose(data)?;
            if self.peer.next_proposal_index() == index {
                // Raft dropped it without an error (e.g. a leader transfer is under way).
                return Err(Error::NotLeader {
                    region_id: self.peer.region_id,
                    leader: self.peer.leader(),
                });
            }
            Ok(index)
        })();
        match proposed {
            Ok(index) => self.peer.proposals.push_back(Proposal { index, term, cb }),
            Err(e) => {
                let e = match e {
                    Error::Raft(raft::Error::ProposalDropped) => Error::NotLeader {
                        region_id: self.peer.region_id,
                        leader: self.peer.leader(),
                    },
                    other => other,
                };
                cb(CmdResponse {
                    resp: error_response(&e, term),
                    snap: None,
                })
            }
        }
        // lab:end 2b
    }

    /// Processes the peer's `Ready`: persist, send, apply, answer, advance.
    pub fn handle_raft_ready(&mut self) -> Result<()> {
        if self.peer.stopped || !self.peer.raft_group.has_ready() {
            return Ok(());
        }
        // lab:begin 2b
        // lab:stub todo!("2b: persist the ready, send its messages, apply its committed entries, advance")
        let mut rd = self.peer.raft_group.ready();
        // Nothing leaves the peer until what the messages promise is durable.
        self.peer.storage_mut().save_ready_state(&rd)?;
        let msgs = std::mem::take(&mut rd.messages);
        self.peer.send(self.ctx.transport, msgs);
        if !rd.committed_entries.is_empty() {
            self.apply_committed(&rd.committed_entries)?;
        }
        let leader_now = self.peer.is_leader();
        if leader_now && !self.peer.was_leader {
            // Tell the scheduler at once, so clients find the new leader without waiting for
            // the periodic heartbeat.
            self.peer.heartbeat_scheduler(self.ctx.scheduler);
        }
        self.peer.was_leader = leader_now;
        self.peer.raft_group.advance(rd);
        Ok(())
        // lab:end 2b
    }

    // lab:begin 2b
    /// Applies committed entries to the kv engine, with the applied index in the same batch,
    /// then answers their proposals.
    fn apply_committed(&mut self, entries: &[Entry]) -> Result<()> {
        let mut apply_state = self.peer.storage().apply_state().clone();
        let mut wb = WriteBatch::new();
        let mut answers: Vec<(Callback, CmdResponse)> = Vec::new();
        for entry in entries {
            if entry.index <= apply_state.applied_index {
                continue;
            }
            let result = if entry.data.is_empty() {
                None // the leader's no-op
            } else if entry.get_entry_type() == EntryType::EntryConfChange {
                Some(Err(Error::other(
                    "conf changes are not supported by this store yet",
                )))
            } else {
                Some(match RaftCmdRequest::parse_from_bytes(&entry.data) {
                    Ok(req) => self.apply_command(&req, &mut wb, &mut apply_state, entry.index),
                    Err(e) => Err(Error::other(format!("undecodable command: {e}"))),
                })
            };
            apply_state.applied_index = entry.index;
            if let Some(cb) = self.take_proposal(entry.index, entry.term) {
                let response = match result {
                    Some(Ok(done)) => done,
                    Some(Err(e)) => CmdResponse {
                        resp: error_response(&e, self.peer.term()),
                        snap: None,
                    },
                    None => CmdResponse {
                        resp: error_response(&Error::StaleCommand, self.peer.term()),
                        snap: None,
                    },
                };
                answers.push((cb, response));
            }
        }
        self.flush(&mut wb, &apply_state)?;
        for (cb, response) in answers {
            cb(response);
        }
        Ok(())
    }

    /// Applies one normal command. Every request is checked before any is applied, so a
    /// command is applied whole or not at all (identically on every replica).
    fn apply_command(
        &mut self,
        req: &RaftCmdRequest,
        wb: &mut WriteBatch,
        apply_state: &mut proto::raft_serverpb::RaftApplyState,
        index: u64,
    ) -> Result<CmdResponse> {
        if req.has_admin_request() {
            return Err(Error::other(
                "admin commands are not supported by this store yet",
            ));
        }
        // A split may have moved keys away since the command was proposed.
        util::check_region_epoch(req, self.peer.region(), true)?;
        check_requests(req, self.peer.region())?;
        let mut resp = RaftCmdResponse::new();
        resp.mut_header().current_term = self.peer.term();
        let mut snap = None;
        for r in req.get_requests() {
            let mut out = Response::new();
            out.set_cmd_type(r.get_cmd_type());
            match r.get_cmd_type() {
                CmdType::Put => {
                    let p = r.get_put();
                    wb.put_cf(Cf::from_client(&p.cf)?, &p.key, &p.value)?;
                }
                CmdType::Delete => {
                    let d = r.get_delete();
                    wb.delete_cf(Cf::from_client(&d.cf)?, &d.key)?;
                }
                CmdType::Get => {
                    // Reads see every write applied before them.
                    apply_state.applied_index = index - 1;
                    self.flush(wb, apply_state)?;
                    let g = r.get_get();
                    let value = self
                        .ctx
                        .engines
                        .kv
                        .get_cf(Cf::from_client(&g.cf)?, &g.key)?;
                    out.mut_get().value = value.map(Vec::from).unwrap_or_default();
                }
                CmdType::Snap => {
                    apply_state.applied_index = index - 1;
                    self.flush(wb, apply_state)?;
                    let region = self.peer.region().clone();
                    let mut s = SnapResponse::new();
                    s.set_region(region.clone());
                    out.set_snap(s);
                    snap = Some(RegionSnapshot {
                        region,
                        snap: self.ctx.engines.kv.snapshot()?,
                    });
                }
                CmdType::Invalid => return Err(Error::other("invalid request type")),
            }
            resp.mut_responses().push(out);
        }
        Ok(CmdResponse { resp, snap })
    }

    /// Writes the pending data with the apply state to the kv engine and updates the cached
    /// apply state.
    fn flush(
        &mut self,
        wb: &mut WriteBatch,
        apply_state: &proto::raft_serverpb::RaftApplyState,
    ) -> Result<()> {
        if wb.is_empty() && apply_state == self.peer.storage().apply_state() {
            return Ok(());
        }
        crate::meta::write_apply_state(wb, self.peer.region_id, apply_state)?;
        self.ctx
            .engines
            .kv
            .write(std::mem::take(wb), Durability::Buffered)?;
        self.peer.storage_mut().set_apply_state(apply_state.clone());
        Ok(())
    }

    /// The callback of the proposal for `(index, term)`, answering older proposals whose
    /// entries were overwritten with `StaleCommand`.
    fn take_proposal(&mut self, index: u64, term: u64) -> Option<Callback> {
        while let Some(front) = self.peer.proposals.front() {
            if front.index > index {
                return None;
            }
            let Some(p) = self.peer.proposals.pop_front() else {
                break;
            };
            if p.index == index && p.term == term {
                return Some(p.cb);
            }
            (p.cb)(CmdResponse {
                resp: error_response(&Error::StaleCommand, self.peer.term()),
                snap: None,
            });
        }
        None
    }
    // lab:end 2b
}

/// Checks a normal command before it is proposed and again when it is applied: at least one
/// request, known types and column families, non-empty keys inside the region.
pub fn check_requests(req: &RaftCmdRequest, region: &proto::metapb::Region) -> Result<()> {
    if req.get_requests().is_empty() {
        return Err(Error::other("empty command: no requests"));
    }
    for r in req.get_requests() {
        let (cf, key) = request_key(r)?;
        if let Some(cf) = cf {
            Cf::from_client(cf)?;
        }
        if let Some(key) = key {
            if key.is_empty() {
                return Err(Error::other("empty key"));
            }
            util::check_key_in_region(key, region)?;
        }
    }
    Ok(())
}

/// The column family and key a request touches (none for `Snap`).
fn request_key(r: &Request) -> Result<(Option<&str>, Option<&[u8]>)> {
    Ok(match r.get_cmd_type() {
        CmdType::Get => (Some(&r.get_get().cf), Some(&r.get_get().key)),
        CmdType::Put => (Some(&r.get_put().cf), Some(&r.get_put().key)),
        CmdType::Delete => (Some(&r.get_delete().cf), Some(&r.get_delete().key)),
        CmdType::Snap => (None, None),
        CmdType::Invalid => return Err(Error::other("invalid request type")),
    })
}

impl PeerMsgHandler<'_, '_> {
    /// Stops the peer after an unrecoverable error, answering its proposals with it.
    pub fn stop(&mut self, err: &Error) {
        self.peer.stopped = true;
        self.peer.fail_proposals(err);
    }
}
