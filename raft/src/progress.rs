//! [`Progress`]: what the leader knows about one follower's log.

/// The leader's view of one peer's log: the highest index known to match (`matched`) and
/// the index of the next entry to send (`next_idx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Progress {
    /// The highest index known to be replicated on the peer.
    pub matched: u64,
    /// The index of the next entry to send to the peer.
    pub next_idx: u64,
}

impl Progress {
    /// A progress with nothing matched and `next_idx` as given.
    pub fn new(next_idx: u64) -> Progress {
        Progress {
            matched: 0,
            next_idx,
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
}

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
                next_idx: 5
            }
        );
        assert!(!p.maybe_update(2));
        assert!(p.maybe_update(7));
        assert_eq!(
            p,
            Progress {
                matched: 7,
                next_idx: 8
            }
        );
    }

    #[test]
    fn decr_uses_the_hint_and_ignores_stale_rejections() {
        let mut p = Progress {
            matched: 0,
            next_idx: 11,
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
        };
        assert!(!p.maybe_decr_to(4, 0));
        assert!(p.maybe_decr_to(6, 0));
        assert_eq!(p.next_idx, 6);
        let mut p = Progress {
            matched: 0,
            next_idx: 1,
        };
        assert!(!p.maybe_decr_to(u64::MAX, u64::MAX));
    }
}
