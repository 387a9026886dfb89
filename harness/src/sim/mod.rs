//! A deterministic discrete-event simulator: one thread, a virtual clock, one seeded RNG.
//!
//! Everything that could make two runs differ goes through [`Sim`]: time ([`Sim::now`]),
//! randomness ([`Core::rng`]) and the order of events (a queue ordered by `(time, sequence)`,
//! so events due at the same instant run in the order they were scheduled). The world the
//! events act on is a plain value `W` (the cluster, its network, its clients), so the same
//! seed replays the same run exactly, and a model of thirty seconds of cluster life costs only
//! the CPU time of its events.
//!
//! Every executed event is folded into a trace hash ([`Sim::trace_hash`]) and kept in a short
//! ring buffer ([`Sim::trace_tail`]): a determinism check runs a scenario twice and compares
//! the hashes, and a failing test prints the last events as the story of what happened.
//!
//! ```
//! use harness::sim::Sim;
//! use std::time::Duration;
//!
//! // The world: a counter. An event bumps it and schedules the next one a random delay later.
//! fn bump(n: &mut u32, core: &mut harness::sim::Core<u32>) {
//!     *n += 1;
//!     let delay = Duration::from_millis(core.rng().gen_range(1..10));
//!     core.schedule(delay, "bump", bump);
//! }
//! let mut sim = Sim::new(42, 0u32);
//! sim.schedule(Duration::ZERO, "bump", bump);
//! sim.run_for(Duration::from_secs(1));
//! let first = (*sim.world(), sim.trace_hash());
//!
//! let mut again = Sim::new(42, 0u32);
//! again.schedule(Duration::ZERO, "bump", bump);
//! again.run_for(Duration::from_secs(1));
//! assert_eq!(first, (*again.world(), again.trace_hash()));
//! # use rand::Rng;
//! ```

pub mod net;

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A point in virtual time: nanoseconds since the simulation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of every simulation.
    pub const ZERO: SimTime = SimTime(0);

    /// This instant plus `d` (saturating).
    pub fn after(self, d: Duration) -> SimTime {
        SimTime(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }

    /// Time elapsed from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Time since the start of the simulation.
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.0 as f64 / 1e9)
    }
}

/// What an event is, for the trace: a kind (a short static name, folded into the trace hash)
/// and an optional detail that is formatted only when the trace is printed, so describing
/// every event costs nothing unless a failure tells its story.
pub struct Label {
    kind: Cow<'static, str>,
    detail: Option<Box<dyn fmt::Display>>,
}

impl Label {
    /// A label of `kind` with a detail shown after it in the trace.
    pub fn new(kind: impl Into<Cow<'static, str>>, detail: impl fmt::Display + 'static) -> Label {
        Label {
            kind: kind.into(),
            detail: Some(Box::new(detail)),
        }
    }

    /// The kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }
}

impl From<&'static str> for Label {
    fn from(kind: &'static str) -> Label {
        Label {
            kind: Cow::Borrowed(kind),
            detail: None,
        }
    }
}

impl From<String> for Label {
    fn from(kind: String) -> Label {
        Label {
            kind: Cow::Owned(kind),
            detail: None,
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{} {d}", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Identifies a scheduled event, so it can be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    at: SimTime,
    seq: u64,
}

type Action<W> = Box<dyn FnOnce(&mut W, &mut Core<W>)>;

struct Event<W> {
    label: Label,
    action: Action<W>,
}

/// How many executed events [`Sim::trace_tail`] remembers.
const TRACE_TAIL: usize = 64;

/// The simulator's machinery, handed to every event together with the world: the clock, the
/// RNG, the queue.
pub struct Core<W> {
    now: SimTime,
    seq: u64,
    queue: BTreeMap<EventId, Event<W>>,
    rng: ChaCha8Rng,
    seed: u64,
    trace_hash: u64,
    trace_tail: VecDeque<(EventId, Label)>,
    executed: u64,
}

impl<W> fmt::Debug for Core<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("now", &self.now)
            .field("seed", &self.seed)
            .field("pending", &self.queue.len())
            .field("executed", &self.executed)
            .finish()
    }
}

impl<W> Core<W> {
    /// The current virtual time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The seed this run was started with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The one source of randomness of the run.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Schedules `action` to run `delay` from now. Events due at the same time run in the
    /// order they were scheduled.
    pub fn schedule(
        &mut self,
        delay: Duration,
        label: impl Into<Label>,
        action: impl FnOnce(&mut W, &mut Core<W>) + 'static,
    ) -> EventId {
        let id = EventId {
            at: self.now.after(delay),
            seq: self.seq,
        };
        self.seq += 1;
        self.queue.insert(
            id,
            Event {
                label: label.into(),
                action: Box::new(action),
            },
        );
        id
    }

    /// Cancels a scheduled event; `false` if it already ran or was cancelled.
    pub fn cancel(&mut self, id: EventId) -> bool {
        self.queue.remove(&id).is_some()
    }

    /// How many events are waiting.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Folds a fact into the trace hash, for things that matter to determinism but are not
    /// events (e.g. the bytes of a delivered message).
    pub fn trace(&mut self, fact: &[u8]) {
        self.trace_hash = fnv1a(self.trace_hash, fact);
    }

    /// How many events have run.
    pub fn events_executed(&self) -> u64 {
        self.executed
    }

    /// Records something that happened outside any event (test code crashing a store,
    /// installing a fault) in the trace, at the current time, so the story of a failure
    /// includes it.
    pub fn note(&mut self, label: impl Into<Label>) {
        let label = label.into();
        self.trace_hash = fnv1a(self.trace_hash, label.kind.as_bytes());
        if self.trace_tail.len() == TRACE_TAIL {
            self.trace_tail.pop_front();
        }
        let id = EventId {
            at: self.now,
            seq: self.seq,
        };
        self.trace_tail.push_back((id, label));
    }

    /// The last events that ran (the running one included, when called from an event),
    /// oldest first, as `time #seq label` lines.
    pub fn trace_tail(&self) -> Vec<String> {
        self.trace_tail
            .iter()
            .map(|(id, label)| format!("{} #{} {}", id.at, id.seq, label))
            .collect()
    }

    fn record(&mut self, id: EventId, label: Label) {
        self.trace_hash = fnv1a(self.trace_hash, &id.at.0.to_le_bytes());
        self.trace_hash = fnv1a(self.trace_hash, &id.seq.to_le_bytes());
        self.trace_hash = fnv1a(self.trace_hash, label.kind.as_bytes());
        if self.trace_tail.len() == TRACE_TAIL {
            self.trace_tail.pop_front();
        }
        // Kinds are static strings and details are formatted only when printed.
        self.trace_tail.push_back((id, label));
        self.executed += 1;
    }
}

/// FNV-1a: tiny, stable across platforms and releases (unlike `DefaultHasher`).
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A simulation: the world `W` and the [`Core`] that drives it.
pub struct Sim<W> {
    core: Core<W>,
    world: W,
}

impl<W> fmt::Debug for Sim<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl<W> Sim<W> {
    /// A simulation of `world` whose every random choice derives from `seed`.
    pub fn new(seed: u64, world: W) -> Self {
        Sim {
            core: Core {
                now: SimTime::ZERO,
                seq: 0,
                queue: BTreeMap::new(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                seed,
                trace_hash: 0xcbf2_9ce4_8422_2325,
                trace_tail: VecDeque::with_capacity(TRACE_TAIL),
                executed: 0,
            },
            world,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> SimTime {
        self.core.now
    }

    /// The seed of the run.
    pub fn seed(&self) -> u64 {
        self.core.seed
    }

    /// The world.
    pub fn world(&self) -> &W {
        &self.world
    }

    /// The core (clock, RNG, trace), read-only.
    pub fn core_ref(&self) -> &Core<W> {
        &self.core
    }

    /// The world, mutably (for test code acting between events).
    pub fn world_mut(&mut self) -> &mut W {
        &mut self.world
    }

    /// The world and the core together, for test code that schedules while it acts.
    pub fn parts(&mut self) -> (&mut W, &mut Core<W>) {
        (&mut self.world, &mut self.core)
    }

    /// The core (clock, RNG, queue).
    pub fn core(&mut self) -> &mut Core<W> {
        &mut self.core
    }

    /// Schedules an event `delay` from now (see [`Core::schedule`]).
    pub fn schedule(
        &mut self,
        delay: Duration,
        label: impl Into<Label>,
        action: impl FnOnce(&mut W, &mut Core<W>) + 'static,
    ) -> EventId {
        self.core.schedule(delay, label, action)
    }

    /// Runs the next event, advancing the clock to its time. `false` if none is waiting.
    pub fn step(&mut self) -> bool {
        let Some((id, event)) = self.core.queue.pop_first() else {
            return false;
        };
        self.core.now = id.at;
        let Event { label, action } = event;
        self.core.record(id, label);
        action(&mut self.world, &mut self.core);
        true
    }

    /// Runs every event due up to `deadline`, then sets the clock to `deadline`.
    pub fn run_until(&mut self, deadline: SimTime) {
        while self
            .core
            .queue
            .first_key_value()
            .is_some_and(|(id, _)| id.at <= deadline)
        {
            self.step();
        }
        self.core.now = self.core.now.max(deadline);
    }

    /// Runs events for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.core.now.after(d);
        self.run_until(deadline);
    }

    /// Runs events until `done(world)` holds (checked before each event) or `timeout` of
    /// virtual time passes. Returns whether `done` held.
    pub fn run_until_true(&mut self, timeout: Duration, mut done: impl FnMut(&W) -> bool) -> bool {
        let deadline = self.core.now.after(timeout);
        loop {
            if done(&self.world) {
                return true;
            }
            match self.core.queue.first_key_value() {
                Some((id, _)) if id.at <= deadline => {
                    self.step();
                }
                _ => {
                    self.core.now = self.core.now.max(deadline);
                    return done(&self.world);
                }
            }
        }
    }

    /// The hash of every event executed so far (time, sequence, label, traced facts).
    pub fn trace_hash(&self) -> u64 {
        self.core.trace_hash
    }

    /// How many events have run.
    pub fn events_executed(&self) -> u64 {
        self.core.executed
    }

    /// The last events that ran, oldest first, as `time #seq label` lines.
    pub fn trace_tail(&self) -> Vec<String> {
        self.core.trace_tail()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[derive(Default)]
    struct Log(Vec<(u64, &'static str)>);

    #[test]
    fn events_run_in_time_then_schedule_order() {
        let mut sim = Sim::new(1, Log::default());
        sim.schedule(Duration::from_millis(5), "c", |w: &mut Log, c| {
            w.0.push((c.now().0, "c"))
        });
        sim.schedule(Duration::from_millis(1), "a", |w: &mut Log, c| {
            w.0.push((c.now().0, "a"))
        });
        sim.schedule(Duration::from_millis(5), "d", |w: &mut Log, c| {
            w.0.push((c.now().0, "d"))
        });
        sim.schedule(Duration::from_millis(1), "b", |w: &mut Log, c| {
            w.0.push((c.now().0, "b"));
            // Scheduled now for now: runs after everything already due now.
            c.schedule(Duration::ZERO, "b2", |w: &mut Log, c| {
                w.0.push((c.now().0, "b2"))
            });
        });
        sim.run_for(Duration::from_secs(1));
        let order: Vec<_> = sim.world().0.iter().map(|(_, l)| *l).collect();
        assert_eq!(order, ["a", "b", "b2", "c", "d"]);
        assert_eq!(sim.world().0[3].0, 5_000_000);
        assert_eq!(sim.now(), SimTime(1_000_000_000));
        assert_eq!(sim.events_executed(), 5);
    }

    #[test]
    fn cancelled_events_do_not_run() {
        let mut sim = Sim::new(1, Log::default());
        let id = sim.schedule(Duration::from_millis(1), "x", |w: &mut Log, _| {
            w.0.push((0, "x"))
        });
        sim.schedule(Duration::from_millis(2), "y", |w: &mut Log, _| {
            w.0.push((0, "y"))
        });
        assert!(sim.core().cancel(id));
        assert!(!sim.core().cancel(id));
        sim.run_for(Duration::from_secs(1));
        assert_eq!(sim.world().0, vec![(0, "y")]);
    }

    #[test]
    fn run_until_true_stops_at_the_condition_or_the_timeout() {
        fn tick(n: &mut u32, c: &mut Core<u32>) {
            *n += 1;
            c.schedule(Duration::from_millis(10), "tick", tick);
        }
        let mut sim = Sim::new(1, 0u32);
        sim.schedule(Duration::ZERO, "tick", tick);
        assert!(sim.run_until_true(Duration::from_secs(10), |n| *n == 50));
        assert_eq!(sim.now(), SimTime(490_000_000));
        assert!(!sim.run_until_true(Duration::from_millis(100), |n| *n == 1000));
        assert_eq!(
            sim.now(),
            SimTime(590_000_000),
            "the clock stops at the timeout"
        );
    }

    /// A busy world: messages bounce between nodes with random delays and drops.
    fn chatter(seed: u64) -> (u64, Vec<u32>) {
        struct World {
            received: Vec<u32>,
        }
        fn send(from: usize, hops: u32, w: &mut World, c: &mut Core<World>) {
            w.received[from] += 1;
            if hops == 0 {
                return;
            }
            let fanout = c.rng().gen_range(1..=2);
            for _ in 0..fanout {
                if c.rng().gen_bool(0.2) {
                    continue; // dropped
                }
                let to = c.rng().gen_range(0..5);
                let delay = Duration::from_micros(c.rng().gen_range(100..5000));
                c.trace(&[from as u8, to as u8]);
                c.schedule(delay, format!("msg {from}->{to}"), move |w, c| {
                    send(to, hops - 1, w, c)
                });
            }
        }
        let mut sim = Sim::new(
            seed,
            World {
                received: vec![0; 5],
            },
        );
        for start in 0..5 {
            sim.schedule(Duration::ZERO, "start", move |w, c| send(start, 12, w, c));
        }
        sim.run_for(Duration::from_secs(5));
        assert!(sim.events_executed() > 100, "the scenario is busy enough");
        (sim.trace_hash(), sim.world().received.clone())
    }

    #[test]
    fn same_seed_same_run_different_seed_different_run() {
        assert_eq!(chatter(7), chatter(7));
        assert_ne!(chatter(7).0, chatter(8).0);
    }

    /// A label's detail shows in the trace tail but is formatted only then, and is not part
    /// of the trace hash; notes from outside any event show up at their time.
    #[test]
    fn details_are_lazy_and_notes_join_the_story() {
        use std::cell::Cell;
        use std::rc::Rc;
        struct Counted(Rc<Cell<u32>>);
        impl fmt::Display for Counted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.set(self.0.get() + 1);
                f.write_str("the detail")
            }
        }
        let formatted = Rc::new(Cell::new(0));
        let run = |detail: &'static str| {
            let mut sim = Sim::new(3, ());
            sim.schedule(
                Duration::from_millis(1),
                Label::new("kind", Counted(Rc::clone(&formatted))),
                |_, _| {},
            );
            sim.schedule(
                Duration::from_millis(2),
                Label::new("other", detail),
                |_, _| {},
            );
            sim.run_for(Duration::from_millis(5));
            sim.core().note(Label::new("crash", "store 2"));
            sim
        };
        let a = run("x");
        assert_eq!(formatted.get(), 0, "nothing formatted while running");
        let tail = a.trace_tail();
        assert_eq!(formatted.get(), 1);
        assert!(tail[0].ends_with("kind the detail"), "{tail:?}");
        assert!(tail[1].ends_with("other x"), "{tail:?}");
        assert!(
            tail[2].starts_with("0.005s") && tail[2].ends_with("crash store 2"),
            "{tail:?}"
        );
        assert_eq!(
            a.trace_hash(),
            run("y").trace_hash(),
            "details are not hashed"
        );
    }

    #[test]
    fn the_trace_tail_tells_the_last_events() {
        let mut sim = Sim::new(3, ());
        for i in 0..100u64 {
            sim.schedule(Duration::from_millis(i), format!("e{i}"), |_, _| {});
        }
        sim.run_for(Duration::from_secs(1));
        let tail = sim.trace_tail();
        assert_eq!(tail.len(), TRACE_TAIL);
        assert!(
            tail.last().is_some_and(|l| l.ends_with("#99 e99")),
            "{tail:?}"
        );
        assert!(tail[0].ends_with("e36"));
    }
}
