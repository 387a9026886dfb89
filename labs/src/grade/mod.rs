//! `labs grade`: build the suites, run every test in its own process, score, report.
//!
//! The steps are separate modules so each can grow on its own: [`build`] compiles the
//! `suite` test binary with the selected stages' features, [`run`] executes one test in a
//! child process under a time limit (a hang or a crash costs that test only), and [`report`]
//! turns outcomes into the score table, `results.json` (Gradescope) and `junit.xml`.

pub mod build;
pub mod failure;
pub mod pristine;
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
    /// Grade the workspace's lab sources inside a copy of this instructor's tree (see
    /// [`pristine`]); `None`: grade the workspace as it is.
    pub pristine: Option<PathBuf>,
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
    let mut tampered = Vec::new();
    let assembled;
    let opts = match &opts.pristine {
        None => opts,
        Some(pristine) => {
            let work = opts.out_dir.join("pristine");
            eprintln!(
                "labs grade: grading the lab sources of {} inside {} (a copy of {})",
                opts.workspace.display(),
                work.display(),
                pristine.display()
            );
            tampered = pristine::assemble(&opts.workspace, pristine, &work)?
                .iter()
                .map(ToString::to_string)
                .collect();
            assembled = GradeOptions {
                workspace: work,
                pristine: None,
                ..opts.clone()
            };
            &assembled
        }
    };
    grade_tree(opts, tampered)
}

/// Grades `opts.workspace` as it is; `tampered` goes into the report.
fn grade_tree(opts: &GradeOptions, tampered: Vec<String>) -> Result<Report, GradeError> {
    let started = Instant::now();
    eprintln!(
        "labs grade: building the suites for stage(s) {} ...",
        opts.selection.features()
    );
    let binary = match build::build_suite(&opts.workspace, &opts.selection, opts.release)? {
        Ok(binary) => binary,
        Err(failure) => {
            let mut report = Report::build_failed(&opts.selection, failure, started.elapsed());
            report.tampered = tampered;
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
    let mut report = Report::new(&opts.selection, results, started.elapsed());
    report.tampered = tampered;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway workspace whose `labs` suite holds two passing tests of stage 1 and four
    /// hostile ones: a hang, a panic, an abort, and a test that floods its output and fails.
    fn hostile_tree(dir: &std::path::Path) -> std::io::Result<()> {
        let features: String = crate::stages::STAGES
            .iter()
            .map(|s| format!("\"{}\" = []\n", s.name))
            .collect();
        std::fs::write(
            dir.join("Cargo.toml"),
            "[workspace]\nmembers = [\"labs\"]\nresolver = \"2\"\n",
        )?;
        std::fs::create_dir_all(dir.join("labs/tests/suite"))?;
        std::fs::create_dir_all(dir.join("labs/src"))?;
        std::fs::write(dir.join("labs/src/lib.rs"), "")?;
        std::fs::write(
            dir.join("labs/Cargo.toml"),
            format!(
                "[package]\nname = \"labs\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[features]\n{features}\n[[test]]\nname = \"suite\"\npath = \"tests/suite/main.rs\"\n"
            ),
        )?;
        std::fs::write(
            dir.join("labs/tests/suite/main.rs"),
            r#"
#[test]
fn passes_1() {}

#[test]
fn also_passes_1() {
    assert_eq!(1 + 1, 2);
}

#[test]
fn hangs_1() {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn panics_1() {
    panic!("the reason it failed");
}

#[test]
fn aborts_1() {
    std::process::abort();
}

#[test]
fn floods_1() {
    for i in 0..300_000 {
        println!("flood line {i} flood flood flood flood");
    }
    panic!("flooded, then failed");
}
"#,
        )
    }

    /// Hostile tests cost their own points only: a hang is killed at the limit, an abort is a
    /// crash, a flood is cut to a bounded output that still leads with the failure's message,
    /// and the two good tests earn their full share. This builds a tiny crate with cargo and
    /// spends the (short) per-test limit in real time: the limit guards against hangs, so it
    /// is real time by nature.
    #[test]
    fn hostile_tests_score_zero_and_the_rest_full() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        if let Err(e) = hostile_tree(dir.path()) {
            panic!("writing the tree: {e}");
        }
        let opts = GradeOptions {
            workspace: dir.path().to_path_buf(),
            selection: "1".parse().unwrap_or_else(|e| panic!("{e}")),
            jobs: 2,
            timeout: Duration::from_secs(3),
            release: false,
            out_dir: dir.path().join("out"),
            env: run::RunEnv::default(),
            pristine: None,
        };
        let report = match grade(&opts) {
            Ok(r) => r,
            Err(e) => panic!("grading failed: {e}"),
        };
        assert!(report.build_failure.is_none(), "{:?}", report.build_failure);
        let status = |name: &str| {
            report
                .results
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.outcome.status.clone())
        };
        assert_eq!(status("passes_1"), Some(run::Status::Passed));
        assert_eq!(status("also_passes_1"), Some(run::Status::Passed));
        assert_eq!(status("hangs_1"), Some(run::Status::TimedOut));
        assert_eq!(status("panics_1"), Some(run::Status::Failed));
        assert!(
            matches!(status("aborts_1"), Some(run::Status::Crashed(_))),
            "{:?}",
            status("aborts_1")
        );
        assert_eq!(status("floods_1"), Some(run::Status::Failed));
        // 10 points over 6 functions: the two passing ones earn theirs.
        assert!(
            (report.score() - 10.0 / 3.0).abs() < 1e-9,
            "{}",
            report.score()
        );
        let flood = report.results.iter().find(|r| r.name == "floods_1");
        assert!(flood.is_some_and(|r| r.outcome.output.len() < 200 * 1024));
        let json = std::fs::read_to_string(dir.path().join("out/results.json")).unwrap_or_default();
        assert!(json.contains("flooded, then failed"), "{json}");
        assert!(json.contains("the reason it failed"), "{json}");
    }
}
