//! `labs grade`: build the suites, run every test in its own process, score, report.
//!
//! The steps are separate modules so each can grow on its own: [`build`] compiles the
//! `suite` test binary with the selected stages' features, [`run`] executes one test in a
//! child process under a time limit (a hang or a crash costs that test only), and [`report`]
//! turns outcomes into the score table, `results.json` (Gradescope) and `junit.xml`.

pub mod build;
pub mod failure;
pub mod report;
pub mod run;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::stages::{Selection, Stage};
use report::{Report, TestResult};
use run::Outcome;

/// What to grade and how.
#[derive(Debug, Clone)]
pub struct GradeOptions {
    /// The workspace root of the tree being graded.
    pub workspace: PathBuf,
    /// The stages to grade.
    pub selection: Selection,
    /// How many tests run at once.
    pub jobs: usize,
    /// Wall-clock limit for one test's process.
    pub timeout: Duration,
    /// Build the suite with the release profile (the default: cluster suites run faster).
    pub release: bool,
    /// Where `results.json` and `junit.xml` go.
    pub out_dir: PathBuf,
    /// Backtraces and seeds of the tests' processes.
    pub env: run::RunEnv,
}

/// Why grading could not produce a score at all.
#[derive(Debug, thiserror::Error)]
pub enum GradeError {
    /// Running cargo or the test binary failed for a reason outside the student's code.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Writing a report failed.
    #[error("writing reports: {0}")]
    Report(String),
}

/// Grades the tree: returns the report (also printed and written to `out_dir`).
pub fn grade(opts: &GradeOptions) -> Result<Report, GradeError> {
    let started = Instant::now();
    eprintln!(
        "labs grade: building the suites for stage(s) {} ...",
        opts.selection.features()
    );
    let binary = match build::build_suite(&opts.workspace, &opts.selection, opts.release)? {
        Ok(binary) => binary,
        Err(failure) => {
            let report = Report::build_failed(&opts.selection, failure, started.elapsed());
            finish(&report, opts)?;
            return Ok(report);
        }
    };
    let tests: Vec<(String, Stage)> = build::list_tests(&binary)?
        .into_iter()
        .filter_map(|t| Stage::of_test(&t).map(|s| (t, s)))
        .filter(|(_, s)| opts.selection.contains(*s))
        .collect();
    eprintln!(
        "labs grade: running {} tests, {} at a time, {} s limit each",
        tests.len(),
        opts.jobs,
        opts.timeout.as_secs()
    );
    let outcomes = run_all(&binary, &tests, opts);
    let results = tests
        .into_iter()
        .zip(outcomes)
        .map(|((name, stage), outcome)| TestResult {
            name,
            stage,
            outcome,
        })
        .collect();
    let report = Report::new(&opts.selection, results, started.elapsed());
    finish(&report, opts)?;
    Ok(report)
}

fn finish(report: &Report, opts: &GradeOptions) -> Result<(), GradeError> {
    let mut out = std::io::stdout().lock();
    report
        .print(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| GradeError::Report(e.to_string()))?;
    report
        .write_files(&opts.out_dir)
        .map_err(|e| GradeError::Report(e.to_string()))?;
    println!(
        "reports: {} and {}",
        opts.out_dir.join("results.json").display(),
        opts.out_dir.join("junit.xml").display()
    );
    Ok(())
}

/// Runs every test on `opts.jobs` threads, each test in its own process, showing progress.
fn run_all(
    binary: &std::path::Path,
    tests: &[(String, Stage)],
    opts: &GradeOptions,
) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Outcome)>();
    let mut outcomes: Vec<Option<Outcome>> = (0..tests.len()).map(|_| None).collect();
    let tty = std::io::stderr().is_terminal();
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((name, _)) = tests.get(i) else { break };
                let outcome = run::run_test(binary, name, opts.timeout, &opts.workspace, &opts.env);
                if tx.send((i, outcome)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut done = 0;
        for (i, outcome) in rx {
            done += 1;
            if !outcome.status.passed() {
                let line = format!("{:>8} {}", outcome.status.label(), tests[i].0);
                if tty {
                    eprintln!("\r\x1b[K{line}");
                } else {
                    eprintln!("{line}");
                }
            }
            progress(done, tests.len(), tty);
            outcomes[i] = Some(outcome);
        }
    });
    if tty {
        eprintln!();
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(Outcome::not_run))
        .collect()
}

fn progress(done: usize, total: usize, tty: bool) {
    const WIDTH: usize = 40;
    if tty {
        let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
        eprint!(
            "\r\x1b[K[{}{}] {done}/{total}",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled)
        );
        let _ = std::io::stderr().flush();
    } else if done == total || done.is_multiple_of(25) {
        eprintln!("  {done}/{total} tests done");
    }
}
