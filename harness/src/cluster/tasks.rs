//! Background tasks on the simulator: each step of a store's task is an event after a seeded
//! delay, so the seed decides how long a snapshot takes and what happens meanwhile.
//!
//! A task belongs to the incarnation of the store that spawned it: if the store stops or
//! restarts before a step runs, the task is gone (a crash kills the worker threads), and its
//! result never arrives. Tests can also make a task slow ([`TaskTiming::slow_rate`]) or crash
//! its store between two of its steps ([`TaskFaults::crash`]), the faults inside a node that
//! the network model cannot produce.

use std::time::Duration;

use raftstore::task::{Task, TaskKind, TaskStep};
use raftstore::StoreEvent;
use rand::Rng;

use super::describe::Lazy;
use super::{check_oracles, crash_store_in, restart_after, run_on_store, World};
use crate::sim::{Core, Label};

/// How long tasks take, in virtual time.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTiming {
    /// Each step starts this long after it is due at least ...
    pub step_min: Duration,
    /// ... and at most this long.
    pub step_max: Duration,
    /// With this probability a step is slow instead (a busy disk, a big snapshot) ...
    pub slow_rate: f64,
    /// ... and starts this much later.
    pub slow_delay: Duration,
}

impl Default for TaskTiming {
    /// A few milliseconds a step; one step in fifty takes 200 ms more.
    fn default() -> Self {
        TaskTiming {
            step_min: Duration::from_micros(200),
            step_max: Duration::from_millis(5),
            slow_rate: 0.02,
            slow_delay: Duration::from_millis(200),
        }
    }
}

/// A planned crash of a store in the middle of one of its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCrash {
    /// The store.
    pub store: u64,
    /// The kind of task.
    pub kind: TaskKind,
    /// Crash after this many steps of such a task (1: right after its first step; 0: as the
    /// store spawns the task, before any step runs, once the event that spawned it is over).
    pub after_steps: u32,
    /// Restart the store this long after the crash.
    pub restart_after: Duration,
}

/// Faults injected into tasks; each fires once.
#[derive(Debug, Clone, Default)]
pub struct TaskFaults {
    /// Crashes waiting for their task.
    pub crash: Vec<TaskCrash>,
}

fn kind_name(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::GenSnapshot => "generate snapshot",
        TaskKind::ApplySnapshot => "apply snapshot",
        TaskKind::RaftLogGc => "raft-log gc",
        TaskKind::SplitCheck => "split check",
        TaskKind::ClearRegionData => "clear region data",
    }
}

/// Schedules the first step of a task store `store_id` spawned.
pub(crate) fn schedule(w: &mut World, c: &mut Core<World>, store_id: u64, task: Task) {
    let Some(incarnation) = w.running(store_id) else {
        return;
    };
    if crash_if_planned(w, c, store_id, task.kind(), 0) {
        return; // the task dies with its store
    }
    schedule_step(w, c, store_id, incarnation, task, 1);
}

/// If a crash of `store_id` is planned after `steps` steps of a task of `kind`, crashes the
/// store, schedules its restart and returns `true`.
fn crash_if_planned(
    w: &mut World,
    c: &mut Core<World>,
    store_id: u64,
    kind: TaskKind,
    steps: u32,
) -> bool {
    let Some(i) = w
        .task_faults
        .crash
        .iter()
        .position(|f| f.store == store_id && f.kind == kind && f.after_steps <= steps)
    else {
        return false;
    };
    let fault = w.task_faults.crash.remove(i);
    w.stats.task_crashes += 1;
    crash_store_in(w, c, store_id);
    restart_after(c, store_id, fault.restart_after);
    true
}

fn schedule_step(
    w: &mut World,
    c: &mut Core<World>,
    store_id: u64,
    incarnation: u64,
    task: Task,
    step: u32,
) {
    let t = &w.cfg.tasks;
    let mut delay = if t.step_max > t.step_min {
        t.step_min
            + Duration::from_nanos(
                c.rng()
                    .gen_range(0..(t.step_max - t.step_min).as_nanos() as u64),
            )
    } else {
        t.step_min
    };
    if c.rng().gen_bool(t.slow_rate.clamp(0.0, 1.0)) {
        delay += t.slow_delay;
    }
    let (kind, region) = (task.kind(), task.region_id());
    let label = Label::new(
        "task",
        Lazy(move |f| {
            write!(
                f,
                "{} step {step}, store {store_id}, region {region}",
                kind_name(kind)
            )
        }),
    );
    c.schedule(delay, label, move |w: &mut World, c: &mut Core<World>| {
        run_step(w, c, store_id, incarnation, task, step)
    });
}

fn run_step(
    w: &mut World,
    c: &mut Core<World>,
    store_id: u64,
    incarnation: u64,
    task: Task,
    step: u32,
) {
    if w.running(store_id) != Some(incarnation) {
        return; // the task died with its store
    }
    let Some(engines) = w.stores.get(&store_id).map(|n| n.engines.clone()) else {
        return;
    };
    let kind = task.kind();
    *w.stats.task_steps.entry(kind_name(kind)).or_default() += 1;
    let outcome = task.step(&engines);
    // What the step wrote is checked before anything else happens.
    check_oracles(w, c);
    if crash_if_planned(w, c, store_id, kind, step) {
        return;
    }
    match outcome {
        TaskStep::Yield(next) => schedule_step(w, c, store_id, incarnation, next, step + 1),
        TaskStep::Done(result) => run_on_store(w, c, store_id, StoreEvent::TaskDone(result)),
    }
}
