//! Running mutants: apply one in a scratch copy, build the suite, run its stage's tests until
//! one fails or the time bound passes, restore, report.

use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::scratch::Scratch;
use super::Mutant;
use crate::grade::build::{list_tests, SuiteBuild};
use crate::grade::run::{run_command, Outcome, Status};
use crate::stages::{Stage, STAGES};

/// How to run the catalog.
#[derive(Debug, Clone)]
pub struct MutantsOptions {
    /// The tree whose suites are checked.
    pub workspace: PathBuf,
    /// The entries to run.
    pub entries: Vec<Mutant>,
    /// Mutants handled at once, each in its own scratch copy with its own target dir.
    pub jobs: usize,
    /// Tests of one mutant's suite run at once.
    pub threads: usize,
    /// Suite wall time allowed to catch one mutant.
    pub budget: Duration,
    /// Build with the release profile instead of the dev profile `cargo test` uses.
    pub release: bool,
}

/// What became of one mutant.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// A test of its stage failed.
    Caught {
        /// The first test that failed.
        test: String,
        /// How it failed (`FAIL`, `TIMEOUT`, `CRASH`).
        status: &'static str,
        /// The panic message, or the end of the output when there is none.
        message: String,
        /// The `LABS_SEED` that replays the failure, when the test printed one.
        seed: Option<String>,
        /// Suite wall time until the failure was seen.
        after: Duration,
    },
    /// Every test of its stage passed (or the time bound passed first).
    Missed {
        /// Tests that ran to the end.
        ran: usize,
        /// Whether the time bound stopped the run before every test had run.
        out_of_time: bool,
    },
    /// The mutated tree does not compile: the entry proves nothing.
    DoesNotBuild(String),
    /// The entry no longer applies to the tree (the code it mutates moved or changed).
    DoesNotApply(String),
}

impl Verdict {
    /// A one-word label.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Caught { .. } => "caught",
            Verdict::Missed { .. } => "MISSED",
            Verdict::DoesNotBuild(_) => "NO BUILD",
            Verdict::DoesNotApply(_) => "STALE",
        }
    }

    /// Whether the entry did its job.
    pub fn caught(&self) -> bool {
        matches!(self, Verdict::Caught { .. })
    }
}

/// One mutant's result.
#[derive(Debug, Clone)]
pub struct MutantResult {
    /// The entry.
    pub mutant: Mutant,
    /// What became of it.
    pub verdict: Verdict,
    /// Time spent building the mutated suite.
    pub build: Duration,
}

/// Every result and the run's wall time.
#[derive(Debug, Clone)]
pub struct MutantsReport {
    /// In catalog order.
    pub results: Vec<MutantResult>,
    /// Wall time of the whole run, builds included.
    pub elapsed: Duration,
}

impl MutantsReport {
    /// Whether every entry was caught.
    pub fn all_caught(&self) -> bool {
        self.results.iter().all(|r| r.verdict.caught())
    }

    /// Prints the table, the details of every entry not caught, and the totals.
    pub fn print(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out)?;
        writeln!(
            out,
            "{:<36} {:<5} {:<9} {:>8}  first failing test",
            "mutant", "stage", "verdict", "caught"
        )?;
        for r in &self.results {
            let (after, test) = match &r.verdict {
                Verdict::Caught { after, test, .. } => {
                    (format!("{:.1} s", after.as_secs_f64()), test.as_str())
                }
                _ => (String::from("-"), ""),
            };
            writeln!(
                out,
                "{:<36} {:<5} {:<9} {:>8}  {}",
                r.mutant.id,
                r.mutant.stage,
                r.verdict.label(),
                after,
                test
            )?;
        }
        for r in self.results.iter().filter(|r| !r.verdict.caught()) {
            writeln!(out)?;
            writeln!(
                out,
                "{} {}: {}",
                r.verdict.label(),
                r.mutant.id,
                r.mutant.bug
            )?;
            writeln!(out, "  changes {} ({:?})", r.mutant.file, r.mutant.after)?;
            match &r.verdict {
                Verdict::Missed { ran, out_of_time } => {
                    if *out_of_time {
                        writeln!(out, "  the time bound passed after {ran} passing tests")?;
                    } else {
                        writeln!(out, "  all {ran} tests of stage {} passed", r.mutant.stage)?;
                    }
                }
                Verdict::DoesNotBuild(tail) => {
                    for line in tail.lines().rev().take(15).collect::<Vec<_>>().iter().rev() {
                        writeln!(out, "  | {line}")?;
                    }
                }
                Verdict::DoesNotApply(why) => writeln!(out, "  {why}")?,
                Verdict::Caught { .. } => {}
            }
        }
        let caught = self.results.iter().filter(|r| r.verdict.caught()).count();
        let slowest = self
            .results
            .iter()
            .filter_map(|r| match &r.verdict {
                Verdict::Caught { after, .. } => Some((*after, r.mutant.id)),
                _ => None,
            })
            .max();
        writeln!(out)?;
        write!(
            out,
            "{caught}/{} caught in {:.0} s",
            self.results.len(),
            self.elapsed.as_secs_f64()
        )?;
        if let Some((after, id)) = slowest {
            write!(
                out,
                "; the slowest catch took {:.1} s of suite time ({id})",
                after.as_secs_f64()
            )?;
        }
        writeln!(out)
    }

    /// The report as JSON (written to `target/labs/mutants.json`).
    pub fn json(&self) -> serde_json::Value {
        let results: Vec<_> = self
            .results
            .iter()
            .map(|r| {
                let mut v = serde_json::json!({
                    "id": r.mutant.id,
                    "stage": r.mutant.stage,
                    "bug": r.mutant.bug,
                    "file": r.mutant.file,
                    "verdict": r.verdict.label(),
                    "build_s": r.build.as_secs_f64(),
                });
                if let Verdict::Caught {
                    test,
                    status,
                    message,
                    seed,
                    after,
                } = &r.verdict
                {
                    v["test"] = test.clone().into();
                    v["status"] = (*status).into();
                    v["message"] = message.clone().into();
                    v["seed"] = seed.clone().into();
                    v["caught_after_s"] = after.as_secs_f64().into();
                }
                v
            })
            .collect();
        serde_json::json!({
            "caught": self.results.iter().filter(|r| r.verdict.caught()).count(),
            "total": self.results.len(),
            "elapsed_s": self.elapsed.as_secs_f64(),
            "results": results,
        })
    }
}

/// Runs every entry of `opts` and returns the report; progress goes to stderr.
pub fn run(opts: &MutantsOptions) -> io::Result<MutantsReport> {
    let started = Instant::now();
    let jobs = opts.jobs.clamp(1, opts.entries.len().max(1));
    let scratches: Vec<Scratch> = (0..jobs)
        .map(|j| Scratch::for_job(&opts.workspace, j))
        .collect();
    for s in &scratches {
        let written = s.sync_from(&opts.workspace)?;
        eprintln!(
            "labs mutants: building the unmutated copy {} ({written} files updated; the first \
             build of a copy compiles the workspace, later ones only what changed)",
            s.tree.display()
        );
        let baseline = Instant::now();
        if let Err(failure) = suite_build(s, opts, true).run()? {
            return Err(io::Error::other(format!(
                "the unmutated tree does not build:\n{}",
                failure.output
            )));
        }
        eprintln!(
            "labs mutants: built in {:.0} s",
            baseline.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "labs mutants: {} entries, {jobs} at a time, {} s of suite time each at most",
        opts.entries.len(),
        opts.budget.as_secs()
    );
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, io::Result<MutantResult>)>();
    let mut results: Vec<Option<MutantResult>> = (0..opts.entries.len()).map(|_| None).collect();
    let tty = io::stderr().is_terminal();
    let mut failure = None;
    std::thread::scope(|scope| {
        for scratch in &scratches {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(mutant) = opts.entries.get(i) else {
                    break;
                };
                let result = run_one(mutant, scratch, opts);
                let stop = result.is_err();
                if tx.send((i, result)).is_err() || stop {
                    break;
                }
            });
        }
        drop(tx);
        let mut done = 0;
        for (i, result) in rx {
            done += 1;
            match result {
                Ok(r) => {
                    progress_line(done, opts.entries.len(), &r, started, tty);
                    results[i] = Some(r);
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(MutantsReport {
        results: results.into_iter().flatten().collect(),
        elapsed: started.elapsed(),
    })
}

fn progress_line(done: usize, total: usize, r: &MutantResult, started: Instant, tty: bool) {
    const WIDTH: usize = 24;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let detail = match &r.verdict {
        Verdict::Caught { test, after, .. } => {
            format!("in {:.1} s by {test}", after.as_secs_f64())
        }
        Verdict::Missed { ran, .. } => format!("{ran} tests passed"),
        Verdict::DoesNotBuild(_) => "the mutated tree does not compile".to_owned(),
        Verdict::DoesNotApply(why) => why.clone(),
    };
    let line = format!(
        "[{}{}] {done:>3}/{total} {:>5.0} s  {:<8} {:<36} {detail}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        started.elapsed().as_secs_f64(),
        r.verdict.label(),
        r.mutant.id,
    );
    if tty {
        eprintln!("\r\x1b[K{line}");
    } else {
        eprintln!("{line}");
    }
}

/// Puts a file's original content back however the mutant's run ends.
struct Restore<'a> {
    path: &'a Path,
    original: &'a str,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        if let Err(e) = fs::write(self.path, self.original) {
            eprintln!(
                "labs mutants: cannot restore {}: {e} (the scratch copy is resynced on the next run)",
                self.path.display()
            );
        }
    }
}

fn run_one(mutant: &Mutant, scratch: &Scratch, opts: &MutantsOptions) -> io::Result<MutantResult> {
    let result = |verdict, build| MutantResult {
        mutant: *mutant,
        verdict,
        build,
    };
    let Some(stage) = mutant.stage() else {
        let why = format!("unknown stage {:?}", mutant.stage);
        return Ok(result(Verdict::DoesNotApply(why), Duration::ZERO));
    };
    let path = scratch.tree.join(mutant.file);
    let original = match fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            let why = format!("{}: {e}", mutant.file);
            return Ok(result(Verdict::DoesNotApply(why), Duration::ZERO));
        }
    };
    let mutated = match mutant.apply(&original) {
        Ok(m) => m,
        Err(e) => return Ok(result(Verdict::DoesNotApply(e.to_string()), Duration::ZERO)),
    };
    let restore = Restore {
        path: &path,
        original: &original,
    };
    fs::write(&path, mutated)?;
    let build_started = Instant::now();
    let built = suite_build(scratch, opts, false).run()?;
    let build = build_started.elapsed();
    let binary = match built {
        Ok(b) => b,
        Err(failure) => return Ok(result(Verdict::DoesNotBuild(failure.output), build)),
    };
    let mut tests: Vec<String> = list_tests(&binary)?
        .into_iter()
        .filter(|t| Stage::of_test(t) == Some(stage))
        .collect();
    // Unit-level tests first: they catch most bugs in milliseconds, a cluster test in seconds.
    tests.sort_by_key(|t| runs_a_cluster(t));
    let verdict = run_stage(&binary, &tests, &scratch.tree, opts);
    drop(restore);
    Ok(result(verdict, build))
}

/// Whether a test runs a simulated cluster (seconds, not milliseconds), by its module.
fn runs_a_cluster(test: &str) -> bool {
    ["cluster_", "snapshot_faults_"]
        .iter()
        .any(|m| test.starts_with(m))
}

/// The suite build of a scratch copy. Every stage's tests are built into one binary, so moving
/// between mutants of different stages recompiles only what the mutants changed.
fn suite_build<'a>(scratch: &'a Scratch, opts: &MutantsOptions, echo: bool) -> SuiteBuild<'a> {
    SuiteBuild {
        workspace: &scratch.tree,
        features: STAGES.iter().map(|s| s.name).collect::<Vec<_>>().join(","),
        release: opts.release,
        target_dir: Some(&scratch.target),
        echo,
    }
}

/// Runs `tests` on `opts.threads` threads, each in its own process, until one fails or the
/// budget is spent.
fn run_stage(binary: &Path, tests: &[String], cwd: &Path, opts: &MutantsOptions) -> Verdict {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let passed = AtomicUsize::new(0);
    let out_of_time = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(String, Outcome, Duration)>();
    std::thread::scope(|scope| {
        for _ in 0..opts.threads.max(1) {
            let tx = tx.clone();
            let (next, stop, passed, out_of_time) = (&next, &stop, &passed, &out_of_time);
            scope.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Some(remaining) = opts.budget.checked_sub(started.elapsed()) else {
                    out_of_time.store(true, Ordering::Relaxed);
                    break;
                };
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = tests.get(i) else { break };
                let mut cmd = Command::new(binary);
                cmd.args([name.as_str(), "--exact", "--test-threads", "1"])
                    .current_dir(cwd)
                    // The failure's message and seed are what the report needs, not a trace.
                    .env("RUST_BACKTRACE", "0");
                let outcome = run_command(cmd, name, remaining.max(Duration::from_secs(1)));
                if outcome.status.passed() {
                    passed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if outcome.status == Status::TimedOut && started.elapsed() >= opts.budget {
                    // Killed by the budget, not by a hang of its own making.
                    out_of_time.store(true, Ordering::Relaxed);
                    break;
                }
                stop.store(true, Ordering::Relaxed);
                let _ = tx.send((name.clone(), outcome, started.elapsed()));
                break;
            });
        }
    });
    drop(tx);
    match rx.into_iter().min_by_key(|(_, _, at)| *at) {
        Some((test, outcome, after)) => {
            let (message, seed) = failure_summary(&outcome.output);
            Verdict::Caught {
                test,
                status: outcome.status.label(),
                message,
                seed,
                after,
            }
        }
        None => Verdict::Missed {
            ran: passed.load(Ordering::Relaxed),
            out_of_time: out_of_time.load(Ordering::Relaxed),
        },
    }
}

/// The panic message of a failed test's output (or its last lines) and the replay seed it
/// printed, if any.
pub fn failure_summary(output: &str) -> (String, Option<String>) {
    let lines: Vec<&str> = output.lines().collect();
    let message = match lines.iter().position(|l| l.contains("panicked at")) {
        Some(at) => lines[at + 1..]
            .iter()
            .take_while(|l| {
                !l.is_empty()
                    && !l.starts_with("note:")
                    && !l.starts_with("stack backtrace:")
                    && !l.starts_with("failures:")
            })
            .take(8)
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
        None => lines
            .iter()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let seed = output.split("LABS_SEED=").nth(1).and_then(|rest| {
        let seed: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        (!seed.is_empty()).then_some(seed)
    });
    (message, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_a_libtest_failure() {
        let output =
            "running 1 test\ntest m::t_2b ... FAILED\n\nfailures:\n\n---- m::t_2b stdout ----\n\
                      test failed with seed 42: replay with LABS_SEED=42 (same test name filter)\n\
                      thread 'm::t_2b' panicked at labs/tests/suite/x.rs:3:5:\n\
                      key k: expected v1, got v2\nat virtual 3.2 s\n\
                      note: run with `RUST_BACKTRACE=1`\n\nfailures:\n    m::t_2b\n";
        let (message, seed) = failure_summary(output);
        assert_eq!(message, "key k: expected v1, got v2\nat virtual 3.2 s");
        assert_eq!(seed.as_deref(), Some("42"));
    }

    #[test]
    fn cluster_tests_run_last() {
        let mut tests = vec![
            "cluster_2c::one_snapshot_2c",
            "raft_2c::restore_2c",
            "snapshot_faults_2c::x_2c",
            "peer_storage_2c::y_2c",
        ];
        tests.sort_by_key(|t| runs_a_cluster(t));
        assert_eq!(
            tests,
            [
                "raft_2c::restore_2c",
                "peer_storage_2c::y_2c",
                "cluster_2c::one_snapshot_2c",
                "snapshot_faults_2c::x_2c"
            ]
        );
    }

    #[test]
    fn summarises_a_hang_by_its_last_lines() {
        let (message, seed) = failure_summary("running 1 test\nstep 1\nstep 2\n\n");
        assert_eq!(message, "running 1 test\nstep 1\nstep 2");
        assert_eq!(seed, None);
    }
}
