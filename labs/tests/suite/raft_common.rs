//! Shared helpers of the raft-level suites (2A, 2C raft side, 3A): the harness's raft test
//! network re-exported, plus message shorthands.
#![allow(dead_code, unused_imports)]

pub use harness::raft_net::*;
pub use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message, MessageType,
    Snapshot,
};
pub use raft::{Config, MemStorage, Progress, RawNode, Ready, SoftState, StateRole, INVALID_ID};

pub use MessageType::*;
pub use StateRole::{Candidate, Follower, Leader};

/// `MsgHup` to `id` (start an election).
pub fn hup(id: u64) -> Message {
    new_message(id, id, MsgHup, 0)
}

/// `MsgBeat` to `id` (a leader broadcasts heartbeats).
pub fn beat(id: u64) -> Message {
    new_message(id, id, MsgBeat, 0)
}

/// `MsgPropose` from `from` to `to` carrying one entry with `data`.
pub fn propose(from: u64, to: u64, data: &[u8]) -> Message {
    new_message_with_entries(from, to, MsgPropose, 0, vec![new_entry(0, 0, data)])
}

/// A hard state `{term, vote 0, commit}`.
pub fn hard_state(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        commit,
        ..Default::default()
    }
}

/// Ids `1..=n`.
pub fn ids(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

/// A storage holding `entries` (appended in one batch).
pub fn storage_with(entries: &[Entry]) -> MemStorage {
    let s = MemStorage::new();
    if !entries.is_empty() {
        s.wl()
            .append(entries)
            .expect("append to an empty MemStorage");
    }
    s
}

/// Entries `(i + 1, terms[i])` without data.
pub fn ents_of_terms(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| empty_entry(i as u64 + 1, t))
        .collect()
}

/// Network slots from a pattern: `N` creates a node, `H` is a black hole (`"NNH"`).
pub fn slots(pattern: &str) -> Vec<Slot> {
    pattern
        .chars()
        .map(|c| match c {
            'N' => Slot::New,
            'H' => Slot::BlackHole,
            other => panic!("slot pattern {pattern:?}: unknown slot {other:?}"),
        })
        .collect()
}

/// Ticks `r` until it is a candidate, at most `limit` ticks.
pub fn tick_until_candidate(r: &mut TestRaft, limit: usize) {
    for _ in 0..limit {
        if r.state == Candidate {
            return;
        }
        r.tick();
    }
    assert_eq!(
        r.state, Candidate,
        "node {} did not become candidate within {limit} ticks",
        r.id
    );
}

/// `(index, term)` pairs of entries, for readable assertions.
pub fn index_terms(ents: &[Entry]) -> Vec<(u64, u64)> {
    ents.iter().map(|e| (e.index, e.term)).collect()
}

/// The data of the entries that carry any.
pub fn datas(ents: &[Entry]) -> Vec<Vec<u8>> {
    ents.iter()
        .filter(|e| !e.data.is_empty())
        .map(|e| e.data.to_vec())
        .collect()
}
