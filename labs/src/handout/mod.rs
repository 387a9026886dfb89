//! `labs handout`: the student tree of a set of stages, its manifest, and its checks.
//!
//! `labs handout --strip SET --out DIR` copies the workspace's sources to `DIR` (no build
//! output, no `.git`), replacing the `lab:` regions of the stages in `SET` by their stubs
//! ([`markers`] defines the regions, [`strip`] the replacement, [`tree`] which files), lets
//! the compiler [`tidy`] what the stripping left unused, writes `DIR/.labs/manifest.json`
//! ([`manifest`]: hashes of what students must not change) and the autograder kits, then
//! [`check`]s that the tree builds, is clippy-clean, passes its unit tests and doctests, and
//! fails the suite of every stripped stage. `labs handout --check` ([`stage_check`]) strips
//! each stage alone instead; `labs handout --verify-manifest TREE` compares a tree with its
//! manifest.
//!
//! `SET` is what [`Selection`] parses: a list (`2b,3a`), an inclusive range in course order
//! (`2b..3c`), a group (`2a`), or `all`.

pub mod check;
pub mod manifest;
pub mod markers;
pub mod stage_check;
pub mod strip;
pub mod tidy;
pub mod tree;

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::stages::{Selection, Stage};
use manifest::{Manifest, MANIFEST_PATH};
use markers::MarkerError;

/// Why a handout could not be written or checked.
#[derive(Debug, thiserror::Error)]
pub enum HandoutError {
    /// The tree's markers are wrong; every error, each at `path:line`.
    #[error("{} marker error(s):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Markers(Vec<MarkerError>),
    /// The out dir holds something that is not an earlier handout.
    #[error("{0} is not empty (pass --force to overwrite an earlier handout)")]
    OutNotEmpty(PathBuf),
    /// The out dir is unsafe to write or overwrite.
    #[error("{0}")]
    BadOut(String),
    /// A manifest that cannot be read or written.
    #[error("manifest {path}: {why}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A file-system or process error.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl HandoutError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        HandoutError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The command line of `labs handout`.
#[derive(Debug, Clone, clap::Args)]
pub struct HandoutArgs {
    /// Stages whose regions are stripped: a list (2b,3a), a range in course order (2b..3c,
    /// inclusive), a group (2a) or all.
    #[arg(long, required_unless_present_any = ["verify_manifest", "check"])]
    pub strip: Option<Selection>,
    /// The directory the student tree is written to (must be empty, or an earlier handout
    /// with --force).
    #[arg(long, required_unless_present_any = ["verify_manifest", "check"])]
    pub out: Option<PathBuf>,
    /// Overwrite an earlier handout in --out (a directory with a .labs/manifest.json).
    #[arg(long)]
    pub force: bool,
    /// Write the tree, manifest and kits only: no compiler runs, so no tidying of the imports
    /// and dead code the stripping leaves, no build, clippy, unit tests or suites.
    #[arg(long)]
    pub no_check: bool,
    /// The target dir of the checks' builds (default: the handout's target/, seeded from the
    /// instructor's target/debug on first use). Sharing one between handouts is safe but
    /// rebuilds the workspace crates at each switch.
    #[arg(long)]
    pub target_dir: Option<PathBuf>,
    /// Wall-clock limit, in seconds, for one stripped stage's suite.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Compare TREE's protected files with its manifest (or --manifest's) and exit.
    #[arg(long, value_name = "TREE", conflicts_with_all = ["strip", "out"])]
    pub verify_manifest: Option<PathBuf>,
    /// The manifest --verify-manifest reads (default: TREE/.labs/manifest.json; a grader
    /// passes the instructor's copy).
    #[arg(long, requires = "verify_manifest")]
    pub manifest: Option<PathBuf>,
    /// The instructor's tree (default: this workspace).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// Vendor the dependencies into the handout (`cargo vendor` into vendor/, with
    /// .cargo/config.toml pointing at it), so the Gradescope autograder builds offline. For
    /// the autograder zip; students do not need it.
    #[arg(long)]
    pub vendor: bool,
    /// Check every stage on its own instead of writing a handout: stripping it alone
    /// compiles, fails its suite, and leaves the suites of the stages before it passing.
    /// Works in target/labs/handout-check (tree and build).
    #[arg(long, conflicts_with_all = ["strip", "out", "verify_manifest", "no_check"])]
    pub check: bool,
    /// With --check: only these stages (default: every stage with regions).
    #[arg(long, requires = "check")]
    pub stages: Option<Selection>,
}

/// What to hand out.
#[derive(Debug, Clone)]
pub struct HandoutOptions {
    /// The instructor's (reference) tree.
    pub workspace: PathBuf,
    /// The stages stripped.
    pub selection: Selection,
    /// Where the student tree goes.
    pub out: PathBuf,
    /// Overwrite an earlier handout.
    pub force: bool,
    /// Vendor the dependencies for an offline autograder.
    pub vendor: bool,
    /// Run the checks (`None`: skip them).
    pub check: Option<CheckSettings>,
}

/// How the checks run.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// The builds' target dir.
    pub target_dir: PathBuf,
    /// Test threads.
    pub threads: usize,
    /// Wall-time limit of one stage's suite.
    pub timeout: Duration,
}

/// What a handout run did.
#[derive(Debug, Clone)]
pub struct HandoutReport {
    /// Per selected stage: regions stripped and the files they are in.
    pub stripped: Vec<(Stage, usize, BTreeSet<PathBuf>)>,
    /// Files written to the out dir.
    pub written: usize,
    /// Files the manifest protects.
    pub protected_files: usize,
    /// What tidying the stripping's fallout changed (`None` with `--no-check`).
    pub tidy: Option<tidy::TidyReport>,
    /// The checks, if run.
    pub check: Option<check::CheckReport>,
}

impl HandoutReport {
    /// Whether the handout is fit to hand out (checks passed or were skipped).
    pub fn ok(&self) -> bool {
        self.check.as_ref().is_none_or(check::CheckReport::ok)
    }

    /// Prints the summary.
    pub fn print(&self, out: &Path, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, "labs handout: {}", out.display())?;
        for (stage, regions, files) in &self.stripped {
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            if *regions == 0 {
                writeln!(w, "  {:<4} no regions", stage.name)?;
            } else {
                writeln!(
                    w,
                    "  {:<4} {regions} regions stripped in {}",
                    stage.name,
                    files.join(", ")
                )?;
            }
        }
        writeln!(
            w,
            "  {} files written; {MANIFEST_PATH} protects {} files",
            self.written, self.protected_files
        )?;
        let Some(c) = &self.check else {
            return writeln!(
                w,
                "  checks skipped (--no-check); imports only the reference code used are not removed"
            );
        };
        if let Some(t) = &self.tidy {
            writeln!(
                w,
                "  tidy:   {} unused imports removed, {} items only the reference code used kept \
                 with #[allow(dead_code)], in {} files",
                t.imports_removed,
                t.dead_items_allowed,
                t.files.len()
            )?;
        }
        writeln!(w, "  build:  {}", c.build)?;
        writeln!(w, "  clippy: {}", c.clippy)?;
        writeln!(w, "  unit tests and doctests: {}", c.unit_tests)?;
        for step in [&c.build, &c.clippy, &c.unit_tests] {
            if let check::Step::Failed(tail) = step {
                writeln!(w, "{tail}")?;
            }
        }
        for (stage, outcome) in &c.suites {
            writeln!(w, "  suite {:<4} {outcome}", stage.name)?;
        }
        writeln!(
            w,
            "labs handout: {}",
            if c.ok() { "ok" } else { "NOT FIT TO HAND OUT" }
        )
    }
}

/// Writes the handout (and checks it, if asked).
pub fn handout(opts: &HandoutOptions) -> Result<HandoutReport, HandoutError> {
    prepare_out(&opts.workspace, &opts.out, opts.force)?;
    let plan = tree::Plan::new(&opts.workspace, &opts.selection)?;
    let written = plan.write(&opts.workspace, &opts.out)?;
    let stripped = opts
        .selection
        .stages()
        .iter()
        .map(|&stage| {
            let mine: Vec<_> = plan
                .regions
                .iter()
                .filter(|r| r.stripped && r.region.stage() == Some(stage))
                .collect();
            let files = mine.iter().map(|r| r.file.clone()).collect();
            (stage, mine.len(), files)
        })
        .collect();
    let names = opts
        .selection
        .stages()
        .iter()
        .map(|s| s.name.to_owned())
        .collect();
    // The autograder kits are part of the handout, and protected like the suites.
    let lab_crates = crate::grade::pristine::lab_crates(&opts.out)
        .map_err(|e| HandoutError::io(&opts.out, e))?;
    let crate_names: Vec<&str> = lab_crates.iter().map(String::as_str).collect();
    crate::kits::write_kits(&opts.out, crate::stages::STAGES, &crate_names)
        .map_err(|e| HandoutError::io(&opts.out, e))?;
    // The checks' target dir is ready before tidying, which compiles the tree.
    if let Some(settings) = &opts.check {
        let seeded = check::seed_target(&opts.workspace.join("target"), &settings.target_dir)
            .map_err(|e| HandoutError::io(&settings.target_dir, e))?;
        if seeded {
            eprintln!(
                "labs handout: seeded {} with the build output of {}",
                settings.target_dir.display(),
                opts.workspace.join("target").display()
            );
        }
        if check::claim_target(&opts.out, &settings.target_dir)
            .map_err(|e| HandoutError::io(&settings.target_dir, e))?
        {
            eprintln!(
                "labs handout: {} last built another tree: every file of {} touched, so \
                 cargo rebuilds what it must",
                settings.target_dir.display(),
                opts.out.display()
            );
        }
    }
    let tidy = match &opts.check {
        None => None,
        Some(settings) => {
            eprintln!("labs handout: tidying the stripping's fallout (cargo clippy --message-format=json)");
            Some(
                tidy::tidy(&opts.out, &settings.target_dir)
                    .map_err(|e| HandoutError::io(&opts.out, e))?,
            )
        }
    };
    let manifest = Manifest::of_tree(&opts.out, names)?;
    manifest.write(&opts.out.join(MANIFEST_PATH))?;
    let check = match &opts.check {
        None => None,
        Some(settings) => Some(
            check::check(&check::CheckOptions {
                tree: &opts.out,
                target_dir: &settings.target_dir,
                stages: opts.selection.stages().to_vec(),
                threads: settings.threads,
                timeout: settings.timeout,
            })
            .map_err(|e| HandoutError::io(&opts.out, e))?,
        ),
    };
    if opts.vendor {
        eprintln!("labs handout: cargo vendor (for the offline autograder)");
        crate::kits::vendor(&opts.out).map_err(|e| HandoutError::io(&opts.out, e))?;
    }
    Ok(HandoutReport {
        stripped,
        written,
        protected_files: manifest.files.len(),
        tidy,
        check,
    })
}

/// Refuses an out dir that is not empty (unless `force` and it is an earlier handout), or that
/// lies inside the workspace's sources or contains the workspace.
fn prepare_out(workspace: &Path, out: &Path, force: bool) -> Result<(), HandoutError> {
    let ws = workspace
        .canonicalize()
        .map_err(|e| HandoutError::io(workspace, e))?;
    if out.exists() {
        let out_abs = out.canonicalize().map_err(|e| HandoutError::io(out, e))?;
        check_apart(&ws, &out_abs)?;
        let empty = fs::read_dir(out)
            .map_err(|e| HandoutError::io(out, e))?
            .next()
            .is_none();
        let earlier_handout = out.join(MANIFEST_PATH).is_file();
        if !(empty || force && earlier_handout) {
            return Err(HandoutError::OutNotEmpty(out.to_owned()));
        }
    } else {
        // Check where it would be: its nearest existing ancestor plus the rest.
        let abs = if out.is_absolute() {
            out.to_owned()
        } else {
            std::env::current_dir()
                .map_err(|e| HandoutError::io(out, e))?
                .join(out)
        };
        let mut existing = abs.as_path();
        while !existing.exists() {
            existing = existing.parent().unwrap_or(Path::new("/"));
        }
        let base = existing
            .canonicalize()
            .map_err(|e| HandoutError::io(existing, e))?;
        let rest = abs.strip_prefix(existing).unwrap_or(Path::new(""));
        check_apart(&ws, &base.join(rest))?;
    }
    Ok(())
}

fn check_apart(ws: &Path, out: &Path) -> Result<(), HandoutError> {
    if ws.starts_with(out) {
        return Err(HandoutError::BadOut(format!(
            "{} contains the workspace {}",
            out.display(),
            ws.display()
        )));
    }
    if out.starts_with(ws) && !out.starts_with(ws.join("target")) {
        return Err(HandoutError::BadOut(format!(
            "{} is inside the workspace's sources (it would be copied into itself); use a \
             directory outside it or under its target/",
            out.display()
        )));
    }
    Ok(())
}

/// Runs `labs handout` from its command line; `workspace` is the default tree.
pub fn main(args: HandoutArgs, default_workspace: PathBuf, threads: usize) -> ExitCode {
    let workspace = args.workspace.unwrap_or(default_workspace);
    if let Some(tree) = args.verify_manifest {
        let path = args.manifest.unwrap_or_else(|| tree.join(MANIFEST_PATH));
        let diffs = Manifest::read(&path).and_then(|m| manifest::verify(&tree, &m));
        return match diffs {
            Ok(d) if d.is_empty() => {
                println!(
                    "labs handout: {} matches {}",
                    tree.display(),
                    path.display()
                );
                ExitCode::SUCCESS
            }
            Ok(d) => {
                println!(
                    "labs handout: {} differs from {} in {} protected file(s):",
                    tree.display(),
                    path.display(),
                    d.len()
                );
                d.iter().for_each(|d| println!("  {d}"));
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("labs handout: {e}");
                ExitCode::from(2)
            }
        };
    }
    if args.check {
        let base = workspace.join("target").join("labs").join("handout-check");
        let target_dir = args.target_dir.unwrap_or_else(|| base.join("target"));
        let stages = match args.stages {
            Some(set) => Ok(set.stages().to_vec()),
            None => stage_check::stages_with_regions(&workspace),
        };
        let results = stages.and_then(|stages| {
            stage_check::check_stages(&stage_check::StageCheckOptions {
                workspace: &workspace,
                scratch: &base.join("tree"),
                target_dir: &target_dir,
                seed_from: &workspace.join("target"),
                stages,
                threads,
                timeout: Duration::from_secs(args.timeout.max(1)),
            })
        });
        return match results.map(|r| stage_check::print(&r, &mut io::stdout().lock())) {
            Ok(Ok(true)) => ExitCode::SUCCESS,
            Ok(Ok(false)) => ExitCode::from(1),
            Ok(Err(e)) => {
                eprintln!("labs handout: {e}");
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("labs handout: {e}");
                ExitCode::from(2)
            }
        };
    }
    let (Some(selection), Some(out)) = (args.strip, args.out) else {
        eprintln!("labs handout: --strip and --out are required");
        return ExitCode::from(2);
    };
    // Absolute, so that cargo (run in the handout) finds the same target dir.
    let absolute = |p: PathBuf| match std::env::current_dir() {
        Ok(cwd) if p.is_relative() => cwd.join(p),
        _ => p,
    };
    let out = absolute(out);
    let target_dir = args.target_dir.map(absolute);
    let check = (!args.no_check).then(|| CheckSettings {
        target_dir: target_dir.unwrap_or_else(|| out.join("target")),
        threads,
        timeout: Duration::from_secs(args.timeout.max(1)),
    });
    let opts = HandoutOptions {
        workspace,
        selection,
        out,
        force: args.force,
        vendor: args.vendor,
        check,
    };
    match handout(&opts) {
        Ok(report) => {
            if let Err(e) = report.print(&opts.out, &mut io::stdout().lock()) {
                eprintln!("labs handout: {e}");
                return ExitCode::from(2);
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("labs handout: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::write;

    fn workspace() -> tempfile::TempDir {
        let ws = tempfile::tempdir().unwrap();
        write(ws.path(), "Cargo.toml", "[workspace]");
        write(ws.path(), "labs/tests/suite/main.rs", "mod raft_2aa;");
        write(ws.path(), "raft/Cargo.toml", "[package]");
        write(
            ws.path(),
            "raft/src/lib.rs",
            "fn f() -> u8 {\n    // lab:begin 2aa\n    // lab:stub todo!()\n    1\n    // lab:end 2aa\n}\n",
        );
        ws
    }

    fn opts(ws: &Path, out: &Path, force: bool) -> HandoutOptions {
        HandoutOptions {
            workspace: ws.to_owned(),
            selection: "2a".parse().unwrap(),
            out: out.to_owned(),
            force,
            vendor: false,
            check: None,
        }
    }

    #[test]
    fn writes_the_tree_and_its_manifest() {
        let ws = workspace();
        let out = tempfile::tempdir().unwrap();
        let report = handout(&opts(ws.path(), out.path(), false)).unwrap();
        assert_eq!(report.stripped.len(), 3, "2a = 2aa, 2ab, 2ac");
        assert_eq!(report.stripped[0].1, 1);
        assert_eq!(
            report.protected_files, 6,
            "all but raft/src, with the three kit files"
        );
        assert!(out.path().join(".github/workflows/classroom.yml").is_file());
        assert!(out.path().join("autograder/run_autograder").is_file());
        let run = fs::read_to_string(out.path().join("autograder/run_autograder")).unwrap();
        assert!(run.contains("for crate in raft; do"), "{run}");
        let lib = fs::read_to_string(out.path().join("raft/src/lib.rs")).unwrap();
        assert!(lib.contains("    todo!()\n") && !lib.contains("    1\n"));
        let m = Manifest::read(&out.path().join(MANIFEST_PATH)).unwrap();
        assert_eq!(m.stripped, ["2aa", "2ab", "2ac"]);
        assert_eq!(manifest::verify(out.path(), &m).unwrap(), []);
        let mut text = Vec::new();
        report.print(out.path(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("2aa  1 regions stripped in raft/src/lib.rs"),
            "{text}"
        );
        assert!(text.contains("2ab  no regions"), "{text}");
    }

    #[test]
    fn refuses_a_non_empty_out_dir_unless_an_earlier_handout_and_forced() {
        let ws = workspace();
        let out = tempfile::tempdir().unwrap();
        write(out.path(), "notes.txt", "mine");
        assert!(matches!(
            handout(&opts(ws.path(), out.path(), true)),
            Err(HandoutError::OutNotEmpty(_))
        ));
        fs::remove_file(out.path().join("notes.txt")).unwrap();
        handout(&opts(ws.path(), out.path(), false)).unwrap();
        assert!(matches!(
            handout(&opts(ws.path(), out.path(), false)),
            Err(HandoutError::OutNotEmpty(_))
        ));
        handout(&opts(ws.path(), out.path(), true)).unwrap();
    }

    #[test]
    fn refuses_an_out_dir_inside_the_sources_or_around_them() {
        let ws = workspace();
        for bad in [ws.path().join("raft/handout"), ws.path().to_owned()] {
            assert!(
                matches!(
                    handout(&opts(ws.path(), &bad, true)),
                    Err(HandoutError::BadOut(_))
                ),
                "{}",
                bad.display()
            );
        }
        let under_target = ws.path().join("target/h");
        handout(&opts(ws.path(), &under_target, false)).unwrap();
    }

    #[test]
    fn refuses_a_tree_with_bad_markers_before_writing() {
        let ws = workspace();
        write(ws.path(), "raft/src/bad.rs", "// lab:begin 2aa\n");
        let out = tempfile::tempdir().unwrap();
        let err = handout(&opts(ws.path(), out.path(), false)).unwrap_err();
        assert!(err.to_string().contains("raft/src/bad.rs:1: "), "{err}");
        assert!(
            fs::read_dir(out.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }
}
