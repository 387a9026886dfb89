//! Stale peers and their end (provided framework code): recognising a message a peer must
//! not take, telling a stale sender it is gone, and destroying a peer for good.
//!
//! A peer is destroyed when
//! - it applies a `ChangePeer` that removes it (see `conf_change`);
//! - a message of its region arrives for a *larger* peer id on this store: the region removed
//!   this peer and added the store back with a new peer id, so this one is stale (the message
//!   then goes to the store again, which creates the new peer);
//! - a GC message (`is_tombstone`) comes from a peer whose region epoch is newer than its own:
//!   the sender's region no longer holds it (sent in answer to a stale vote request, see
//!   [`crate::store`]'s `create_peer`).
//!
//! A peer that is applying a snapshot is not destroyed by the last two (its data is being
//! written by a task); it will learn again.

use engine::{keys, Cf, Durability, WriteBatch};
use proto::eraftpb::{Message, MessageType};
use proto::metapb::Region;
use proto::raft_serverpb::{PeerState, RaftMessage};

use super::PeerMsgHandler;
use crate::store::create_peer::{is_vote, send_gc_reply};
use crate::store::StoreAction;
use crate::task::{ClearRegionDataTask, Task};
use crate::util::{find_peer, is_epoch_stale, KeyRange};
use crate::{meta, Error, Result};

/// What to do with a raft message before raft sees it.
pub(super) enum Verdict {
    /// Step it into raft.
    Step,
    /// Drop it (it is stale, or was answered).
    Drop,
}

impl PeerMsgHandler<'_, '_> {
    /// The checks a raft message passes before this peer's raft sees it.
    pub(super) fn check_message(&mut self, msg: &RaftMessage) -> Verdict {
        if msg.is_tombstone {
            self.on_gc_message(msg);
            return Verdict::Drop;
        }
        if !self.peer.is_initialized() {
            return self.check_message_uninitialised(msg);
        }
        let region = self.peer.region();
        let from_store = msg.get_from_peer().store_id;
        if is_epoch_stale(msg.get_region_epoch(), region.get_region_epoch())
            && find_peer(region, from_store).is_none()
        {
            // From a peer this region no longer has (removed, or of a region before a split
            // that moved it out). Its responses mean nothing here. A vote request means it is
            // campaigning with a stale view, and an append or heartbeat that it still believes
            // it leads (cut off when it was removed, it never learned): tell it to go. (A
            // stale leader also keeps reporting itself to the scheduler, which then sends
            // clients to it, `pitfalls.md` A5; the original answers votes only.)
            let m = msg.get_message().get_msg_type();
            if is_vote(msg)
                || (matches!(m, MessageType::MsgAppend | MessageType::MsgHeartbeat)
                    && msg.get_region_epoch().version <= region.get_region_epoch().version)
            {
                let region = region.clone();
                send_gc_reply(self.ctx, msg, &region);
            }
            return Verdict::Drop;
        }
        self.check_target(msg)
    }

    /// A message for another peer id of this region on this store: an older one is stale; a
    /// newer one means this peer is.
    fn check_target(&mut self, msg: &RaftMessage) -> Verdict {
        let target = msg.get_to_peer().id;
        if target < self.peer.meta.id {
            tracing::debug!(
                "{} drops a message for an older peer id {target}",
                self.peer.tag
            );
            return Verdict::Drop;
        }
        if target > self.peer.meta.id {
            // This store was removed from the region and added back as a new peer.
            if self.peer.applying_snapshot.is_none() {
                tracing::info!(
                    "{} is stale: the region has peer {target} on this store now",
                    self.peer.tag
                );
                let region = self.peer.region().clone();
                if let Err(e) = self.destroy_peer(&region) {
                    tracing::error!("{} cannot be destroyed: {e}", self.peer.tag);
                    return Verdict::Drop;
                }
                self.ctx
                    .meta
                    .actions
                    .push_back(StoreAction::Reroute(Box::new(msg.clone())));
            }
            return Verdict::Drop;
        }
        Verdict::Step
    }

    /// The checks for a replica that knows no members yet (see [`crate::Peer::replicate`]).
    ///
    /// - A message of an epoch older than the newest this replica has seen is dropped: it may
    ///   come from a removed peer that never learned of its removal. (The replica cannot tell
    ///   a removed sender from a lagging member, so it sends no GC message.)
    /// - A newer epoch is remembered.
    /// - An append or heartbeat of a lower term than this replica's is answered with its term.
    ///   Raft ignores such messages, but this replica cannot campaign, so the leader would
    ///   never learn that it must step up its term to be heard here, and a region whose quorum
    ///   needs this replica would stall for good.
    fn check_message_uninitialised(&mut self, msg: &RaftMessage) -> Verdict {
        let epoch = msg.get_region_epoch();
        let mine = self.peer.region().get_region_epoch().clone();
        if is_epoch_stale(epoch, &mine) {
            return Verdict::Drop;
        }
        // First whether the message is for this peer at all: a stale peer is destroyed with the
        // epoch it had, older than the message's, so the message may create its successor.
        if let Verdict::Drop = self.check_target(msg) {
            return Verdict::Drop;
        }
        if epoch != &mine {
            let mut region = self.peer.region().clone();
            region.set_region_epoch(epoch.clone());
            self.peer.storage_mut().set_region(region);
        }
        let m = msg.get_message();
        let term = self.peer.term();
        if m.term < term
            && matches!(
                m.get_msg_type(),
                MessageType::MsgAppend | MessageType::MsgHeartbeat
            )
        {
            let from = msg.get_from_peer().clone();
            self.peer.peer_cache.insert(from.id, from.clone());
            let reply = Message {
                msg_type: MessageType::MsgHeartbeatResponse,
                to: from.id,
                from: self.peer.meta.id,
                term,
                ..Default::default()
            };
            self.peer.send(self.ctx, vec![reply]);
            return Verdict::Drop;
        }
        Verdict::Step
    }

    /// A GC message: the sender's region, newer than this peer's, no longer holds it.
    fn on_gc_message(&mut self, msg: &RaftMessage) {
        let epoch = self.peer.region().get_region_epoch();
        if !is_epoch_stale(epoch, msg.get_region_epoch()) || msg.get_to_peer() != &self.peer.meta {
            return;
        }
        if self.peer.applying_snapshot.is_some() {
            return;
        }
        tracing::info!(
            "{} is told by peer {} that it was removed",
            self.peer.tag,
            msg.get_from_peer().id
        );
        let region = self.peer.region().clone();
        if let Err(e) = self.destroy_peer(&region) {
            tracing::error!("{} cannot be destroyed: {e}", self.peer.tag);
        }
    }

    /// Destroys this peer for good: its region state becomes `Tombstone` with `region` (the
    /// region as the peer last knew it, after its own removal if that is why it goes) and its
    /// apply state goes, in one synced kv batch; then its raft state and log go, in one synced
    /// raft batch; then a task deletes its data. Its proposals are answered `RegionNotFound`,
    /// its range is released, and the store forgets it after the current event.
    ///
    /// The order makes every crash point safe: a tombstone without the raft batch leaves
    /// garbage the next start deletes (see `finish_destroy_at_start`); the reverse order could
    /// leave a live region without its raft log, which cannot start.
    pub(crate) fn destroy_peer(&mut self, region: &Region) -> Result<()> {
        let region_id = self.peer.region_id;
        let mut kv_wb = WriteBatch::new();
        kv_wb.delete_cf(Cf::Raft, &keys::apply_state_key(region_id))?;
        meta::write_region_state(&mut kv_wb, region, PeerState::Tombstone)?;
        self.ctx.engines.kv.write(kv_wb, Durability::Sync)?;

        let mut raft_wb = WriteBatch::new();
        crate::peer_storage::clear_raft_log(self.ctx.engines, &mut raft_wb, region_id)?;
        self.ctx.engines.raft.write(raft_wb, Durability::Sync)?;

        if let Some(range) = self.peer.storage().clear_data_range() {
            self.schedule_data_cleanup(range);
        }
        self.ctx.meta.region_ranges.remove(region_id);
        tracing::info!("{} destroyed", self.peer.tag);
        self.peer.stopped = true;
        self.peer.fail_proposals(&Error::RegionNotFound(region_id));
        self.ctx
            .meta
            .actions
            .push_back(StoreAction::Destroyed { region_id });
        Ok(())
    }

    fn schedule_data_cleanup(&mut self, range: KeyRange) {
        let region_id = self.peer.region_id;
        self.ctx
            .meta
            .pending_cleanups
            .insert(region_id, range.clone());
        self.ctx
            .fx
            .spawn(Task::ClearRegionData(ClearRegionDataTask::new(
                region_id,
                range,
                self.ctx.cfg.task_batch_bytes,
            )));
    }
}
