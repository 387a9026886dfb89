//! How events reach the stores: running a store event and routing what it produced (raft
//! messages through the network model, snapshots as streams of chunks, background tasks,
//! scheduler answers), with every delivery bound to the incarnation of the store it was
//! meant for. An event may end with the store dead inside it ([`super::event_crash`]): then
//! only what it emitted before it died goes out.

use std::time::Duration;

use engine::{Engine, WriteFuse};
use proto::eraftpb::MessageType;
use proto::metapb;
use proto::raft_serverpb::{RaftMessage, SnapshotChunk};
use proto::schedulerpb::{AskSplitResponse, RegionHeartbeatRequest, StoreStats};
use raft::SnapshotStatus;
use raftstore::snap::transfer::OutgoingSnapshot;
use raftstore::{Callback, CmdResponse, Effects, SchedulerClient, StoreEvent, Transport};

use super::describe::{Lazy, MsgDesc};
use super::{check_oracles, event_crash, tasks, World};
use crate::scheduler::ClusterScheduler;
use crate::sim::net::{Damage, Route};
use crate::sim::{Core, Label};

/// Whether the store an event runs on died inside it (a crash planned by
/// [`super::event_crash`] happened): from then on it sends nothing.
fn dead(fuse: Option<&WriteFuse>) -> bool {
    fuse.is_some_and(WriteFuse::is_blown)
}

/// Collects what a store sends while it handles one event (until it dies, if it does).
#[derive(Default)]
struct Outbox {
    msgs: Vec<RaftMessage>,
    snapshots: Vec<OutgoingSnapshot>,
    fuse: Option<WriteFuse>,
}

impl Transport for Outbox {
    fn send(&mut self, msg: RaftMessage) -> raftstore::Result<()> {
        if !dead(self.fuse.as_ref()) {
            self.msgs.push(msg);
        }
        Ok(())
    }

    fn send_snapshot(&mut self, snap: OutgoingSnapshot) -> raftstore::Result<()> {
        if !dead(self.fuse.as_ref()) {
            self.snapshots.push(snap);
        }
        Ok(())
    }
}

/// The scheduler as a store reaches it during one event: cut off once the store died in it.
/// Reports of a dead store are lost; its requests fail. What reaches the scheduler is stamped
/// with the virtual time of the event.
struct SchedulerLink<'a> {
    scheduler: &'a mut dyn ClusterScheduler,
    fuse: Option<&'a WriteFuse>,
    /// The event's virtual time, since the simulation started.
    now: Duration,
}

impl SchedulerLink<'_> {
    fn check(&self) -> raftstore::Result<()> {
        if dead(self.fuse) {
            Err(raftstore::Error::other("the store crashed"))
        } else {
            Ok(())
        }
    }
}

impl SchedulerClient for SchedulerLink<'_> {
    fn alloc_id(&mut self) -> raftstore::Result<u64> {
        self.check()?;
        Ok(self.scheduler.alloc_id())
    }

    fn region_heartbeat(&mut self, req: RegionHeartbeatRequest) -> raftstore::Result<()> {
        if dead(self.fuse) {
            return Ok(());
        }
        Ok(self.scheduler.region_heartbeat(&req, self.now)?)
    }

    fn store_heartbeat(&mut self, stats: StoreStats) -> raftstore::Result<()> {
        if dead(self.fuse) {
            return Ok(());
        }
        self.scheduler.store_heartbeat(&stats, self.now);
        Ok(())
    }

    fn ask_split(&mut self, region: &metapb::Region) -> raftstore::Result<AskSplitResponse> {
        self.check()?;
        Ok(self.scheduler.ask_split(region)?)
    }

    fn report_split(
        &mut self,
        left: &metapb::Region,
        right: &metapb::Region,
    ) -> raftstore::Result<()> {
        if dead(self.fuse) {
            return Ok(());
        }
        Ok(self.scheduler.report_split(left, right)?)
    }
}

/// A client's callback that stays silent if the store calls it after dying inside an event
/// (the answer of a dead process never leaves). `kv` is the store's kv engine, which knows
/// whether the fuse armed for the current event blew.
fn gate(cb: Callback, kv: &Engine) -> Callback {
    let kv = kv.clone();
    Box::new(move |resp: CmdResponse| {
        if !kv.write_fuse_blown() {
            cb(resp);
        }
    })
}

/// Runs `ev` on store `store_id` (dropped if the store is stopped) and sends what it produced.
/// If a crash inside the event is planned ([`super::event_crash`]) and happens, the store is
/// crashed at the end of the event: what it sent before it died goes out, the rest and the
/// tasks it spawned are lost.
pub(crate) fn run_on_store(w: &mut World, c: &mut Core<World>, store_id: u64, ev: StoreEvent) {
    let Some(kv) = w
        .stores
        .get(&store_id)
        .filter(|n| n.store.is_some())
        .map(|n| n.engines.kv.clone())
    else {
        return;
    };
    let ev = match ev {
        StoreEvent::Command { req, cb } => StoreEvent::Command {
            req,
            cb: gate(cb, &kv),
        },
        StoreEvent::SplitRegion {
            region_id,
            region_epoch,
            split_key,
            cb,
        } => StoreEvent::SplitRegion {
            region_id,
            region_epoch,
            split_key,
            cb: cb.map(|cb| gate(cb, &kv)),
        },
        ev => ev,
    };
    let armed = event_crash::arm(w, c, store_id);
    let fuse = armed.as_ref().map(event_crash::Armed::fuse);
    let mut outbox = Outbox {
        fuse: fuse.cloned(),
        ..Outbox::default()
    };
    let mut spawned = Vec::new();
    let handled = match w.stores.get_mut(&store_id).and_then(|n| n.store.as_mut()) {
        Some(store) => {
            // Log lines (with `RUST_LOG` set) say when and where they happened.
            let _span = tracing::info_span!("", t = %c.now(), store = store_id).entered();
            store.handle(
                ev,
                Effects {
                    transport: &mut outbox,
                    scheduler: &mut SchedulerLink {
                        scheduler: &mut *w.scheduler,
                        fuse,
                        now: c.now().as_duration(),
                    },
                    tasks: &mut spawned,
                },
            );
            true
        }
        None => false,
    };
    // Disarmed whatever happened: a fuse left armed would eat the store's later writes.
    let crashed = armed.is_some_and(|a| event_crash::disarm(w, c, store_id, a));
    if !handled {
        return;
    }
    route_messages(w, c, store_id, outbox.msgs);
    if crashed {
        // The tasks died with the store; so did the streams it would have fed.
        route_scheduler_responses(w, c);
        check_oracles(w, c);
        return;
    }
    for snap in outbox.snapshots {
        start_stream(w, c, store_id, snap);
    }
    for task in spawned {
        tasks::schedule(w, c, store_id, task);
    }
    route_scheduler_responses(w, c);
    check_oracles(w, c);
}

/// Schedules `ev` for store `store_id` after `delay`, over a connection to the store's
/// current incarnation: the event is lost if the store is down now, or stops or restarts
/// before it arrives.
pub(crate) fn deliver(
    w: &World,
    c: &mut Core<World>,
    store_id: u64,
    delay: Duration,
    label: impl Into<Label>,
    ev: StoreEvent,
) {
    let Some(incarnation) = w.running(store_id) else {
        return;
    };
    c.schedule(delay, label, move |w: &mut World, c: &mut Core<World>| {
        if w.running(store_id) == Some(incarnation) {
            run_on_store(w, c, store_id, ev);
        }
    });
}

impl super::Cluster {
    /// Delivers `msg` to the store its `to_peer` names, `client_latency` from now, as if it
    /// came over the network but past every filter: for tests that replay a late message, or
    /// forge one a store must refuse. Lost if that store is down or restarts meanwhile.
    pub fn inject_raft_message(&mut self, msg: RaftMessage) {
        let (w, c) = self.sim().parts();
        let to = msg.get_to_peer().store_id;
        let latency = w.config().client_latency;
        let label = Label::new("injected raft", MsgDesc::of(&msg));
        deliver(w, c, to, latency, label, StoreEvent::Raft(msg));
    }
}

fn route_of(from: u64, msg: &RaftMessage) -> Route {
    Route {
        from,
        to: msg.get_to_peer().store_id,
        kind: msg.get_message().get_msg_type() as i32,
        region: msg.region_id,
    }
}

fn route_messages(w: &mut World, c: &mut Core<World>, from: u64, msgs: Vec<RaftMessage>) {
    for msg in msgs {
        let route = route_of(from, &msg);
        let fate = w.net.route(c.rng(), &route);
        let Some((&last, copies)) = fate.0.split_last() else {
            continue;
        };
        for &delay in copies {
            let label = Label::new("raft", MsgDesc::of(&msg));
            deliver(w, c, route.to, delay, label, StoreEvent::Raft(msg.clone()));
        }
        let label = Label::new("raft", MsgDesc::of(&msg));
        deliver(w, c, route.to, last, label, StoreEvent::Raft(msg));
    }
}

/// Delivers the responses the scheduler produced (to heartbeats, or in its tick) to their
/// stores, `client_latency` from now, each over a connection to the store's current
/// incarnation.
pub(crate) fn route_scheduler_responses(w: &mut World, c: &mut Core<World>) {
    for (store_id, resp) in w.scheduler.take_responses() {
        let delay = w.cfg.client_latency;
        let region = resp.region_id;
        let label = Label::new(
            "scheduler response",
            Lazy(move |f| write!(f, "to store {store_id}, region {region}")),
        );
        deliver(
            w,
            c,
            store_id,
            delay,
            label,
            StoreEvent::SchedulerResponse(resp),
        );
    }
}

/// A snapshot on its way: the chunks not sent yet, and where they go.
struct Stream {
    snap: OutgoingSnapshot,
    from: u64,
    from_incarnation: u64,
    to: u64,
    to_incarnation: u64,
    next: u64,
    /// When the last chunk sent so far arrives (to report `Finish` after it).
    last_arrival: crate::sim::SimTime,
}

/// Starts streaming a snapshot: chunk by chunk, each routed like a message (lost, delayed,
/// duplicated, reordered or damaged by the network's filters), read from the file only when
/// it is sent. The sender learns the outcome as a [`StoreEvent::SnapshotStatus`]: `Failure`
/// as soon as a chunk is lost or the receiver goes down (a broken stream), `Finish` once the
/// last chunk has arrived.
fn start_stream(w: &mut World, c: &mut Core<World>, from: u64, snap: OutgoingSnapshot) {
    w.stats.snapshot_streams += 1;
    let to = snap.message().get_to_peer().store_id;
    let (Some(from_incarnation), Some(to_incarnation)) = (w.running(from), w.running(to)) else {
        report(w, c, from, &snap, SnapshotStatus::Failure, Duration::ZERO);
        return;
    };
    let stream = Stream {
        snap,
        from,
        from_incarnation,
        to,
        to_incarnation,
        next: 0,
        last_arrival: c.now(),
    };
    send_chunk(w, c, stream);
}

/// The gap between two chunks of a stream.
const CHUNK_GAP: Duration = Duration::from_micros(200);

fn send_chunk(w: &mut World, c: &mut Core<World>, mut s: Stream) {
    if w.running(s.from) != Some(s.from_incarnation) {
        return; // the sender died: nobody is left to learn the outcome
    }
    let key = s.snap.key();
    let chunk = match s.snap.chunk(s.next) {
        Ok(chunk) => chunk,
        Err(e) => {
            tracing::warn!("store {}: {e}", s.from);
            w.stats.snapshot_streams_failed += 1;
            report(
                w,
                c,
                s.from,
                &s.snap,
                SnapshotStatus::Failure,
                Duration::ZERO,
            );
            return;
        }
    };
    let route = route_of(s.from, s.snap.message());
    let fate = w.net.route(c.rng(), &route);
    if fate.dropped() || w.running(s.to) != Some(s.to_incarnation) {
        w.stats.snapshot_streams_failed += 1;
        let latency = w.net.max_latency;
        report(w, c, s.from, &s.snap, SnapshotStatus::Failure, latency);
        return;
    }
    let chunk = damage(chunk, fate.1, c);
    if fate.1 != Damage::None {
        w.stats.chunks_damaged += 1;
    }
    let (index, count) = (s.next, s.snap.chunk_count());
    for delay in &fate.0 {
        let label = Label::new(
            "snapshot chunk",
            Lazy(move |f| {
                write!(
                    f,
                    "{key} chunk {}/{count} store {} → {}",
                    index + 1,
                    s.from,
                    s.to
                )?;
                if fate.1 != Damage::None {
                    write!(f, " ({:?})", fate.1)?;
                }
                Ok(())
            }),
        );
        s.last_arrival = s.last_arrival.max(c.now().after(*delay));
        let to_incarnation = s.to_incarnation;
        let to = s.to;
        let chunk = chunk.clone();
        c.schedule(*delay, label, move |w: &mut World, c: &mut Core<World>| {
            if w.running(to) == Some(to_incarnation) {
                run_on_store(w, c, to, StoreEvent::SnapshotChunk(chunk));
            }
        });
    }
    s.next += 1;
    if s.next == count {
        let after = s.last_arrival.since(c.now());
        report(w, c, s.from, &s.snap, SnapshotStatus::Finish, after);
        return;
    }
    c.schedule(CHUNK_GAP, "snapshot stream", move |w, c| {
        send_chunk(w, c, s)
    });
}

/// What the network did to a chunk's bytes.
fn damage(mut chunk: SnapshotChunk, how: Damage, c: &mut Core<World>) -> SnapshotChunk {
    use rand::Rng;
    match how {
        Damage::None => {}
        Damage::Corrupt if !chunk.data.is_empty() => {
            let i = c.rng().gen_range(0..chunk.data.len());
            let bit = c.rng().gen_range(0..8);
            chunk.data[i] ^= 1 << bit;
        }
        Damage::Corrupt => {}
        Damage::Truncate => {
            let keep = chunk.data.len() / 2;
            chunk.data.truncate(keep);
        }
    }
    chunk
}

/// Tells the sending store how a stream ended.
fn report(
    w: &World,
    c: &mut Core<World>,
    from: u64,
    snap: &OutgoingSnapshot,
    status: SnapshotStatus,
    after: Duration,
) {
    let msg = snap.message();
    debug_assert_eq!(msg.get_message().get_msg_type(), MessageType::MsgSnapshot);
    let (region_id, to_peer_id, key) = (msg.region_id, msg.get_to_peer().id, snap.key());
    let label = Label::new(
        "snapshot status",
        Lazy(move |f| write!(f, "{key} to peer {to_peer_id}: {status:?}")),
    );
    deliver(
        w,
        c,
        from,
        after,
        label,
        StoreEvent::SnapshotStatus {
            region_id,
            to_peer_id,
            status,
        },
    );
}

// lab:needs 2aa..3b
#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use engine::{keys, Cf};
    use parking_lot::Mutex;
    use raftstore::task::{RaftLogGcTask, Task};
    use raftstore::{CmdResponse, StoreEvent};

    use crate::cluster::client::{new_get_cf_cmd, new_request};
    use crate::cluster::{tasks, Cluster, ClusterConfig};

    /// Sends a command to store 1 and spawns there a task deleting region 99's log entry 1
    /// (which the test wrote), both arriving a little later.
    fn command_and_task(c: &mut Cluster) -> Arc<Mutex<Option<CmdResponse>>> {
        let region = c.get_region(b"k");
        let mut req = new_request(
            1,
            region.get_region_epoch().clone(),
            vec![new_get_cf_cmd("default", b"k")],
        );
        req.mut_header().set_peer(raftstore::util::new_peer(1, 1));
        let slot: Arc<Mutex<Option<CmdResponse>>> = Arc::new(Mutex::new(None));
        let fill = Arc::clone(&slot);
        let cb = Box::new(move |r: CmdResponse| *fill.lock() = Some(r));
        c.engines(1)
            .raft
            .put_cf(Cf::Raft, &keys::raft_log_key(99, 1), b"x")
            .expect("written");
        let (w, core) = c.sim().parts();
        super::deliver(
            w,
            core,
            1,
            Duration::from_millis(10),
            "cmd",
            StoreEvent::Command { req, cb },
        );
        tasks::schedule(
            w,
            core,
            1,
            Task::RaftLogGc(RaftLogGcTask::new(99, 0, 2, 1024)),
        );
        slot
    }

    fn entry_left(c: &Cluster) -> bool {
        let key = keys::raft_log_key(99, 1);
        c.engines(1)
            .raft
            .get_cf(Cf::Raft, &key)
            .expect("read")
            .is_some()
    }

    /// What a store had in flight dies with it: a command sent to it before it restarted is
    /// never answered, and a task it spawned never runs; sent to the running store, the same
    /// command is answered and the task runs.
    #[test]
    fn deliveries_and_tasks_do_not_cross_a_restart() {
        let mut c = Cluster::new("restart_cuts", 9, ClusterConfig::new(3));
        c.must_put(b"k", b"v");

        let lost = command_and_task(&mut c);
        c.stop_store(1);
        c.start_store(1);
        c.run_for(Duration::from_secs(1));
        assert!(lost.lock().is_none(), "a command crossed a restart");
        assert!(entry_left(&c), "a task crossed a restart");

        let answered = command_and_task(&mut c);
        c.run_for(Duration::from_secs(1));
        assert!(
            answered.lock().is_some(),
            "the running store did not answer"
        );
        assert!(!entry_left(&c), "the running store's task did not run");
    }
}
// lab:end-needs
