//! The simulated network between stores: base latency plus the faults tests switch on.
//!
//! [`Network::route`] decides, with the simulation's RNG, what happens to one message: dropped,
//! delivered after some delay, or delivered twice. Filters compose: every one in force
//! applies, in the order they were added. Client commands and scheduler traffic do not go
//! through here (as in the original harness); raft messages between stores do.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::Rng;

/// What a filter may look at in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Sending store.
    pub from: u64,
    /// Receiving store.
    pub to: u64,
    /// The raft message type (as its protobuf number), for type filters.
    pub kind: i32,
    /// The region the message belongs to, for region filters.
    pub region: u64,
}

/// One fault or shaping rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Drops messages between stores of different groups. Stores in no group are
    /// unaffected (the original's partition filter with two groups).
    Partition(Vec<BTreeSet<u64>>),
    /// Drops every message to or from the store.
    Isolate(u64),
    /// Drops the link between two stores, both directions.
    Cut(u64, u64),
    /// Drops each message with this probability.
    DropRate(f64),
    /// Drops every message of this raft message type.
    DropKind(i32),
    /// Drops every message of this region.
    DropRegion(u64),
    /// Drops every message of `region` to or from `store`: the store hears nothing of that one
    /// region (it lags behind the region's log, say a split), while its other regions talk.
    CutRegion {
        /// The region.
        region: u64,
        /// The store cut off from it.
        store: u64,
    },
    /// Adds a uniformly random delay in `[min, max]` to each message (reorders messages whose
    /// delays overlap).
    Delay {
        /// Smallest extra delay.
        min: Duration,
        /// Largest extra delay.
        max: Duration,
    },
    /// Delivers a message a second time, a random delay up to `max_gap` later, with this
    /// probability.
    Duplicate {
        /// Probability of a duplicate.
        rate: f64,
        /// Largest gap between the copies.
        max_gap: Duration,
    },
    /// Damages the payload of a message with this probability: a bit flipped in the bytes it
    /// carries (only messages that carry opaque bytes, snapshot chunks, can be damaged).
    Corrupt(f64),
    /// Cuts the payload of a message short with this probability (snapshot chunks only).
    Truncate(f64),
}

impl Filter {
    /// A partition into exactly two groups.
    pub fn partition(a: &[u64], b: &[u64]) -> Filter {
        Filter::Partition(vec![
            a.iter().copied().collect(),
            b.iter().copied().collect(),
        ])
    }

    fn drops(&self, r: &Route, rng: &mut impl Rng) -> bool {
        match self {
            Filter::Partition(groups) => {
                let group_of = |s: u64| groups.iter().position(|g| g.contains(&s));
                matches!((group_of(r.from), group_of(r.to)), (Some(a), Some(b)) if a != b)
            }
            Filter::Isolate(s) => r.from == *s || r.to == *s,
            Filter::Cut(a, b) => (r.from, r.to) == (*a, *b) || (r.from, r.to) == (*b, *a),
            Filter::DropRate(p) => rng.gen_bool(p.clamp(0.0, 1.0)),
            Filter::DropKind(k) => r.kind == *k,
            Filter::DropRegion(id) => r.region == *id,
            Filter::CutRegion { region, store } => {
                r.region == *region && (r.from == *store || r.to == *store)
            }
            Filter::Delay { .. }
            | Filter::Duplicate { .. }
            | Filter::Corrupt(_)
            | Filter::Truncate(_) => false,
        }
    }
}

/// The fate of one message: the delays after which copies arrive (none = dropped), and
/// whether its payload arrives damaged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deliveries(pub Vec<Duration>, pub Damage);

/// What happens to a message's payload on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Damage {
    /// Nothing.
    #[default]
    None,
    /// A bit flips.
    Corrupt,
    /// The end is cut off.
    Truncate,
}

impl Deliveries {
    /// Whether the message is lost.
    pub fn dropped(&self) -> bool {
        self.0.is_empty()
    }
}

/// The network model: base latency and the filters in force.
#[derive(Debug, Clone)]
pub struct Network {
    /// Every message takes at least this long.
    pub min_latency: Duration,
    /// ... and at most this long (before filter delays).
    pub max_latency: Duration,
    filters: Vec<Filter>,
}

impl Default for Network {
    /// A LAN between machines whose stores also write to disk: 0.5–2 ms per message, no
    /// faults. (Faster links only make clients issue more operations per virtual second:
    /// the generic test's scans grow with the number of puts, so the suite's wall time
    /// would grow quadratically for no gain in coverage.)
    fn default() -> Self {
        Network {
            min_latency: Duration::from_micros(500),
            max_latency: Duration::from_millis(2),
            filters: Vec::new(),
        }
    }
}

fn uniform(rng: &mut impl Rng, min: Duration, max: Duration) -> Duration {
    if max <= min {
        return min;
    }
    let span = u64::try_from((max - min).as_nanos()).unwrap_or(u64::MAX);
    min + Duration::from_nanos(rng.gen_range(0..=span))
}

impl Network {
    /// Adds a filter (filters accumulate until [`Network::clear_filters`]).
    pub fn add_filter(&mut self, f: Filter) {
        self.filters.push(f);
    }

    /// Removes every filter: a healed, reliable network.
    pub fn clear_filters(&mut self) {
        self.filters.clear();
    }

    /// The filters in force.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// Decides the fate of one message.
    pub fn route(&self, rng: &mut impl Rng, r: &Route) -> Deliveries {
        // Draw for every filter even after a drop, so one filter's outcome does not shift the
        // random stream of the others: runs stay comparable when a filter is added.
        let mut dropped = false;
        for f in &self.filters {
            dropped |= f.drops(r, rng);
        }
        let mut delay = uniform(rng, self.min_latency, self.max_latency);
        let mut copies = vec![];
        let mut damage = Damage::None;
        for f in &self.filters {
            match f {
                Filter::Delay { min, max } => delay += uniform(rng, *min, *max),
                Filter::Duplicate { rate, max_gap } if rng.gen_bool(rate.clamp(0.0, 1.0)) => {
                    copies.push(uniform(rng, Duration::ZERO, *max_gap));
                }
                Filter::Corrupt(p) if rng.gen_bool(p.clamp(0.0, 1.0)) => damage = Damage::Corrupt,
                Filter::Truncate(p) if rng.gen_bool(p.clamp(0.0, 1.0)) => damage = Damage::Truncate,
                _ => {}
            }
        }
        if dropped {
            return Deliveries::default();
        }
        let mut out = vec![delay];
        out.extend(copies.into_iter().map(|gap| delay + gap));
        Deliveries(out, damage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn route(from: u64, to: u64) -> Route {
        Route {
            from,
            to,
            kind: 3,
            region: 1,
        }
    }

    #[test]
    fn partitions_drop_only_traffic_across_groups() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut net = Network::default();
        net.add_filter(Filter::partition(&[1, 2], &[3, 4]));
        assert!(!net.route(&mut rng, &route(1, 2)).dropped());
        assert!(net.route(&mut rng, &route(1, 3)).dropped());
        assert!(net.route(&mut rng, &route(4, 2)).dropped());
        assert!(!net.route(&mut rng, &route(3, 4)).dropped());
        assert!(
            !net.route(&mut rng, &route(5, 1)).dropped(),
            "store 5 is in no group"
        );
        net.clear_filters();
        assert!(!net.route(&mut rng, &route(1, 3)).dropped());
    }

    #[test]
    fn isolate_cut_kind_and_region_filters() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut net = Network::default();
        net.add_filter(Filter::Isolate(2));
        net.add_filter(Filter::Cut(3, 4));
        net.add_filter(Filter::DropKind(8));
        net.add_filter(Filter::DropRegion(9));
        assert!(net.route(&mut rng, &route(2, 1)).dropped());
        assert!(net.route(&mut rng, &route(1, 2)).dropped());
        assert!(net.route(&mut rng, &route(4, 3)).dropped());
        assert!(!net.route(&mut rng, &route(1, 3)).dropped());
        assert!(net
            .route(
                &mut rng,
                &Route {
                    kind: 8,
                    ..route(1, 3)
                }
            )
            .dropped());
        assert!(net
            .route(
                &mut rng,
                &Route {
                    region: 9,
                    ..route(1, 3)
                }
            )
            .dropped());
    }

    #[test]
    fn a_region_cut_drops_only_that_region_at_that_store() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut net = Network::default();
        net.add_filter(Filter::CutRegion {
            region: 1,
            store: 5,
        });
        assert!(net.route(&mut rng, &route(1, 5)).dropped());
        assert!(net.route(&mut rng, &route(5, 2)).dropped());
        assert!(
            !net.route(&mut rng, &route(1, 2)).dropped(),
            "other stores talk"
        );
        let other_region = Route {
            region: 2,
            ..route(1, 5)
        };
        assert!(
            !net.route(&mut rng, &other_region).dropped(),
            "other regions talk"
        );
    }

    #[test]
    fn drop_rate_is_close_to_its_probability() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut net = Network::default();
        net.add_filter(Filter::DropRate(0.1));
        let lost = (0..10_000)
            .filter(|_| net.route(&mut rng, &route(1, 2)).dropped())
            .count();
        assert!((800..1200).contains(&lost), "{lost} of 10000 dropped");
    }

    #[test]
    fn delays_stay_in_bounds_and_duplicates_come_later() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut net = Network::default();
        net.add_filter(Filter::Delay {
            min: Duration::from_millis(5),
            max: Duration::from_millis(20),
        });
        net.add_filter(Filter::Duplicate {
            rate: 0.5,
            max_gap: Duration::from_millis(3),
        });
        let mut dups = 0;
        for _ in 0..1000 {
            let d = net.route(&mut rng, &route(1, 2));
            let first = d.0[0];
            assert!(first >= Duration::from_micros(5_500) && first <= Duration::from_millis(22));
            if let Some(second) = d.0.get(1) {
                dups += 1;
                assert!(*second >= first && *second <= first + Duration::from_millis(3));
            }
            assert!(d.0.len() <= 2);
        }
        assert!((400..600).contains(&dups), "{dups} duplicates");
    }
}
