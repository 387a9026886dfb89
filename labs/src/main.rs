//! `labs`: the course's command line.
//!
//! `labs grade` builds the graded suites of a tree, runs every test in its own process and
//! prints the score table (see `labs grade --help`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
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
            let workspace = workspace.unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."))
            });
            let opts = GradeOptions {
                out_dir: workspace.join("target").join("labs"),
                workspace,
                selection: stage,
                jobs: jobs.unwrap_or_else(|| {
                    std::thread::available_parallelism()
                        .map(|n| n.get())
                        .unwrap_or(2)
                }),
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
    }
}
