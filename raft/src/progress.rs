//! [`Progress`]: what the leader knows about one follower's log.
//!
//! Besides `matched` and `next_idx`, a progress records whether a snapshot is in flight to
//! the peer (`pending_snapshot`, stage 2C). While one is, the leader is *paused* for that
//! peer: it sends heartbeats but no appends and no second snapshot, until the follower
//! acknowledges the snapshot ([`Progress::maybe_end_snapshot`]) or the application reports
//! how the transfer went ([`Progress::become_probe`] on success,
//! [`Progress::snapshot_failure`] on failure).

/// The leader's view of one peer's log: the highest index known to match (`matched`), the
/// index of the next entry to send (`next_idx`), and the snapshot in flight, if any
/// (`pending_snapshot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Progress {
    /// The highest index known to be replicated on the peer.
    pub matched: u64,
    /// The index of the next entry to send to the peer.
    pub next_idx: u64,
    /// The index of the snapshot sent to the peer and not yet acknowledged or reported on;
    /// 0 when no snapshot is in flight. Sending a snapshot does not move `next_idx`.
    pub pending_snapshot: u64,
}

impl Progress {
    /// A progress with nothing matched, no snapshot in flight, and `next_idx` as given.
    pub fn new(next_idx: u64) -> Progress {
        Progress {
            matched: 0,
            next_idx,
            pending_snapshot: 0,
        }
    }

    /// Records an acknowledgement up to `n`. Returns whether `matched` moved; `next_idx`
    /// never falls behind `matched + 1`.
    pub fn maybe_update(&mut self, n: u64) -> bool {
        let updated = self.matched < n;
        if updated {
            self.matched = n;
        }
        if self.next_idx < n.saturating_add(1) {
            self.next_idx = n.saturating_add(1);
        }
        updated
    }

    /// Records that entries up to `last` were sent (optimistically moving `next_idx`).
    pub fn optimistic_update(&mut self, last: u64) {
        self.next_idx = last.saturating_add(1);
    }

    /// Handles a rejected append whose previous index was `rejected`; `hint` is the peer's
    /// last index. Returns whether `next_idx` moved back (false for a stale rejection).
    pub fn maybe_decr_to(&mut self, rejected: u64, hint: u64) -> bool {
        // lab:begin 2ab
        // lab:stub let _ = (rejected, hint);
        // lab:stub todo!("2ab: back off next_idx after a rejected append")
        if rejected <= self.matched || rejected >= self.next_idx {
            // Stale: that prefix is known to match, or a newer probe is already out.
            return false;
        }
        let next = rejected.min(hint.saturating_add(1));
        self.next_idx = next.max(self.matched.saturating_add(1)).max(1);
        true
        // lab:end 2ab
    }

    /// Whether the leader must hold back appends (and further snapshots) to this peer: a
    /// snapshot is in flight. Heartbeats still go out.
    pub fn is_paused(&self) -> bool {
        // lab:begin 2c
        // lab:stub false
        self.pending_snapshot != 0
        // lab:end 2c
    }

    /// Enters snapshot state: a snapshot at `index` was sent to the peer. `next_idx` stays
    /// where it is, so that a lost snapshot is asked for again once the state ends.
    pub fn become_snapshot(&mut self, index: u64) {
        // lab:begin 2c
        // lab:stub let _ = index;
        self.pending_snapshot = index;
        // lab:end 2c
    }

    /// Ends snapshot state once `matched` reached the snapshot's index (the peer installed
    /// it, or caught up some other way). Returns whether the state ended.
    pub fn maybe_end_snapshot(&mut self) -> bool {
        // lab:begin 2c
        // lab:stub false
        if self.pending_snapshot == 0 || self.matched < self.pending_snapshot {
            return false;
        }
        self.pending_snapshot = 0;
        true
        // lab:end 2c
    }

    /// The snapshot did not reach the peer: ends snapshot state with `next_idx` unchanged,
    /// so the next append to the peer asks storage for a snapshot again.
    pub fn snapshot_failure(&mut self) {
        // lab:begin 2c
        // lab:stub // TODO(2c): forget the snapshot in flight.
        self.pending_snapshot = 0;
        // lab:end 2c
    }

    /// Probes the peer from what is known: ends snapshot state (if any) and sets `next_idx`
    /// to the entry after the snapshot when one was in flight (the peer got it), else to
    /// `matched + 1` (appends sent beyond it may be lost).
    pub fn become_probe(&mut self) {
        // lab:begin 2c
        // lab:stub // TODO(2c): leave snapshot state and probe from what the peer has.
        let after_match = self.matched.saturating_add(1);
        self.next_idx = if self.pending_snapshot != 0 {
            after_match.max(self.pending_snapshot.saturating_add(1))
        } else {
            after_match
        };
        self.pending_snapshot = 0;
        // lab:end 2c
    }
}

// lab:needs 2ab,2c
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_moves_matched_and_next() {
        let mut p = Progress::new(5);
        assert!(p.maybe_update(3));
        assert_eq!(
            p,
            Progress {
                matched: 3,
                next_idx: 5,
                pending_snapshot: 0
            }
        );
        assert!(!p.maybe_update(2));
        assert!(p.maybe_update(7));
        assert_eq!(
            p,
            Progress {
                matched: 7,
                next_idx: 8,
                pending_snapshot: 0
            }
        );
    }

    #[test]
    fn decr_uses_the_hint_and_ignores_stale_rejections() {
        let mut p = Progress {
            matched: 0,
            next_idx: 11,
            ..Progress::default()
        };
        // The peer only has 3 entries: jump straight to 4.
        assert!(p.maybe_decr_to(10, 3));
        assert_eq!(p.next_idx, 4);
        // A rejection of an older probe is stale.
        assert!(!p.maybe_decr_to(10, 3));
        // Longer but divergent log: back off by one.
        assert!(p.maybe_decr_to(3, 20));
        assert_eq!(p.next_idx, 3);
        let mut p = Progress {
            matched: 5,
            next_idx: 9,
            ..Progress::default()
        };
        assert!(!p.maybe_decr_to(4, 0));
        assert!(p.maybe_decr_to(6, 0));
        assert_eq!(p.next_idx, 6);
        let mut p = Progress {
            matched: 0,
            next_idx: 1,
            ..Progress::default()
        };
        assert!(!p.maybe_decr_to(u64::MAX, u64::MAX));
    }

    #[test]
    fn snapshot_state_pauses_without_moving_next() {
        let mut p = Progress {
            matched: 2,
            next_idx: 3,
            ..Progress::default()
        };
        assert!(!p.is_paused());
        p.become_snapshot(10);
        assert!(p.is_paused());
        assert_eq!((p.matched, p.next_idx, p.pending_snapshot), (2, 3, 10));
    }

    #[test]
    fn snapshot_ends_once_matched_reaches_it() {
        let mut p = Progress::new(3);
        p.become_snapshot(10);
        // An acknowledgement below the snapshot (a stale append response) keeps the state.
        assert!(p.maybe_update(5));
        assert!(!p.maybe_end_snapshot());
        assert!(p.is_paused());
        assert_eq!(p.next_idx, 6);
        // The follower installed it.
        assert!(p.maybe_update(10));
        assert!(p.maybe_end_snapshot());
        assert!(!p.is_paused());
        assert_eq!((p.matched, p.next_idx, p.pending_snapshot), (10, 11, 0));
        // Nothing to end any more.
        assert!(!p.maybe_end_snapshot());
    }

    #[test]
    fn snapshot_failure_keeps_next() {
        let mut p = Progress {
            matched: 2,
            next_idx: 3,
            ..Progress::default()
        };
        p.become_snapshot(10);
        p.snapshot_failure();
        assert!(!p.is_paused());
        assert_eq!((p.matched, p.next_idx, p.pending_snapshot), (2, 3, 0));
    }

    #[test]
    fn become_probe_goes_past_the_snapshot_or_back_to_match() {
        // After a snapshot: probe right after it.
        let mut p = Progress {
            matched: 2,
            next_idx: 3,
            ..Progress::default()
        };
        p.become_snapshot(10);
        p.become_probe();
        assert_eq!((p.matched, p.next_idx, p.pending_snapshot), (2, 11, 0));
        // Matched beyond the snapshot (acknowledged meanwhile): right after `matched`.
        let mut p = Progress {
            matched: 12,
            next_idx: 13,
            ..Progress::default()
        };
        p.become_snapshot(10);
        p.become_probe();
        assert_eq!((p.next_idx, p.pending_snapshot), (13, 0));
        // No snapshot: appends sent optimistically beyond `matched` are sent again.
        let mut p = Progress {
            matched: 4,
            next_idx: 9,
            ..Progress::default()
        };
        p.become_probe();
        assert_eq!((p.matched, p.next_idx, p.pending_snapshot), (4, 5, 0));
    }
}
// lab:end-needs
