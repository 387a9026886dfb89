//! `labs handout --check`: every stage stripped on its own.
//!
//! For each stage S (each stage with regions, or those asked for), the workspace is stripped
//! of S's regions alone into one scratch tree, and the check passes for S when
//!
//! - the tree and its suite compile (S's stubs and the rest of the reference fit together),
//! - S's suite fails (its stubs do not leave it solved), and
//! - the suites of the stages before S still pass (S's regions hold nothing an earlier stage
//!   needs; this is what lets an instructor hand out any later stage with the earlier ones'
//!   reference code).
//!
//! One scratch tree and one target dir serve every stage: the tree is re-synced (a file keeps
//! its time when its content does not change), so cargo rebuilds only the crates S touches.
//! Tidying and clippy are `labs handout --strip`'s business, not repeated here.

use std::fmt;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use super::check::{claim_target, run_tests_named, seed_target, SuiteOutcome};
use super::{tree, HandoutError};
use crate::grade::build::{list_tests, SuiteBuild};
use crate::stages::{Selection, Stage};

/// How stripping one stage went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCheck {
    /// The stage stripped.
    pub stage: Stage,
    /// Its regions.
    pub regions: usize,
    /// Its own suite with it stripped (must fail).
    pub own: SuiteOutcome,
    /// The earlier stages' suites with it stripped (must all pass): `None` when there are
    /// none.
    pub earlier: Option<SuiteOutcome>,
    /// The earlier stages' tests that failed.
    pub earlier_failures: Vec<String>,
}

impl StageCheck {
    /// Whether the stage passes the check.
    pub fn ok(&self) -> bool {
        let own = matches!(
            self.own,
            SuiteOutcome::Fails { .. } | SuiteOutcome::TimedOut
        );
        let earlier = match &self.earlier {
            None | Some(SuiteOutcome::NoTests) => true,
            Some(o) => matches!(o, SuiteOutcome::StillPasses { .. }),
        };
        own && earlier
    }
}

impl fmt::Display for StageCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<4} {} ({} regions): own suite {}",
            self.stage.name,
            if self.ok() { "ok    " } else { "FAILED" },
            self.regions,
            self.own
        )?;
        match &self.earlier {
            None => Ok(()),
            Some(SuiteOutcome::StillPasses { passed }) => {
                write!(f, "; earlier stages pass ({passed} tests)")
            }
            Some(SuiteOutcome::Fails { failed, passed }) => write!(
                f,
                "; EARLIER STAGES FAIL ({failed} failed, {passed} pass): its regions hold code \
                 they need: {}",
                self.earlier_failures.join(", ")
            ),
            Some(other) => write!(f, "; earlier stages: {other}"),
        }
    }
}

/// Where and how the check runs.
#[derive(Debug, Clone)]
pub struct StageCheckOptions<'a> {
    /// The instructor's tree.
    pub workspace: &'a Path,
    /// The scratch tree (created or re-synced).
    pub scratch: &'a Path,
    /// Its target dir (seeded from `seed_from`'s `debug/` on first use).
    pub target_dir: &'a Path,
    /// A target dir whose dev build seeds `target_dir` (usually the workspace's `target/`).
    pub seed_from: &'a Path,
    /// The stages to check (each stripped alone).
    pub stages: Vec<Stage>,
    /// Test threads.
    pub threads: usize,
    /// Wall-time limit of one suite run.
    pub timeout: Duration,
}

/// Strips each stage alone and checks it; progress goes to stderr.
pub fn check_stages(opts: &StageCheckOptions<'_>) -> Result<Vec<StageCheck>, HandoutError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |e: io::Error| HandoutError::io(&path, e)
    };
    std::fs::create_dir_all(opts.scratch).map_err(io_err(opts.scratch))?;
    seed_target(opts.seed_from, opts.target_dir).map_err(io_err(opts.target_dir))?;
    let mut results = Vec::new();
    for &stage in &opts.stages {
        let started = Instant::now();
        let selection: Selection = stage
            .name
            .parse()
            .map_err(|_| HandoutError::BadOut(format!("no stage {}", stage.name)))?;
        let plan = tree::Plan::new(opts.workspace, &selection)?;
        let regions = plan
            .regions
            .iter()
            .filter(|r| r.stripped && r.region.stage() == Some(stage))
            .count();
        plan.write(opts.workspace, opts.scratch)?;
        claim_target(opts.scratch, opts.target_dir).map_err(io_err(opts.target_dir))?;
        eprintln!("labs handout --check: {stage} stripped ({regions} regions); building the suite");
        let built = SuiteBuild {
            workspace: opts.scratch,
            features: "all".to_owned(),
            release: false,
            target_dir: Some(opts.target_dir),
            echo: false,
        }
        .run()
        .map_err(io_err(opts.scratch))?;
        let result = match built {
            Err(failure) => StageCheck {
                stage,
                regions,
                own: SuiteOutcome::NotRun(format!(
                    "stripping {stage} alone does not compile:\n{}",
                    failure.output
                )),
                earlier: None,
                earlier_failures: Vec::new(),
            },
            Ok(binary) => {
                let tests = list_tests(&binary).map_err(io_err(&binary))?;
                let of = |pick: &dyn Fn(Stage) -> bool| -> Vec<&String> {
                    tests
                        .iter()
                        .filter(|t| Stage::of_test(t).is_some_and(pick))
                        .collect()
                };
                let own_tests = of(&|s| s == stage);
                let earlier_tests = of(&|s| s.index() < stage.index());
                let run = |tests: &[&String]| -> Result<(SuiteOutcome, Vec<String>), HandoutError> {
                    if tests.is_empty() {
                        return Ok((SuiteOutcome::NoTests, Vec::new()));
                    }
                    run_tests_named(&binary, opts.scratch, tests, opts.threads, opts.timeout)
                        .map_err(io_err(&binary))
                };
                let (own, _) = run(&own_tests)?;
                let (earlier, earlier_failures) = if earlier_tests.is_empty() {
                    (None, Vec::new())
                } else {
                    let (o, f) = run(&earlier_tests)?;
                    (Some(o), f)
                };
                StageCheck {
                    stage,
                    regions,
                    own,
                    earlier,
                    earlier_failures,
                }
            }
        };
        eprintln!(
            "labs handout --check: {result} [{:.0} s]",
            started.elapsed().as_secs_f64()
        );
        results.push(result);
    }
    Ok(results)
}

/// The stages that have regions in `workspace`, in course order.
pub fn stages_with_regions(workspace: &Path) -> Result<Vec<Stage>, HandoutError> {
    let plan = tree::Plan::new(workspace, &Selection::all())?;
    Ok(crate::stages::STAGES
        .iter()
        .copied()
        .filter(|s| plan.regions.iter().any(|r| r.region.stage() == Some(*s)))
        .collect())
}

/// Prints the results and whether all passed.
pub fn print(results: &[StageCheck], w: &mut impl io::Write) -> io::Result<bool> {
    for r in results {
        writeln!(w, "  {r}")?;
        if let SuiteOutcome::NotRun(why) = &r.own {
            writeln!(w, "{why}")?;
        }
    }
    let ok = results.iter().all(StageCheck::ok);
    writeln!(
        w,
        "labs handout --check: {}",
        if ok {
            "every stage strips cleanly"
        } else {
            "FAILED"
        }
    )?;
    Ok(ok)
}

// lab:needs all
#[cfg(test)]
mod tests {
    use super::*;

    /// The end-to-end check CI runs (the full `--check` strips every stage and takes too
    /// long for it): this workspace stripped of 2ab alone compiles, fails the 2ab suite and
    /// passes the 2aa one. The build is seeded from this test's own target dir, so only the
    /// workspace crates compile (a few minutes on two cores).
    #[test]
    fn stripping_2ab_alone_fails_its_suite_and_keeps_2aa_passing() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("labs sits in the workspace");
        // This binary is <target>/debug/deps/labs-<hash>.
        let exe = std::env::current_exe().unwrap();
        let own_target = exe.ancestors().nth(3).expect("a target dir").to_owned();
        let dir = tempfile::tempdir().unwrap();
        let stage = Stage::by_name("2ab").unwrap();
        let results = check_stages(&StageCheckOptions {
            workspace,
            scratch: &dir.path().join("tree"),
            target_dir: &dir.path().join("target"),
            seed_from: &own_target,
            stages: vec![stage],
            threads: 2,
            timeout: Duration::from_secs(600),
        })
        .unwrap();
        assert_eq!(results.len(), 1);
        let r = &results[0];
        assert!(r.regions > 0, "{r}");
        assert!(matches!(r.own, SuiteOutcome::Fails { .. }), "{r}");
        assert!(
            matches!(r.earlier, Some(SuiteOutcome::StillPasses { passed }) if passed > 0),
            "the 1 and 2aa suites still pass: {r}"
        );
        assert!(r.ok());
    }
}
// lab:end-needs
