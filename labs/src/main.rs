//! `labs`: the course's command line.
//!
//! `labs grade` builds the graded suites of a tree, runs every test in its own process and
//! prints the score table (see `labs grade --help`). `labs bench` times the selected stages'
//! suites as `cargo test` runs them and reports the simulator's virtual/wall ratio.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use labs::bench::{bench, BenchOptions};
use labs::grade::{grade, GradeOptions};
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
        /// Exit with status 1 unless every test passes.
        #[arg(long)]
        require_full: bool,
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

fn main() -> ExitCode {
    let Cli { command } = Cli::parse();
    match command {
        Cmd::Grade {
            stage,
            jobs,
            timeout,
            debug,
            workspace,
            require_full,
        } => {
            let workspace = workspace.unwrap_or_else(default_workspace);
            let opts = GradeOptions {
                out_dir: workspace.join("target").join("labs"),
                workspace,
                selection: stage,
                jobs: jobs.unwrap_or_else(cores),
                timeout: Duration::from_secs(timeout.max(1)),
                release: !debug,
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
    }
}
