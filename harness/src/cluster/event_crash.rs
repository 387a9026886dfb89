//! Crash points inside an event: a store dies between two engine writes of one event.
//!
//! A store handles one event at a time and writes its engines several times while it does
//! (the raft log and raft state, synced; the applied data and apply state, buffered; region
//! states; ...). [`crate::cluster::Cluster::crash_store`] and the task faults
//! ([`super::tasks`]) crash a store only *between* events or task steps, so they never
//! separate two writes of one step: a split whose new region state landed but whose apply
//! state did not, a conf change half-persisted. Admin commands are not idempotent, so those
//! half-written states are where restart bugs hide. This module plants the crash inside the
//! event, at a chosen write, with the engine's [`WriteFuse`]:
//!
//! - around every store event (`run_on_store` in `route.rs`), if a crash is planned for it,
//!   a fuse is armed on the store's two engines. If the fuse blew during the event, the
//!   store died at that write: it is crashed at once (losing everything it had not synced,
//!   and every write from the blow on, however durable it was meant to be; those still land
//!   until the event ends, so the dying store reads coherent state: see
//!   [`engine::WriteFuse`]), and restarted later;
//! - what the store emitted before the blow went out (raft messages, client answers,
//!   scheduler heartbeats), since a real store sends them as it goes; what it emitted after
//!   did not: a dead process sends nothing. Its scheduler requests after the blow
//!   (`alloc_id`, `ask_split`) fail, and the tasks it spawned in the event, and the snapshots
//!   it started sending, die with it (as every task and stream of a crashed store does);
//! - the writes that landed are what the apply oracle saw; the lost ones it never sees, and
//!   after the restart it reloads the store's state from the engines, as after any crash.
//!
//! Two ways to plan a crash:
//! - **targeted**, for tests: an [`EventCrash`] in [`EventCrashes::planned`] names a store,
//!   a [`CrashTrigger`] (the first batch that starts the count) and how many writes land from
//!   it (`0`: the trigger batch itself is lost). It fires once, in the first event of that
//!   store where the trigger matches. If that event ends with `after_writes` or fewer writes
//!   from the trigger on, there was no such crash point: the plan is dropped and counted in
//!   [`super::Stats::event_crashes_missed`], which is how a test walks every crash point of an
//!   event without knowing how many writes it makes (`n = 0, 1, ...` until one misses);
//! - **random**, for whole runs: an [`EventCrashMix`] arms a fuse on each store event with a
//!   seeded probability, blowing after a seeded number of writes. Off by default (the 2b and
//!   2c mixes do not draw from the RNG for it, so their seeds replay unchanged).
//!
//! Limits:
//! - Only engine writes are crash points. Files (snapshot files being received or generated)
//!   are written whole or not at all as far as this fault goes, and the background tasks'
//!   steps are crashed between, not inside ([`super::tasks::TaskCrash`]).
//! - The crash is decided per event; a crash between two events is what
//!   [`crate::cluster::Cluster::crash_store`] is for.
//! - Replies of the dying process are cut at the blow, not at the moment the real store
//!   would have flushed them: a message sent just before the fatal write leaves, even though
//!   a real network buffer might have lost it too (dropping is the network model's job).

use std::time::Duration;

use engine::{keys, Cf, EngineKind, WriteBatch, WriteFuse};
use proto::raft_serverpb::RaftLocalState;
use protobuf::Message;
use rand::Rng;

use super::describe::Lazy;
use super::{crash_store_in, failure_story, restart_after, World};
use crate::sim::{Core, Label};

/// A seeded mix of crashes inside events (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct EventCrashMix {
    /// The probability that a store event has a crash armed (most events write nothing, so
    /// fewer crash).
    pub rate: f64,
    /// The crash point: how many of the event's writes land, drawn uniformly in
    /// `0..max_writes` (at least `0..1`).
    pub max_writes: u32,
    /// The crashed store restarts this long after.
    pub restart_after: Duration,
}

/// The batch a planned crash starts counting from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashTrigger {
    /// Any batch, to either engine: the count starts at the event's first write batch.
    AnyWrite,
    /// A kv-engine batch that writes a region's local state (`RegionLocalState`: a split, a
    /// conf change, a snapshot taken in, a peer destroyed), of this region or of any.
    RegionStateWrite {
        /// The region, or `None` for any.
        region_id: Option<u64>,
    },
    /// A kv-engine batch that writes a region's apply state (applied entries, compaction).
    ApplyStateWrite {
        /// The region, or `None` for any.
        region_id: Option<u64>,
    },
    /// A raft-engine batch that appends the region's log entry at `index`: the ready that
    /// persists the entry (and, once it is durable, acknowledges it).
    LogAppend {
        /// The region.
        region_id: u64,
        /// The log index.
        index: u64,
    },
    /// A raft-engine batch that writes the region's raft state with a commit index of at
    /// least `index`: the store persisting that the entry at `index` is committed, which is
    /// where the ready that applies it starts.
    CommitReaches {
        /// The region.
        region_id: u64,
        /// The log index.
        index: u64,
    },
}

impl CrashTrigger {
    /// Whether `batch`, written to `engine`, starts the count.
    fn matches(&self, engine: EngineKind, batch: &WriteBatch) -> bool {
        let is = |want: Option<u64>, got: Option<u64>| {
            got.is_some_and(|got| want.is_none_or(|w| w == got))
        };
        match *self {
            CrashTrigger::AnyWrite => true,
            CrashTrigger::RegionStateWrite { region_id } => {
                engine == EngineKind::Kv
                    && batch.ops().any(|op| {
                        op.cf == Cf::Raft
                            && is(
                                region_id,
                                keys::decode_region_meta_key(op.key)
                                    .filter(|&(_, suffix)| suffix == keys::REGION_STATE_SUFFIX)
                                    .map(|(region, _)| region),
                            )
                    })
            }
            CrashTrigger::ApplyStateWrite { region_id } => {
                engine == EngineKind::Kv
                    && batch.ops().any(|op| {
                        op.cf == Cf::Raft && is(region_id, keys::decode_apply_state_key(op.key))
                    })
            }
            CrashTrigger::LogAppend { region_id, index } => {
                let key = keys::raft_log_key(region_id, index);
                engine == EngineKind::Raft
                    && batch
                        .ops()
                        .any(|op| op.cf == Cf::Raft && op.key == key && op.value.is_some())
            }
            CrashTrigger::CommitReaches { region_id, index } => {
                let key = keys::raft_state_key(region_id);
                engine == EngineKind::Raft
                    && batch.ops().any(|op| {
                        op.cf == Cf::Raft
                            && op.key == key
                            && op
                                .value
                                .and_then(|v| RaftLocalState::parse_from_bytes(v).ok())
                                .is_some_and(|s| s.get_hard_state().commit >= index)
                    })
            }
        }
    }
}

/// A planned crash of a store inside one of its events (see the
/// [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCrash {
    /// The store.
    pub store: u64,
    /// The batch the count starts at; the crash happens in the event that writes it.
    pub trigger: CrashTrigger,
    /// How many writes land, counting the trigger batch (`0`: it is lost).
    pub after_writes: u32,
    /// The crashed store restarts this long after.
    pub restart_after: Duration,
}

/// The crashes inside events a cluster injects.
#[derive(Debug, Clone, Default)]
pub struct EventCrashes {
    /// The random mix, if on (from [`super::ClusterConfig::event_crash_mix`]).
    pub mix: Option<EventCrashMix>,
    /// Targeted crashes waiting for their event, oldest first; a store's first one is armed
    /// on each of its events until it fires or misses.
    pub planned: Vec<EventCrash>,
}

/// A fuse armed for one event.
pub(crate) struct Armed {
    fuse: WriteFuse,
    /// Whether it is the store's first planned crash (else the random mix's).
    planned: bool,
    restart_after: Duration,
}

impl Armed {
    /// The fuse, for what the event emits to check whether the store is still alive.
    pub(crate) fn fuse(&self) -> &WriteFuse {
        &self.fuse
    }
}

/// Arms a fuse on store `store_id`'s engines if a crash is planned for its next event.
pub(crate) fn arm(w: &mut World, c: &mut Core<World>, store_id: u64) -> Option<Armed> {
    let crashes = &w.event_crashes;
    let armed = if let Some(plan) = crashes.planned.iter().find(|p| p.store == store_id) {
        let trigger = plan.trigger.clone();
        Armed {
            fuse: WriteFuse::after_first(plan.after_writes, move |engine, batch| {
                trigger.matches(engine, batch)
            }),
            planned: true,
            restart_after: plan.restart_after,
        }
    } else {
        let mix = crashes.mix.as_ref()?;
        if !c.rng().gen_bool(mix.rate.clamp(0.0, 1.0)) {
            return None;
        }
        let restart_after = mix.restart_after;
        let n = c.rng().gen_range(0..mix.max_writes.max(1));
        Armed {
            fuse: WriteFuse::after_writes(n),
            planned: false,
            restart_after,
        }
    };
    let node = w.stores.get(&store_id)?;
    if let Err(e) = node.engines.arm_write_fuse(&armed.fuse) {
        let what = format!("store {store_id}: cannot plan a crash inside an event: {e}");
        panic!("{}", failure_story(w, c, &what));
    }
    Some(armed)
}

/// Disarms the fuse after the event; if it blew, crashes the store and schedules its restart.
/// Returns whether the store crashed.
pub(crate) fn disarm(w: &mut World, c: &mut Core<World>, store_id: u64, armed: Armed) -> bool {
    if let Some(node) = w.stores.get(&store_id) {
        node.engines.disarm_write_fuse();
    }
    let Armed {
        fuse,
        planned,
        restart_after: after,
    } = armed;
    let done = fuse.is_blown() || (planned && fuse.triggered());
    if planned && done {
        if let Some(i) = w
            .event_crashes
            .planned
            .iter()
            .position(|p| p.store == store_id)
        {
            w.event_crashes.planned.remove(i);
        }
    }
    let Some(blow) = fuse.blow() else {
        if planned && done {
            w.stats.event_crashes_missed += 1;
            let landed = fuse.landed();
            c.note(Label::new(
                "event crash missed",
                Lazy(move |f| {
                    write!(
                        f,
                        "store {store_id}: the event ended after {landed} writes, before the planned crash point"
                    )
                }),
            ));
        }
        return false;
    };
    w.stats.event_crashes += 1;
    c.note(Label::new(
        "event crash",
        Lazy(move |f| {
            write!(
                f,
                "store {store_id} dies inside an event: {} writes landed, lost from a {} {}",
                blow.landed,
                blow.engine,
                if blow.sync { "sync" } else { "batch" }
            )
        }),
    ));
    crash_store_in(w, c, store_id);
    restart_after(c, store_id, after);
    true
}

impl super::Cluster {
    /// Plans a crash of a store inside one of its coming events (see [`EventCrash`]) and
    /// notes it in the trace.
    pub fn plan_event_crash(&mut self, crash: EventCrash) {
        let (w, c) = self.sim().parts();
        let desc = format!("{crash:?}");
        c.note(Label::new("fault", desc));
        w.event_crashes.planned.push(crash);
    }

    /// Whether a planned crash inside an event still waits for its event.
    pub fn event_crash_pending(&self) -> bool {
        !self.world().event_crashes.planned.is_empty()
    }
}

// lab:needs 2aa..3b
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{CrashTrigger, EventCrash};
    use crate::cluster::client::{new_put_cf_cmd, new_request};
    use crate::cluster::{Cluster, ClusterConfig};

    fn leader(c: &mut Cluster) -> u64 {
        c.leader_of_region(1).map(|p| p.store_id).expect("a leader")
    }

    /// The leader dies at the second write of the event where it learns that a put is
    /// committed: the commit index lands, the apply batch is lost, and the answer it gives
    /// right after the apply never leaves. The entry is committed, so every store applies it
    /// in the end, the crashed leader after its restart.
    #[test]
    fn a_store_that_died_in_an_event_answers_no_one() {
        let mut c = Cluster::new("dead_store_answers_no_one", 3, ClusterConfig::new(3));
        c.must_put(b"warm-up", b"1");
        let leader = leader(&mut c);
        let index = c.raft_state_of(leader, 1).expect("raft state").last_index + 1;
        c.plan_event_crash(EventCrash {
            store: leader,
            trigger: CrashTrigger::CommitReaches {
                region_id: 1,
                index,
            },
            after_writes: 1,
            restart_after: Duration::from_millis(100),
        });
        let region = c.get_region(b"k");
        let mut req = new_request(
            1,
            region.get_region_epoch().clone(),
            vec![new_put_cf_cmd("default", b"k", b"v")],
        );
        req.mut_header()
            .set_peer(raftstore::util::new_peer(leader, leader));
        let answer = c.send_command(req);
        c.wait_until(Duration::from_secs(5), "the crash", |c| {
            !c.event_crash_pending()
        });
        assert_eq!(c.world().stats.event_crashes, 1);
        assert!(!c.is_running(leader));
        let tail = c.sim().trace_tail().join("\n");
        assert!(
            tail.contains(&format!(
                "event crash store {leader} dies inside an event: 1 writes landed, lost from a kv batch"
            )),
            "{tail}"
        );
        c.run_for(Duration::from_secs(3));
        assert!(c.is_running(leader), "the store restarted");
        assert!(!answer.is_answered(), "a dead store answered");
        for s in c.store_ids() {
            c.must_get_equal(s, b"k", b"v");
        }
    }

    /// A planned crash whose event ends before the crash point misses: it is dropped and
    /// counted, and the store lives on.
    #[test]
    fn a_crash_point_past_the_events_writes_misses() {
        let mut c = Cluster::new("crash_point_misses", 4, ClusterConfig::new(3));
        c.must_put(b"warm-up", b"1");
        c.plan_event_crash(EventCrash {
            store: 2,
            trigger: CrashTrigger::AnyWrite,
            after_writes: 1000,
            restart_after: Duration::from_millis(100),
        });
        c.must_put(b"k", b"v");
        c.wait_until(Duration::from_secs(5), "the plan to miss", |c| {
            !c.event_crash_pending()
        });
        assert_eq!(c.world().stats.event_crashes, 0);
        assert_eq!(c.world().stats.event_crashes_missed, 1);
        assert!(c.is_running(2));
        c.must_get_equal(2, b"k", b"v");
    }
}
// lab:end-needs
