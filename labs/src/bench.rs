//! `labs bench`: how long the selected stages' suites take, and how much virtual time the
//! simulated clusters covered meanwhile.
//!
//! Wall time is the students' time, so it is measured the way they spend it: the suite binary
//! of `cargo test -p labs --features <stages>` (dev profile unless `--release`), every selected
//! test in one process with libtest's own thread pool, build excluded. The baseline of the
//! same run is the virtual time: what a harness on the real clock (the original's) would need
//! for the same scenarios, so `virtual / wall` is the simulator's speed-up.
//!
//! Each cluster reports its virtual lifetime on drop when `LABS_REPORT_TIME` is set (see
//! `harness::cluster::Cluster`); this command sets it and sums the reports.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::grade::build;
use crate::stages::{Selection, Stage};

/// What to measure and how.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The workspace root of the tree.
    pub workspace: PathBuf,
    /// The stages whose tests run.
    pub selection: Selection,
    /// Build with the release profile (default: the dev profile `cargo test` uses).
    pub release: bool,
    /// libtest threads (default in the command: the number of cores, as `cargo test`).
    pub threads: usize,
    /// How many times the suite runs; the report gives the median wall time.
    pub rounds: usize,
    /// A wall-time budget to compare with, if any.
    pub budget: Option<Duration>,
}

/// Why a benchmark could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Running cargo or the suite failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The tree does not build.
    #[error("the suite does not build:\n{0}")]
    Build(String),
    /// No test of the selected stages exists in the suite.
    #[error("no test of stage(s) {0} in the suite")]
    NoTests(String),
    /// Some tests failed: the timing of a failing suite means nothing.
    #[error("{failed} test(s) failed in round {round}; fix them before benchmarking")]
    Failed {
        /// The round that failed (1-based).
        round: usize,
        /// How many tests failed.
        failed: usize,
    },
}

/// The virtual lifetime of one simulated cluster, from its `labs-report-time` line.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterTime {
    /// The name the test gave its cluster.
    pub name: String,
    /// Virtual seconds the cluster ran.
    pub virtual_s: f64,
    /// Simulator events executed.
    pub events: u64,
}

/// One run of the suite.
#[derive(Debug, Clone)]
pub struct Round {
    /// Wall time of the suite binary (build excluded).
    pub wall: Duration,
    /// Tests that passed.
    pub passed: usize,
    /// Every cluster the tests built.
    pub clusters: Vec<ClusterTime>,
}

impl Round {
    /// Virtual seconds over every cluster.
    pub fn virtual_s(&self) -> f64 {
        self.clusters.iter().map(|c| c.virtual_s).sum()
    }
}

/// Every round of a benchmark.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The rounds, in the order they ran.
    pub rounds: Vec<Round>,
}

impl BenchReport {
    /// The round with the median wall time.
    pub fn median(&self) -> Option<&Round> {
        let mut sorted: Vec<&Round> = self.rounds.iter().collect();
        sorted.sort_by_key(|r| r.wall);
        sorted.get(sorted.len() / 2).copied()
    }

    /// Prints the per-cluster table of the median round and the summary.
    pub fn print(&self, opts: &BenchOptions, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let Some(median) = self.median() else {
            return Ok(());
        };
        let mut by_name: BTreeMap<&str, (f64, u64, usize)> = BTreeMap::new();
        for c in &median.clusters {
            let e = by_name.entry(&c.name).or_default();
            e.0 += c.virtual_s;
            e.1 += c.events;
            e.2 += 1;
        }
        writeln!(
            out,
            "{:<44} {:>10} {:>10} {:>9}",
            "cluster", "virtual s", "events", "clusters"
        )?;
        for (name, (v, events, n)) in &by_name {
            writeln!(out, "{name:<44} {v:>10.1} {events:>10} {n:>9}")?;
        }
        let walls: Vec<String> = self
            .rounds
            .iter()
            .map(|r| format!("{:.1}", r.wall.as_secs_f64()))
            .collect();
        let wall = median.wall.as_secs_f64();
        let virt = median.virtual_s();
        writeln!(
            out,
            "\nstage(s) {} ({} profile, {} test thread(s)): {} tests passed",
            opts.selection.features(),
            if opts.release { "release" } else { "dev" },
            opts.threads,
            median.passed
        )?;
        writeln!(
            out,
            "wall time: {wall:.1} s (median of {} round(s): {} s)",
            self.rounds.len(),
            walls.join(", ")
        )?;
        if virt > 0.0 && wall > 0.0 {
            writeln!(
                out,
                "virtual time: {virt:.1} s over {} clusters; virtual/wall = {:.1}x (the speed-up over a real-clock harness)",
                median.clusters.len(),
                virt / wall
            )?;
        }
        if let Some(budget) = opts.budget {
            let b = budget.as_secs_f64();
            writeln!(
                out,
                "budget: {b:.0} s; wall/budget = {:.2} ({})",
                wall / b,
                if wall <= b { "within" } else { "OVER" }
            )?;
        }
        Ok(())
    }
}

/// Builds the suite and runs the selected stages' tests `opts.rounds` times.
pub fn bench(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    eprintln!(
        "labs bench: building the suite for stage(s) {} ...",
        opts.selection.features()
    );
    let binary = build::build_suite(&opts.workspace, &opts.selection, opts.release)?
        .map_err(|f| BenchError::Build(f.output))?;
    let tests: Vec<String> = build::list_tests(&binary)?
        .into_iter()
        .filter(|t| Stage::of_test(t).is_some_and(|s| opts.selection.contains(s)))
        .collect();
    if tests.is_empty() {
        return Err(BenchError::NoTests(opts.selection.features()));
    }
    let mut rounds = Vec::with_capacity(opts.rounds);
    for round in 1..=opts.rounds.max(1) {
        eprintln!(
            "labs bench: round {round}/{}: {} tests, {} thread(s) ...",
            opts.rounds.max(1),
            tests.len(),
            opts.threads
        );
        let r = run_round(&binary, &tests, opts.threads, &opts.workspace.join("labs"))?;
        if r.failed > 0 {
            return Err(BenchError::Failed {
                round,
                failed: r.failed,
            });
        }
        eprintln!(
            "labs bench: round {round}: {:.1} s",
            r.round.wall.as_secs_f64()
        );
        rounds.push(r.round);
    }
    Ok(BenchReport { rounds })
}

struct RoundOutcome {
    round: Round,
    failed: usize,
}

fn run_round(
    binary: &Path,
    tests: &[String],
    threads: usize,
    cwd: &Path,
) -> Result<RoundOutcome, BenchError> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .current_dir(cwd)
        .env("LABS_REPORT_TIME", "1")
        .arg("--exact")
        .arg("--nocapture")
        .arg(format!("--test-threads={}", threads.max(1)))
        .args(tests)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Both pipes are drained at once so neither can fill up and stall the suite.
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        stderr
            .map(|s| BufReader::new(s).lines().map_while(Result::ok).collect())
            .unwrap_or_else(Vec::<String>::new)
    });
    let out_lines: Vec<String> = child
        .stdout
        .take()
        .map(|s| BufReader::new(s).lines().map_while(Result::ok).collect())
        .unwrap_or_default();
    let status = child.wait()?;
    let wall = started.elapsed();
    let err_lines = err_reader.join().unwrap_or_default();

    let clusters = err_lines
        .iter()
        .chain(&out_lines)
        .filter_map(|l| parse_report_line(l))
        .collect();
    let (passed, failed) = out_lines
        .iter()
        .rev()
        .find_map(|l| parse_summary(l))
        .unwrap_or((0, 0));
    Ok(RoundOutcome {
        round: Round {
            wall,
            passed,
            clusters,
        },
        failed: if status.success() {
            failed
        } else {
            failed.max(1)
        },
    })
}

/// Parses a cluster's `labs-report-time <name> virtual_s=<f> events=<n> ...` line.
pub fn parse_report_line(line: &str) -> Option<ClusterTime> {
    let rest = line.trim().strip_prefix("labs-report-time ")?;
    let mut parts = rest.split_whitespace();
    let name = parts.next()?.to_owned();
    let mut virtual_s = None;
    let mut events = None;
    for p in parts {
        if let Some(v) = p.strip_prefix("virtual_s=") {
            virtual_s = v.parse().ok();
        } else if let Some(v) = p.strip_prefix("events=") {
            events = v.parse().ok();
        }
    }
    Some(ClusterTime {
        name,
        virtual_s: virtual_s?,
        events: events?,
    })
}

/// Parses libtest's `test result: ok. 15 passed; 0 failed; ...` line into (passed, failed).
pub fn parse_summary(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let mut passed = None;
    let mut failed = None;
    for part in rest.split(';') {
        let part = part
            .trim()
            .trim_start_matches("ok. ")
            .trim_start_matches("FAILED. ");
        if let Some(n) = part.strip_suffix(" passed") {
            passed = n.trim().parse().ok();
        } else if let Some(n) = part.strip_suffix(" failed") {
            failed = n.trim().parse().ok();
        }
    }
    Some((passed?, failed?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_reports() {
        assert_eq!(
            parse_report_line(
                "labs-report-time basic_2b virtual_s=23.535 events=116412 apply_checked=3"
            ),
            Some(ClusterTime {
                name: "basic_2b".into(),
                virtual_s: 23.535,
                events: 116412
            })
        );
        assert_eq!(
            parse_report_line("labs-report-time basic_2b events=1"),
            None
        );
        assert_eq!(parse_report_line("test basic_2b ... ok"), None);
    }

    #[test]
    fn parses_libtest_summaries() {
        assert_eq!(
            parse_summary("test result: ok. 15 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 24.87s"),
            Some((15, 0))
        );
        assert_eq!(
            parse_summary("test result: FAILED. 14 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s"),
            Some((14, 1))
        );
        assert_eq!(parse_summary("running 15 tests"), None);
    }

    #[test]
    fn the_median_round_is_reported() {
        let round = |s| Round {
            wall: Duration::from_secs(s),
            passed: 1,
            clusters: vec![ClusterTime {
                name: "c".into(),
                virtual_s: 10.0,
                events: 1,
            }],
        };
        let report = BenchReport {
            rounds: vec![round(9), round(3), round(5)],
        };
        assert_eq!(
            report.median().map(|r| r.wall),
            Some(Duration::from_secs(5))
        );
        let opts = BenchOptions {
            workspace: PathBuf::new(),
            selection: Selection::all(),
            release: false,
            threads: 2,
            rounds: 3,
            budget: Some(Duration::from_secs(30)),
        };
        let mut out = Vec::new();
        report.print(&opts, &mut out).expect("printed");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("wall time: 5.0 s (median of 3 round(s): 9.0, 3.0, 5.0 s)"),
            "{text}"
        );
        assert!(text.contains("virtual/wall = 2.0x"), "{text}");
        assert!(text.contains("wall/budget = 0.17 (within)"), "{text}");
    }
}
