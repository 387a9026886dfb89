//! Seeds for randomized tests: which ones to run, and how a failure names its seed.
//!
//! `LABS_SEED=<n>` runs a test under exactly seed `n` (decimal or `0x` hex) — the replay of a
//! failure. `LABS_SEEDS=<k>` runs it under `k` different seeds. Neither set: one fixed seed,
//! so `cargo test` is reproducible run to run.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// The seed a test runs under when nothing is set.
pub const DEFAULT_SEED: u64 = 0x7469_6e79_6b76; // "tinykv"

fn parse_u64(var: &str, s: &str) -> u64 {
    let s = s.trim();
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("{var}={s:?} is not a number"))
}

/// The seed of a run that uses one: `LABS_SEED` if set, else [`DEFAULT_SEED`].
///
/// # Panics
/// If `LABS_SEED` is set but is not a number.
pub fn labs_seed() -> u64 {
    match std::env::var("LABS_SEED") {
        Ok(s) => parse_u64("LABS_SEED", &s),
        Err(_) => DEFAULT_SEED,
    }
}

/// The seeds this run uses (see the module doc).
pub fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("LABS_SEED") {
        return vec![parse_u64("LABS_SEED", &s)];
    }
    let k = std::env::var("LABS_SEEDS")
        .map(|s| parse_u64("LABS_SEEDS", &s))
        .unwrap_or(1)
        .max(1);
    (0..k)
        .map(|i| {
            if i == 0 {
                DEFAULT_SEED
            } else {
                mix(DEFAULT_SEED, i)
            }
        })
        .collect()
}

/// splitmix64: spreads consecutive indexes over unrelated seeds.
fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476C_E1E5_B9B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `test` under every seed of [`seeds`]. A failure's panic message ends with the test's
/// name and the `LABS_SEED=<n>` that replays it.
pub fn run_seeded(name: &str, test: impl Fn(u64)) {
    for seed in seeds() {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| test(seed))) {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied());
            match msg {
                // Cluster failures already end with the replay line.
                Some(m) if m.contains("LABS_SEED=") => resume_unwind(panic),
                Some(m) => panic!("{m}\n{name} failed: replay with LABS_SEED={seed}"),
                None => panic!("{name} failed: replay with LABS_SEED={seed}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_their_seed() {
        let err = catch_unwind(|| run_seeded("t_2b", |seed| assert_eq!(seed, 1, "boom")))
            .expect_err("the test fails");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("boom"), "{msg}");
        assert!(
            msg.ends_with(&format!(
                "t_2b failed: replay with LABS_SEED={DEFAULT_SEED}"
            )),
            "{msg}"
        );
    }

    #[test]
    fn mixed_seeds_differ() {
        let s: Vec<u64> = (0..5).map(|i| mix(DEFAULT_SEED, i)).collect();
        let mut dedup = s.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), 5);
    }
}
