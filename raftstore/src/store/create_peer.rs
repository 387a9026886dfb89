//! Raft messages for a region that has no peer on this store: when such a message may create
//! one (`maybe_create_peer`), and how tombstones keep removed peers dead.
//!
//! Peers of a region appear on a store in three ways: at bootstrap, when a split applied here
//! creates the new region's peer, and when a raft message arrives for a region the store does
//! not have. The third is how an added peer comes to life: the leader that applied
//! `AddNode(peer on store S)` starts sending to it, and store S has never heard of the region.
//!
//! # When may a message create a peer?
//! Only when all of these hold (the order of the checks below):
//!
//! 1. **No tombstone says it is stale.** A destroyed peer leaves its region state as
//!    `Tombstone` with the region as it last knew it. A message whose epoch is older than that
//!    region, or has the same `conf_ver` (it was sent before the change that removed this
//!    peer applied, or by a peer that never learned of it), is dropped: it would recreate the
//!    "ghost" of the removed peer, which would then take part in elections with a stale view.
//!    A stale vote request from a peer that is not in the tombstone's region is answered with
//!    a GC message, so the stale sender learns it is gone and destroys itself. A message with
//!    a newer `conf_ver` may create the peer again: the region re-added this store (the same
//!    peer id may come back, `basic_conf_change_3b` re-adds peer 2 on store 2).
//! 2. **It is an initial message**: a vote request, or a heartbeat with commit 0 (a leader
//!    sends commit `min(match, committed)`, which is 0 only to a peer it has never replicated
//!    to). Any other message comes from a group that already knew this peer, and a store that
//!    lost it (destroyed, then a delayed append arrives) must not bring it back from an
//!    append.
//! 3. **Its key range overlaps no region of this store.** An initial message carries the
//!    sender's region range. If a region here still covers it, the message is from the right
//!    half of a split this store has not applied yet: applying the split will create the peer
//!    (with the right data, which it already holds). Creating it now would make two peers own
//!    the same keys. A first vote request is parked and replayed when the split creates the
//!    peer, so the new region's first election is not held up.
//!
//! The peer is created *uninitialised* ([`Peer::replicate`]): no range, no peers, log index and
//! term 0. The leader finds it has nothing and sends a snapshot; applying it gives the peer
//! its region, range and data.

use engine::{Durability, Engines, WriteBatch};
use proto::eraftpb::MessageType;
use proto::metapb::{Region, RegionEpoch};
use proto::raft_serverpb::{PeerState, RaftMessage};

use super::{StoreContext, StoreMeta};
use crate::peer::Peer;
use crate::task::{ClearRegionDataTask, Task};
use crate::util::{find_peer, is_epoch_stale, is_initial_msg, KeyRange};
use crate::{meta, Config, Result};

/// The peer `msg` may create on this store, if it may (see the module docs); `None` when the
/// message is dropped (or parked, or answered with a GC message).
pub(super) fn maybe_create_peer(
    ctx: &mut StoreContext<'_>,
    msg: &RaftMessage,
) -> Result<Option<Box<Peer>>> {
    let region_id = msg.region_id;
    if msg.is_tombstone {
        // A GC message for a peer that is already gone.
        return Ok(None);
    }
    if let Some(state) = meta::region_local_state(&ctx.engines.kv, region_id)? {
        match state.get_state() {
            PeerState::Tombstone => {
                let dead = state.get_region();
                let from_epoch = msg.get_region_epoch();
                if is_epoch_stale(from_epoch, dead.get_region_epoch())
                    && is_vote(msg)
                    && find_peer(dead, msg.get_from_peer().store_id).is_none()
                {
                    send_gc_reply(ctx, msg, dead);
                }
                if is_before_removal(from_epoch, dead.get_region_epoch()) {
                    // The ghost must stay dead.
                    return Ok(None);
                }
            }
            _ => {
                // The region's state is here but not its peer: a split wrote it and is about to
                // start the peer (in this same event). Keep a first vote for it.
                park_first_vote(ctx.meta, msg);
                return Ok(None);
            }
        }
    }
    if !is_initial_msg(msg.get_message()) {
        return Ok(None);
    }
    if !ctx
        .meta
        .region_ranges
        .overlapping(&msg.start_key, &msg.end_key)
        .is_empty()
    {
        park_first_vote(ctx.meta, msg);
        return Ok(None);
    }
    let peer = Peer::replicate(
        ctx.store_id,
        ctx.cfg,
        ctx.engines.clone(),
        region_id,
        msg.get_to_peer().clone(),
        msg.get_region_epoch().clone(),
    )?;
    tracing::info!(
        "store {}: created peer {} of region {region_id} from a {:?}",
        ctx.store_id,
        msg.get_to_peer().id,
        msg.get_message().get_msg_type()
    );
    Ok(Some(Box::new(peer)))
}

/// Whether a message with region epoch `from` comes from before the removal of a peer whose
/// tombstone holds the region at epoch `dead` (the region as it was right after the removal):
/// an older epoch, or the same `conf_ver`. Such a message must not create the peer again.
pub fn is_before_removal(from: &RegionEpoch, dead: &RegionEpoch) -> bool {
    // lab:begin 3b
    // lab:stub let _ = (from, dead);
    // lab:stub todo!("3b: may a message with this epoch bring back a removed peer?")
    is_epoch_stale(from, dead) || from.conf_ver == dead.conf_ver
    // lab:end 3b
}

/// Whether a raft message asks for a vote.
pub(crate) fn is_vote(msg: &RaftMessage) -> bool {
    msg.get_message().get_msg_type() == MessageType::MsgRequestVote
}

/// At most this many first votes wait for their split.
const MAX_PENDING_VOTES: usize = 256;

/// Keeps a new region's first vote request (a candidate at the first term after the initial
/// term 5) for the split that will create its peer here.
fn park_first_vote(meta: &mut StoreMeta, msg: &RaftMessage) {
    let m = msg.get_message();
    if is_vote(msg)
        && m.term == crate::meta::RAFT_INIT_LOG_TERM + 1
        && meta.pending_votes.len() < MAX_PENDING_VOTES
    {
        meta.pending_votes.push(msg.clone());
    }
}

/// Tells the sender of a stale message that its peer is no longer in `region` (the region as
/// this store last knew it): a message from the recipient of `msg` back to its sender, marked
/// `is_tombstone`, with `region`'s epoch. The sender destroys itself if that epoch is newer
/// than its own.
pub(crate) fn send_gc_reply(ctx: &mut StoreContext<'_>, msg: &RaftMessage, region: &Region) {
    let mut gc = RaftMessage::new();
    gc.region_id = msg.region_id;
    gc.set_from_peer(msg.get_to_peer().clone());
    gc.set_to_peer(msg.get_from_peer().clone());
    gc.set_region_epoch(region.get_region_epoch().clone());
    gc.is_tombstone = true;
    // Raft ignores the body; it only has to be there.
    gc.mut_message().set_msg_type(MessageType::MsgHeartbeat);
    if let Err(e) = ctx.fx.transport.send(gc) {
        tracing::debug!("store {}: cannot send a GC message: {e}", ctx.store_id);
    }
}

/// Finishes, at a start, the destruction of a peer whose tombstone is here: a crash may have
/// kept its raft log (deleted after the tombstone was written) or part of its data (deleted by
/// a task). The raft state goes now; the data is cleared by a task, unless another region
/// owns the range by now (its snapshot cleared the range before filling it).
pub(super) fn finish_destroy_at_start(
    engines: &Engines,
    cfg: &Config,
    meta: &mut StoreMeta,
    region: &Region,
    tasks: &mut Vec<Task>,
) -> Result<()> {
    if meta::raft_local_state(&engines.raft, region.id)?.is_some() {
        let mut raft_wb = WriteBatch::new();
        crate::peer_storage::clear_raft_log(engines, &mut raft_wb, region.id)?;
        engines.raft.write(raft_wb, Durability::Sync)?;
    }
    if region.get_peers().is_empty() {
        return Ok(()); // an uninitialised peer owned no data
    }
    let range = KeyRange::of_region(region);
    if !meta
        .region_ranges
        .overlapping(&range.start, &range.end)
        .is_empty()
    {
        return Ok(());
    }
    meta.pending_cleanups.insert(region.id, range.clone());
    tasks.push(Task::ClearRegionData(ClearRegionDataTask::new(
        region.id,
        range,
        cfg.task_batch_bytes,
    )));
    Ok(())
}
