//! Free-standing helpers of the raft-level suites: building test nodes, messages, entries and
//! snapshots, draining outboxes, committing the new leader's no-op, and comparing logs.

use raft::eraftpb::{ConfState, Entry, Message, MessageType, Snapshot};
use raft::{Config, MemStorage, Raft, RaftLog, StateRole, Storage};

/// A raft node over the in-memory storage, the kind every raft-level test builds.
pub type TestRaft = Raft<MemStorage>;

pub use crate::seeds::{labs_seed, DEFAULT_SEED};

/// Prints the seed (and how to replay it) if it is dropped while its thread panics.
///
/// A [`crate::raft_net::Network`] holds one; a test without a network can hold its own.
#[derive(Debug)]
pub struct SeedReport {
    seed: u64,
}

impl SeedReport {
    /// A report for `seed`.
    pub fn new(seed: u64) -> Self {
        SeedReport { seed }
    }

    /// The seed it reports.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl Drop for SeedReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed with seed {0}: replay with LABS_SEED={0} (same test name filter)",
                self.seed
            );
        }
    }
}

/// A config with the given id and ticks, no peers, and the run's seed ([`labs_seed`]).
pub fn new_test_config(id: u64, election_tick: usize, heartbeat_tick: usize) -> Config {
    let mut c = Config::new(id);
    c.election_tick = election_tick;
    c.heartbeat_tick = heartbeat_tick;
    c.seed = labs_seed();
    c
}

/// Builds a raft node from a config over `storage`.
///
/// # Panics
/// If `Raft::new` rejects the config or the storage.
pub fn new_test_raft_with_config(config: &Config, storage: MemStorage) -> TestRaft {
    match Raft::new(config, storage) {
        Ok(r) => r,
        Err(e) => panic!("Raft::new({config:?}) failed: {e}"),
    }
}

/// Builds node `id` with the test-only initial membership `peers` (empty: membership from
/// `storage.initial_state()`), the given ticks, and the run's seed.
pub fn new_test_raft(
    id: u64,
    peers: Vec<u64>,
    election_tick: usize,
    heartbeat_tick: usize,
    storage: MemStorage,
) -> TestRaft {
    let mut c = new_test_config(id, election_tick, heartbeat_tick);
    c.peers = peers;
    new_test_raft_with_config(&c, storage)
}

/// Takes (and clears) the node's outbox.
pub fn read_messages(r: &mut TestRaft) -> Vec<Message> {
    r.read_messages()
}

/// A message `from -> to` of type `t` at `term`; every other field is zero/empty.
pub fn new_message(from: u64, to: u64, t: MessageType, term: u64) -> Message {
    Message {
        from,
        to,
        msg_type: t,
        term,
        ..Default::default()
    }
}

/// A message like [`new_message`] carrying `entries`.
pub fn new_message_with_entries(
    from: u64,
    to: u64,
    t: MessageType,
    term: u64,
    entries: Vec<Entry>,
) -> Message {
    let mut m = new_message(from, to, t, term);
    m.entries = entries.into();
    m
}

/// A normal entry `(index, term)` with `data`.
pub fn new_entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term,
        data: data.to_vec().into(),
        ..Default::default()
    }
}

/// A normal entry `(index, term)` without data (what a new leader appends as its no-op).
pub fn empty_entry(index: u64, term: u64) -> Entry {
    new_entry(index, term, &[])
}

/// A conf state whose voters are `voters`.
pub fn conf_state(voters: &[u64]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        ..Default::default()
    }
}

/// A snapshot at `(index, term)` whose conf state has `voters`, without data.
pub fn new_snapshot(index: u64, term: u64, voters: &[u64]) -> Snapshot {
    let mut s = Snapshot::default();
    let meta = s.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.set_conf_state(conf_state(voters));
    s
}

/// Sorts messages by (to, from, type, term, index, log term, commit) so lists compare
/// independently of the order a node produced them in.
pub fn sort_messages(mut msgs: Vec<Message>) -> Vec<Message> {
    msgs.sort_by_key(|m| {
        (
            m.to,
            m.from,
            m.msg_type as i32,
            m.term,
            m.index,
            m.log_term,
            m.commit,
        )
    });
    msgs
}

/// Persists and applies like a minimal application would: appends the log's unstable entries
/// to `storage`, marks everything stable, takes the committed-but-unapplied entries, then sets
/// `applied = committed`. Returns the entries taken.
///
/// # Panics
/// If the storage refuses the append.
pub fn next_ents(r: &mut TestRaft, storage: &MemStorage) -> Vec<Entry> {
    let unstable = r.raft_log.unstable_entries().to_vec();
    if !unstable.is_empty() {
        storage
            .wl()
            .append(&unstable)
            .unwrap_or_else(|e| panic!("MemStorage::append of unstable entries failed: {e}"));
    }
    r.raft_log.stabled = r.raft_log.last_index();
    let ents = r.raft_log.next_ents();
    r.raft_log.applied = r.raft_log.committed;
    ents
}

/// Node 1 over a storage holding entries `(i + 1, terms[i])`; election 5, heartbeat 1, no
/// peers unless `config_hook` adds them; the node's term is set to the last term.
pub fn ents_with_config(config_hook: impl Fn(&mut Config), terms: &[u64]) -> TestRaft {
    let storage = MemStorage::new();
    let ents: Vec<Entry> = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| empty_entry(i as u64 + 1, t))
        .collect();
    if !ents.is_empty() {
        storage
            .wl()
            .append(&ents)
            .expect("append to an empty MemStorage");
    }
    let mut c = new_test_config(1, 5, 1);
    config_hook(&mut c);
    let mut r = new_test_raft_with_config(&c, storage);
    r.term = terms.last().copied().unwrap_or(0);
    r
}

/// Node 1 with an empty log whose storage hard state is `{term, vote}`; election 5,
/// heartbeat 1, no peers unless `config_hook` adds them; the node's term is set to `term`.
pub fn voted_with_config(config_hook: impl Fn(&mut Config), vote: u64, term: u64) -> TestRaft {
    let storage = MemStorage::new();
    {
        let mut hs = storage.rl().hard_state().clone();
        hs.vote = vote;
        hs.term = term;
        storage.wl().set_hard_state(hs);
    }
    let mut c = new_test_config(1, 5, 1);
    config_hook(&mut c);
    let mut r = new_test_raft_with_config(&c, storage);
    r.term = term;
    r
}

/// The reply a follower that accepted append `m` sends: `MsgAppendResponse` from `m.to` to
/// `m.from`, same term, `index = m.index + m.entries.len()`, not rejected.
pub fn accept_and_reply(m: &Message) -> Message {
    assert_eq!(
        m.msg_type,
        MessageType::MsgAppend,
        "accept_and_reply expects a MsgAppend, got {m:?}"
    );
    let mut r = new_message(m.to, m.from, MessageType::MsgAppendResponse, m.term);
    r.index = m.index + m.entries.len() as u64;
    r
}

/// Commits a new leader's no-op: sends an append to every other peer, checks that each is a
/// `MsgAppend` carrying exactly one entry without data, answers each with
/// [`accept_and_reply`], discards what follows, then persists the unstable entries to
/// `storage`, sets `applied = committed` and `stabled = last index`.
///
/// # Panics
/// If `r` is not a leader, or a produced message is not the single no-op append.
pub fn commit_noop_entry(r: &mut TestRaft, storage: &MemStorage) {
    assert_eq!(
        r.state,
        StateRole::Leader,
        "commit_noop_entry needs a leader, node {} is {:?}",
        r.id,
        r.state
    );
    let others: Vec<u64> = r.prs.keys().copied().filter(|&id| id != r.id).collect();
    for id in others {
        r.send_append(id);
    }
    for m in r.read_messages() {
        assert!(
            m.msg_type == MessageType::MsgAppend
                && m.entries.len() == 1
                && m.entries[0].data.is_empty(),
            "commit_noop_entry: expected a MsgAppend with exactly the no-op entry, got {m:?}"
        );
        let reply = accept_and_reply(&m);
        r.step(reply)
            .unwrap_or_else(|e| panic!("stepping an append response failed: {e}"));
    }
    r.read_messages();
    let unstable = r.raft_log.unstable_entries().to_vec();
    if !unstable.is_empty() {
        storage
            .wl()
            .append(&unstable)
            .unwrap_or_else(|e| panic!("MemStorage::append failed: {e}"));
    }
    r.raft_log.applied = r.raft_log.committed;
    r.raft_log.stabled = r.raft_log.last_index();
}

/// What the log comparisons of the original compare: committed, applied, and every entry not
/// yet compacted (no dummy entry).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogState {
    /// The committed index.
    pub committed: u64,
    /// The applied index.
    pub applied: u64,
    /// All in-memory entries, in order.
    pub entries: Vec<Entry>,
}

impl LogState {
    /// An expected log state.
    pub fn new(committed: u64, applied: u64, entries: Vec<Entry>) -> Self {
        LogState {
            committed,
            applied,
            entries,
        }
    }

    /// The state of a node's raft log.
    pub fn of<S: Storage>(log: &RaftLog<S>) -> Self {
        LogState {
            committed: log.committed,
            applied: log.applied,
            entries: log.all_entries(),
        }
    }

    /// What a log built over an empty `MemStorage` looks like: committed 0, applied 0, no
    /// entries.
    pub fn empty() -> Self {
        LogState::default()
    }
}
