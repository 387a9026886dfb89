//! The checks on a written handout: it builds, clippy finds nothing, the framework's own tests
//! pass (no unit test or doctest runs a stub: those that run the reference solution are in
//! `lab:needs` regions, gone from the handout), and the suite of every stripped stage fails.
//!
//! Builds use the handout's own `target/` (or `--target-dir`). When it has no build yet it is
//! seeded with a copy of the instructor's dev build output (`target/debug`: dependencies,
//! build scripts, fingerprints; not the incremental caches), so only the workspace crates
//! compile; [`claim_target`] keeps a target dir from mistaking another tree's build of a file
//! for this tree's.
//!
//! The suites of all stripped stages come from one build of the `suite` binary with every
//! stage's feature (`--features all`; a feature only switches tests on, so a stage's tests
//! are the same as under `--features S`), which is then run once a stage with that stage's
//! tests only.

use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use crate::grade::build::{list_tests, SuiteBuild};
use crate::stages::Stage;

/// The outcome of a build or lint step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// It succeeded.
    Passed,
    /// It failed; the tail of cargo's output.
    Failed(String),
    /// Not run (an earlier step failed).
    Skipped,
}

impl Step {
    /// Whether the step did not fail (skipped counts as not failed).
    pub fn ok(&self) -> bool {
        !matches!(self, Step::Failed(_))
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Passed => f.write_str("ok"),
            Step::Failed(_) => f.write_str("FAILED"),
            Step::Skipped => f.write_str("skipped"),
        }
    }
}

/// How a stripped stage's suite did in the handout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuiteOutcome {
    /// Some of its tests fail, as they must.
    Fails {
        /// Tests that failed.
        failed: usize,
        /// Tests that still pass.
        passed: usize,
    },
    /// The suite ran out of time (it does not pass either).
    TimedOut,
    /// Every test still passes: the stubs leave the stage solved.
    StillPasses {
        /// Tests run.
        passed: usize,
    },
    /// The stage has no tests.
    NoTests,
    /// The suite was not run (the build failed), or its output was not understood.
    NotRun(String),
}

impl SuiteOutcome {
    /// Whether this outcome is acceptable for a stripped stage.
    pub fn ok(&self) -> bool {
        !matches!(
            self,
            SuiteOutcome::StillPasses { .. } | SuiteOutcome::NotRun(_)
        )
    }
}

impl fmt::Display for SuiteOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuiteOutcome::Fails { failed, passed } => {
                write!(
                    f,
                    "fails, as it must ({failed} failed, {passed} still pass)"
                )
            }
            SuiteOutcome::TimedOut => f.write_str("fails, as it must (timed out)"),
            SuiteOutcome::StillPasses { passed } => {
                write!(
                    f,
                    "STILL PASSES ({passed} tests): the stubs leave it solved"
                )
            }
            SuiteOutcome::NoTests => f.write_str("no tests"),
            SuiteOutcome::NotRun(why) => write!(f, "not run: {why}"),
        }
    }
}

/// The results of the checks.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// `cargo build --workspace --all-targets --features labs/all`.
    pub build: Step,
    /// `cargo clippy --workspace --all-targets --features labs/all -- -D warnings`.
    pub clippy: Step,
    /// The unit tests and doctests of every crate (`cargo test --workspace --lib --bins`, then
    /// `--doc`; the graded suite is a separate test target and is not among them).
    pub unit_tests: Step,
    /// Each stripped stage's suite.
    pub suites: Vec<(Stage, SuiteOutcome)>,
}

impl CheckReport {
    /// Whether the handout is fit to hand out.
    pub fn ok(&self) -> bool {
        self.build.ok()
            && self.clippy.ok()
            && self.unit_tests.ok()
            && self.suites.iter().all(|(_, o)| o.ok())
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckOptions<'a> {
    /// The handout's root.
    pub tree: &'a Path,
    /// The `CARGO_TARGET_DIR` of its builds.
    pub target_dir: &'a Path,
    /// The stripped stages.
    pub stages: Vec<Stage>,
    /// Test threads.
    pub threads: usize,
    /// Wall-time limit of one stage's suite.
    pub timeout: Duration,
}

/// Seeds `target_dir` with `source_target`'s dev build output unless it has its own already;
/// returns whether it copied.
pub fn seed_target(source_target: &Path, target_dir: &Path) -> io::Result<bool> {
    let dest = target_dir.join("debug");
    let from = source_target.join("debug");
    if dest.exists() || !from.is_dir() {
        return Ok(false);
    }
    for sub in ["deps", "build", ".fingerprint"] {
        if from.join(sub).is_dir() {
            copy_dir(&from.join(sub), &dest.join(sub))?;
        }
    }
    Ok(true)
}

/// The file in a target dir naming the tree it last built.
const STAMP: &str = "labs-handout-tree";

/// Makes `target_dir` safe to build `tree` with. Cargo judges a workspace crate fresh by
/// modification times, and knows it by its path relative to the workspace root, so a target
/// dir that last built another tree (the instructor's, when seeded, or another handout) could
/// pass off that tree's build of a file as this one's. Unless `target_dir` last built `tree`,
/// every file of `tree` is touched, then `target_dir` is stamped with `tree`; returns whether
/// files were touched.
pub fn claim_target(tree: &Path, target_dir: &Path) -> io::Result<bool> {
    let tree = tree.canonicalize()?;
    let stamp = target_dir.join(STAMP);
    let mine = tree.to_string_lossy().into_owned();
    if fs::read_to_string(&stamp).ok().as_deref() == Some(mine.as_str()) {
        return Ok(false);
    }
    touch_all(&tree, std::time::SystemTime::now())?;
    fs::create_dir_all(target_dir)?;
    fs::write(&stamp, mine)?;
    Ok(true)
}

fn touch_all(dir: &Path, now: std::time::SystemTime) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            touch_all(&entry.path(), now)?;
        } else if kind.is_file() {
            fs::File::options()
                .write(true)
                .open(entry.path())?
                .set_modified(now)?;
        }
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// Runs the checks; cargo's output goes to stderr as it happens.
pub fn check(opts: &CheckOptions<'_>) -> io::Result<CheckReport> {
    let common = ["--workspace", "--all-targets", "--features", "labs/all"];
    eprintln!("labs handout: cargo build --workspace --all-targets --features labs/all");
    let build = cargo(opts, &[&["build"], &common[..]].concat())?;
    let clippy = if build.ok() {
        eprintln!("labs handout: cargo clippy ... -- -D warnings");
        cargo(
            opts,
            &[&["clippy"], &common[..], &["--", "-D", "warnings"]].concat(),
        )?
    } else {
        Step::Skipped
    };
    let unit_tests = if build.ok() {
        eprintln!("labs handout: cargo test --workspace --lib --bins, then --doc");
        let tests = ["--workspace", "--features", "labs/all", "--no-fail-fast"];
        match cargo(
            opts,
            &[&["test"], &tests[..], &["--lib", "--bins"]].concat(),
        )? {
            Step::Passed => cargo(opts, &[&["test"], &tests[..], &["--doc"]].concat())?,
            failed => failed,
        }
    } else {
        Step::Skipped
    };
    let suites = if build.ok() {
        run_suites(opts)?
    } else {
        opts.stages
            .iter()
            .map(|s| {
                (
                    *s,
                    SuiteOutcome::NotRun("the handout does not build".into()),
                )
            })
            .collect()
    };
    Ok(CheckReport {
        build,
        clippy,
        unit_tests,
        suites,
    })
}

/// Runs cargo in the handout. Its stderr is echoed; a failure keeps the last 100 lines of it,
/// then the names of the tests that failed (from libtest's stdout, otherwise discarded).
fn cargo(opts: &CheckOptions<'_>, args: &[&str]) -> io::Result<Step> {
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(opts.tree)
        .args(args)
        .env("CARGO_TARGET_DIR", opts.target_dir)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take();
    let failed_tests = std::thread::spawn(move || {
        let Some(out) = stdout else {
            return Vec::new();
        };
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.starts_with("test ") && l.ends_with(" FAILED"))
            .collect::<Vec<_>>()
    });
    let mut tail = std::collections::VecDeque::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            tail.push_back(line);
            if tail.len() > 100 {
                tail.pop_front();
            }
        }
    }
    let status = child.wait()?;
    let failed_tests = failed_tests.join().unwrap_or_default();
    Ok(if status.success() {
        Step::Passed
    } else {
        tail.extend(failed_tests);
        Step::Failed(tail.into_iter().collect::<Vec<_>>().join("\n"))
    })
}

fn run_suites(opts: &CheckOptions<'_>) -> io::Result<Vec<(Stage, SuiteOutcome)>> {
    eprintln!("labs handout: building the suite (cargo test -p labs --features all --no-run)");
    let built = SuiteBuild {
        workspace: opts.tree,
        features: "all".to_owned(),
        release: false,
        target_dir: Some(opts.target_dir),
        echo: true,
    }
    .run()?;
    let binary = match built {
        Ok(b) => b,
        Err(failure) => {
            let why = format!("the suite does not build:\n{}", failure.output);
            return Ok(opts
                .stages
                .iter()
                .map(|s| (*s, SuiteOutcome::NotRun(why.clone())))
                .collect());
        }
    };
    let tests = list_tests(&binary)?;
    let mut outcomes = Vec::new();
    for &stage in &opts.stages {
        let mine: Vec<&String> = tests
            .iter()
            .filter(|t| Stage::of_test(t) == Some(stage))
            .collect();
        if mine.is_empty() {
            outcomes.push((stage, SuiteOutcome::NoTests));
            continue;
        }
        eprintln!("labs handout: running the {} tests of {stage}", mine.len());
        let started = Instant::now();
        let outcome = run_tests(&binary, opts.tree, &mine, opts.threads, opts.timeout)?;
        eprintln!(
            "labs handout: {stage}: {outcome} in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        outcomes.push((stage, outcome));
    }
    Ok(outcomes)
}

/// Runs `tests` (exact names) of the suite `binary` in `tree`, stopping them after `timeout`.
pub fn run_tests(
    binary: &Path,
    tree: &Path,
    tests: &[&String],
    threads: usize,
    timeout: Duration,
) -> io::Result<SuiteOutcome> {
    run_tests_named(binary, tree, tests, threads, timeout).map(|(o, _)| o)
}

/// [`run_tests`], with the names of the tests that failed.
pub fn run_tests_named(
    binary: &Path,
    tree: &Path,
    tests: &[&String],
    threads: usize,
    timeout: Duration,
) -> io::Result<(SuiteOutcome, Vec<String>)> {
    let mut child = Command::new(binary)
        .current_dir(tree)
        .arg("--exact")
        .arg(format!("--test-threads={}", threads.max(1)))
        .args(tests)
        .env("RUST_BACKTRACE", "0")
        .env_remove("LABS_SEED")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    // Read the output while the tests run, so a full pipe never blocks them.
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stdout {
            let _ = s.read_to_string(&mut text);
        }
        text
    });
    Ok(match child.wait_timeout(timeout)? {
        Some(_) => {
            let text = reader.join().unwrap_or_default();
            let failed = text
                .lines()
                .filter_map(|l| l.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
                .map(str::to_owned)
                .collect();
            (outcome_of(&text), failed)
        }
        None => {
            child.kill()?;
            child.wait()?;
            let _ = reader.join();
            (SuiteOutcome::TimedOut, Vec::new())
        }
    })
}

/// The outcome libtest's summary line (`test result: FAILED. 3 passed; 2 failed; ...`) tells.
pub fn outcome_of(output: &str) -> SuiteOutcome {
    let Some(line) = output.lines().rev().find(|l| l.starts_with("test result:")) else {
        return SuiteOutcome::NotRun("no libtest summary (the test binary crashed?)".into());
    };
    let count = |what: &str| -> usize {
        line.split(';')
            .find_map(|part| part.trim().strip_suffix(what))
            .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let (passed, failed) = (count(" passed"), count(" failed"));
    if failed > 0 {
        SuiteOutcome::Fails { failed, passed }
    } else {
        SuiteOutcome::StillPasses { passed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libtest_summaries() {
        assert_eq!(
            outcome_of("test a ... FAILED\n\ntest result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 10 filtered out; finished in 0.10s\n"),
            SuiteOutcome::Fails { failed: 2, passed: 3 }
        );
        assert_eq!(
            outcome_of("test result: ok. 7 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s\n"),
            SuiteOutcome::StillPasses { passed: 7 }
        );
        assert!(matches!(
            outcome_of("thread panicked"),
            SuiteOutcome::NotRun(_)
        ));
    }

    #[test]
    fn seeds_a_target_dir_once() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let target = dst.path().join("t");
        fs::create_dir_all(src.path().join("debug/deps")).unwrap();
        fs::create_dir_all(src.path().join("debug/incremental/x")).unwrap();
        fs::write(src.path().join("debug/deps/libx.rlib"), "x").unwrap();
        assert!(seed_target(src.path(), &target).unwrap());
        assert!(target.join("debug/deps/libx.rlib").is_file());
        assert!(!target.join("debug/incremental").exists());
        assert!(!seed_target(src.path(), &target).unwrap());
    }

    #[test]
    fn a_target_dir_is_claimed_by_one_tree_at_a_time() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        let file = a.path().join("lib.rs");
        fs::write(&file, "x").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(claim_target(a.path(), target.path()).unwrap());
        assert!(
            fs::metadata(&file).unwrap().modified().unwrap() > old,
            "touched"
        );
        assert!(!claim_target(a.path(), target.path()).unwrap(), "same tree");
        assert!(
            claim_target(b.path(), target.path()).unwrap(),
            "another tree"
        );
        assert!(claim_target(a.path(), target.path()).unwrap(), "back again");
    }
}
