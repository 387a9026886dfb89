//! `labs`: the course's command line.
//!
//! `labs grade` builds the graded suites of a tree, runs every test in its own process and
//! prints the score table (see `labs grade --help`). `labs bench` times the selected stages'
//! suites as `cargo test` runs them and reports the simulator's virtual/wall ratio.
//! `labs mutants` checks that every classic student bug of the catalog is caught by the suite
//! of its stage. `labs handout` writes a student tree with the regions of some stages
//! stripped, and its manifest (see `labs handout --help`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use labs::bench::{bench, BenchOptions};
use labs::grade::run::RunEnv;
use labs::grade::{grade, GradeOptions};
use labs::mutants::run::MutantsOptions;
use labs::mutants::{catalog, Mutant};
use labs::stages::Selection;

#[derive(Parser)]
#[command(
    name = "labs",
    about = "Grade a tinykv-rs tree against the course's suites"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the suites, run each test in its own process, print the score table and write
    /// target/labs/results.json (Gradescope) and target/labs/junit.xml.
    ///
    /// Points: each stage's points are shared equally by its test functions, and a
    /// table-driven function's share by its cases. Exit status: 0 when the tree built and the
    /// tests ran (whatever the score, unless --require-full), 1 when the tree does not build
    /// or (with --require-full) some test failed, 2 when the grader itself failed.
    Grade {
        /// Stages to grade, comma-separated (1, 2a, 2aa, 2ab, 2ac, 2b, 2c, 3a, 3b, 3c, 4a,
        /// 4b, 4c, all).
        #[arg(long, default_value = "all")]
        stage: Selection,
        /// Tests run at once (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Wall-clock limit for one test, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Build the suites in the dev profile instead of release.
        #[arg(long)]
        debug: bool,
        /// The tree to grade (default: this workspace).
        #[arg(long)]
        workspace: Option<PathBuf>,
        /// Exit with status 1 unless every test passes (without it, a tree that builds
        /// exits 0 whatever its score).
        #[arg(long)]
        require_full: bool,
        /// Run the seeded (cluster and randomized) tests under this many seeds each; a test
        /// earns its points only if every seed passes. The per-test time limit grows with it.
        #[arg(long)]
        seeds: Option<u32>,
        /// Show backtraces in failures (tests run with RUST_BACKTRACE=0 otherwise, whatever
        /// the environment says, so a failure shows its message and replay command first).
        #[arg(long)]
        backtrace: bool,
        /// The instructor's tree: grade only the lab crates' src/ of the workspace, inside a
        /// copy of this tree (target/labs/pristine), and report every other file the
        /// workspace changed, added or removed.
        #[arg(long)]
        pristine: Option<PathBuf>,
    },
    /// Time the selected stages' suites as `cargo test -p labs --features <stages>` runs
    /// them (build excluded) and report the virtual time the simulated clusters covered.
    Bench {
        /// Stages to run, comma-separated (as for `grade`).
        #[arg(long, default_value = "2b")]
        stage: Selection,
        /// Test threads (default: the number of cores, as `cargo test`).
        #[arg(long)]
        threads: Option<usize>,
        /// Runs of the suite; the median wall time is reported.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// Build with the release profile instead of the dev profile `cargo test` uses.
        #[arg(long)]
        release: bool,
        /// A wall-time budget in seconds to compare with.
        #[arg(long)]
        budget: Option<u64>,
        /// The tree to measure (default: this workspace).
        #[arg(long)]
        workspace: Option<PathBuf>,
    },
    /// Apply each classic student bug of the catalog, one at a time in a scratch copy of the
    /// tree (target/labs/mutants, its own target dir), build, run its stage's tests until one
    /// fails, and report caught / missed / does not build. Exits with status 1 unless every
    /// entry run is caught; writes target/labs/mutants.json.
    Mutants {
        /// Print the catalog (id, stage, the bug) and exit.
        #[arg(long)]
        list: bool,
        /// Only entries of these stages, comma-separated (as for `grade`).
        #[arg(long)]
        stage: Option<Selection>,
        /// Only these entries, by id, comma-separated.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Keep the entries that change a file touched since this git revision ...
        #[arg(long)]
        touched: Option<String>,
        /// ... and (or, alone) this many entries picked by --seed.
        #[arg(long)]
        sample: Option<usize>,
        /// The seed that picks the sample (printed, so a sample can be rerun).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Mutants run at once, each in its own scratch copy (each needs its own first build).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Tests of one mutant's suite run at once (default: cores / jobs).
        #[arg(long)]
        threads: Option<usize>,
        /// Suite wall time, in seconds, allowed to catch one mutant.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Build with the release profile instead of the dev profile `cargo test` uses.
        #[arg(long)]
        release: bool,
        /// The tree to check (default: this workspace).
        #[arg(long)]
        workspace: Option<PathBuf>,
    },
    /// Write a student tree with the lab: regions of the --strip stages replaced by their
    /// stubs (and lab:needs regions of those stages removed), tidy the imports and dead code
    /// the stripping leaves, write .labs/manifest.json (hashes of the files students must not
    /// change) and the autograder kits; then check that it builds, is clippy-clean, passes its
    /// unit tests and doctests, and fails each stripped stage's suite. With --check instead:
    /// strip every stage alone and check it.
    Handout(labs::handout::HandoutArgs),
    /// Check the course guide (docs/src: every link, include, cited test, named item and file
    /// exists in a student's tree, Rust is included from real files and never from a lab
    /// region, translations keep the original's sections, every stage chapter links its
    /// students' files, every FAQ answer links code and a test), then build it with
    /// `mdbook build docs` when mdbook is installed.
    Doc {
        /// Open the built book in a browser.
        #[arg(long)]
        open: bool,
        /// The tree whose book to check (default: this workspace).
        #[arg(long)]
        workspace: Option<PathBuf>,
    },
}

fn default_workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// The catalog entries a `labs mutants` invocation names.
fn choose_mutants(
    workspace: &std::path::Path,
    stage: Option<&Selection>,
    only: &[String],
    touched: Option<&str>,
    sample: Option<usize>,
    seed: u64,
) -> Result<Vec<Mutant>, String> {
    let all = catalog::all();
    if let Some(unknown) = only.iter().find(|id| !all.iter().any(|m| &m.id == id)) {
        return Err(format!(
            "no catalog entry {unknown:?} (see `labs mutants --list`)"
        ));
    }
    let named: Vec<Mutant> = all
        .into_iter()
        .filter(|m| stage.is_none_or(|s| m.stage().is_some_and(|st| s.contains(st))))
        .filter(|m| only.is_empty() || only.iter().any(|id| id == m.id))
        .collect();
    if touched.is_none() && sample.is_none() {
        return Ok(named);
    }
    let mut keep: Vec<&str> = Vec::new();
    if let Some(rev) = touched {
        match labs::mutants::touched_files(workspace, rev) {
            Ok(files) => {
                keep.extend(
                    named
                        .iter()
                        .filter(|m| files.iter().any(|f| f == m.file))
                        .map(|m| m.id),
                );
                eprintln!(
                    "labs mutants: {} entries change files touched since {rev}",
                    keep.len()
                );
            }
            Err(e) => eprintln!("labs mutants: {e}; choosing by --sample only"),
        }
    }
    if let Some(n) = sample {
        eprintln!("labs mutants: a sample of {n} chosen by --seed {seed}");
        keep.extend(labs::mutants::sample(&named, n, seed).iter().map(|m| m.id));
    }
    Ok(named.into_iter().filter(|m| keep.contains(&m.id)).collect())
}

/// `labs doc`: the rot check, then mdbook if it is installed.
fn doc(root: &std::path::Path, open: bool) -> ExitCode {
    match labs::book::check(root) {
        Ok(problems) if problems.is_empty() => {
            println!(
                "labs doc: the book is sound (every link, include, test, item and file it \
                 names exists; chapters, FAQ and translations complete)"
            );
        }
        Ok(problems) => {
            problems.iter().for_each(|p| println!("{p}"));
            println!("labs doc: {} problem(s) in the book", problems.len());
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("labs doc: {e}");
            return ExitCode::from(2);
        }
    }
    let mut cmd = std::process::Command::new("mdbook");
    cmd.arg("build").arg(root.join("docs"));
    if open {
        cmd.arg("--open");
    }
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(_) => {
            println!(
                "labs doc: mdbook is not installed, so the book was not built \
                 (cargo install mdbook, then run this again)"
            );
            ExitCode::SUCCESS
        }
    }
}

fn main() -> ExitCode {
    let Cli { command } = Cli::parse();
    match command {
        Cmd::Handout(args) => labs::handout::main(args, default_workspace(), cores()),
        Cmd::Doc { open, workspace } => doc(&workspace.unwrap_or_else(default_workspace), open),
        Cmd::Grade {
            stage,
            jobs,
            timeout,
            debug,
            workspace,
            require_full,
            seeds,
            backtrace,
            pristine,
        } => {
            let workspace = workspace.unwrap_or_else(default_workspace);
            let seeds = seeds.map(|k| k.max(1));
            let opts = GradeOptions {
                out_dir: workspace.join("target").join("labs"),
                workspace,
                selection: stage,
                jobs: jobs.unwrap_or_else(cores),
                timeout: Duration::from_secs(timeout.max(1) * u64::from(seeds.unwrap_or(1))),
                release: !debug,
                env: RunEnv { backtrace, seeds },
                pristine,
            };
            match grade(&opts) {
                Ok(report) if report.build_failure.is_some() => ExitCode::from(1),
                Ok(report) if require_full && !report.full_marks() => ExitCode::from(1),
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("labs grade: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Bench {
            stage,
            threads,
            rounds,
            release,
            budget,
            workspace,
        } => {
            let opts = BenchOptions {
                workspace: workspace.unwrap_or_else(default_workspace),
                selection: stage,
                release,
                threads: threads.unwrap_or_else(cores),
                rounds: rounds.max(1),
                budget: budget.map(Duration::from_secs),
            };
            match bench(&opts) {
                Ok(report) => match report.print(&opts, &mut std::io::stdout().lock()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("labs bench: {e}");
                        ExitCode::from(2)
                    }
                },
                Err(e) => {
                    eprintln!("labs bench: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Mutants {
            list,
            stage,
            only,
            touched,
            sample,
            seed,
            jobs,
            threads,
            timeout,
            release,
            workspace,
        } => {
            let workspace = workspace.unwrap_or_else(default_workspace);
            let entries = match choose_mutants(
                &workspace,
                stage.as_ref(),
                &only,
                touched.as_deref(),
                sample,
                seed,
            ) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("labs mutants: {e}");
                    return ExitCode::from(2);
                }
            };
            if list {
                for m in &entries {
                    println!("{:<28} {:<4} {}", m.id, m.stage, m.bug);
                }
                return ExitCode::SUCCESS;
            }
            if entries.is_empty() {
                println!("labs mutants: no entries chosen");
                return ExitCode::SUCCESS;
            }
            let jobs = jobs.max(1);
            let opts = MutantsOptions {
                workspace: workspace.clone(),
                entries,
                jobs,
                threads: threads.unwrap_or_else(|| (cores() / jobs).max(1)),
                budget: Duration::from_secs(timeout.max(1)),
                release,
            };
            let report = match labs::mutants::run::run(&opts) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("labs mutants: {e}");
                    return ExitCode::from(2);
                }
            };
            let out_dir = workspace.join("target").join("labs");
            let written = std::fs::create_dir_all(&out_dir).and_then(|()| {
                std::fs::write(
                    out_dir.join("mutants.json"),
                    serde_json::to_string_pretty(&report.json()).unwrap_or_default(),
                )
            });
            if let Err(e) = written {
                eprintln!("labs mutants: writing mutants.json: {e}");
            }
            if let Err(e) = report.print(&mut std::io::stdout().lock()) {
                eprintln!("labs mutants: {e}");
                return ExitCode::from(2);
            }
            if report.all_caught() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}
