//! Autograder kits written into a handout: a GitHub Classroom workflow and a Gradescope
//! `setup.sh` + `run_autograder`.
//!
//! Both grade with `labs grade` on the instructor's tree: only the `src/` directories of the
//! lab crates come from the submission, so an edited suite, harness or grader is never used
//! (a submission that changes a test gains nothing). Points come from the stages table
//! ([`crate::stages::STAGES`]).
//!
//! - **GitHub Classroom** (`.github/workflows/classroom.yml`): one autograding step per stage,
//!   `labs grade --stage S --require-full`, worth the stage's points. The command grader is
//!   pass/fail per step, so a stage scores all or nothing there; Gradescope gets per-test
//!   points.
//! - **Gradescope** (`autograder/setup.sh`, `autograder/run_autograder`): the autograder zip
//!   is the handout itself (with its dependencies vendored, see [`vendor`]). `setup.sh`
//!   installs Rust if the image has none and builds the grader and every dependency offline
//!   once; `run_autograder` copies the submission's lab sources in, grades, and writes
//!   `results/results.json`. Both honour `AUTOGRADER_ROOT` (default `/autograder`), so they
//!   can be tried under a temporary directory.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::stages::Stage;

/// Minutes one Classroom step may run (build included).
const CLASSROOM_STEP_MINUTES: u32 = 30;

/// The toolchain `setup.sh` installs when the image has no cargo (the workspace's
/// `rust-version`).
const TOOLCHAIN: &str = "1.90";

/// The GitHub Classroom workflow grading `stages`.
pub fn classroom_workflow(stages: &[Stage]) -> String {
    let mut y = String::from(
        "# GitHub Classroom autograding for tinykv-rs, written by `labs handout`.\n\
         # One step per stage; a step earns the stage's points when every test of the stage passes.\n\
         name: Autograding Tests\n\
         'on':\n  - push\n  - workflow_dispatch\n  - repository_dispatch\n\
         permissions:\n  checks: write\n  actions: read\n  contents: read\n\
         jobs:\n  run-autograding-tests:\n    runs-on: ubuntu-latest\n    if: github.actor != 'github-classroom[bot]'\n    steps:\n\
         \x20     - name: Checkout code\n        uses: actions/checkout@v4\n",
    );
    let mut ids = Vec::new();
    for s in stages {
        let id = format!("stage-{}", s.name);
        y.push_str(&format!(
            "      - name: \"stage {name} ({title})\"\n        id: {id}\n        uses: classroom-resources/autograding-command-grader@v1\n        with:\n          test-name: stage {name}\n          setup-command: ''\n          command: cargo run --release -q -p labs -- grade --stage {name} --require-full\n          timeout: {CLASSROOM_STEP_MINUTES}\n          max-score: {points}\n",
            name = s.name,
            title = s.title,
            points = s.points,
        ));
        ids.push(id);
    }
    y.push_str(
        "      - name: Autograding Reporter\n        uses: classroom-resources/autograding-grading-reporter@v1\n        env:\n",
    );
    for id in &ids {
        y.push_str(&format!(
            "          {}_RESULTS: \"${{{{steps.{id}.outputs.result}}}}\"\n",
            id.to_uppercase()
        ));
    }
    y.push_str(&format!(
        "        with:\n          runners: {}\n",
        ids.join(",")
    ));
    y
}

/// Gradescope's `setup.sh`.
pub fn gradescope_setup() -> String {
    format!(
        r#"#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image. $AUTOGRADER_ROOT/source holds
# the autograder zip: the handout, with its dependencies vendored.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SRC="$ROOT/source"
if ! command -v cargo >/dev/null 2>&1; then
  if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --default-toolchain {TOOLCHAIN}
  . "$HOME/.cargo/env"
fi
cd "$SRC"
# The grader, and every dependency of the suites, built once: a submission then compiles
# only its own crates.
cargo build --release --offline -p labs
cargo test --release --offline -p labs --features all --no-run
"#
    )
}

/// Gradescope's `run_autograder` grading `stages` (comma-separated stage names) with the
/// submission's `src/` of each of `lab_crates`.
pub fn gradescope_run(stages: &str, lab_crates: &[&str]) -> String {
    format!(
        r#"#!/usr/bin/env bash
# Gradescope runs this for every submission. Only the src/ directories of the lab crates come
# from the submission; the suites, the harness and the grader stay the instructor's.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SRC="$ROOT/source"
SUB="$ROOT/submission"
STAGES="${{LABS_STAGES:-{stages}}}"
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
mkdir -p "$ROOT/results"
for crate in {crates}; do
  if [ -d "$SUB/$crate/src" ]; then
    rm -rf "$SRC/$crate/src"
    cp -R "$SUB/$crate/src" "$SRC/$crate/src"
  fi
done
cd "$SRC"
rm -f target/labs/results.json
cargo run --release --offline -q -p labs -- grade --stage "$STAGES"
if [ -f target/labs/results.json ]; then
  cp target/labs/results.json "$ROOT/results/results.json"
else
  printf '%s\n' '{{"score": 0, "output": "The grader did not run; see the log above."}}' \
    > "$ROOT/results/results.json"
fi
"#,
        crates = lab_crates.join(" "),
    )
}

/// Writes the kits for `stages` into the handout at `out`; returns the files written.
pub fn write_kits(out: &Path, stages: &[Stage], lab_crates: &[&str]) -> io::Result<Vec<PathBuf>> {
    let names: Vec<&str> = stages.iter().map(|s| s.name).collect();
    let files = [
        (
            out.join(".github/workflows/classroom.yml"),
            classroom_workflow(stages),
            false,
        ),
        (out.join("autograder/setup.sh"), gradescope_setup(), true),
        (
            out.join("autograder/run_autograder"),
            gradescope_run(&names.join(","), lab_crates),
            true,
        ),
    ];
    let mut written = Vec::new();
    for (path, text, executable) in files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text)?;
        if executable {
            make_executable(&path)?;
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(unix)]
fn make_executable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(path)?.permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(path, perm)
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> io::Result<()> {
    Ok(())
}

/// Vendors the handout's dependencies (`cargo vendor`) into `out/vendor` and points cargo at
/// them (`out/.cargo/config.toml`), so the autograder builds offline.
pub fn vendor(out: &Path) -> io::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let result = Command::new(cargo)
        .current_dir(out)
        .args(["vendor", "--locked", "vendor"])
        .output()?;
    if !result.status.success() {
        return Err(io::Error::other(format!(
            "cargo vendor failed: {}",
            String::from_utf8_lossy(&result.stderr)
        )));
    }
    std::fs::create_dir_all(out.join(".cargo"))?;
    // `cargo vendor` prints the source replacement to put in the config.
    std::fs::write(out.join(".cargo/config.toml"), result.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages(names: &[&str]) -> Vec<Stage> {
        names
            .iter()
            .map(|n| Stage::by_name(n).unwrap_or_else(|| panic!("stage {n}")))
            .collect()
    }

    #[test]
    fn the_classroom_workflow_has_a_step_per_stage_worth_its_points() {
        let y = classroom_workflow(&stages(&["2aa", "3c"]));
        assert!(y.contains("id: stage-2aa"), "{y}");
        assert!(
            y.contains(
                "command: cargo run --release -q -p labs -- grade --stage 3c --require-full"
            ),
            "{y}"
        );
        assert!(y.contains("max-score: 10\n"), "{y}");
        assert!(y.contains("max-score: 15\n"), "{y}");
        assert!(
            y.contains("STAGE-3C_RESULTS: \"${{steps.stage-3c.outputs.result}}\""),
            "{y}"
        );
        assert!(y.contains("runners: stage-2aa,stage-3c\n"), "{y}");
        assert!(
            y.contains("      - name: \"stage 2aa (raft: leader election)\"\n"),
            "{y}"
        );
    }

    /// `run_autograder` under a fake `/autograder` and a fake `cargo`: only the lab crates'
    /// sources of the submission reach the tree (an edited suite does not), the grader is
    /// asked for the configured stages, and its results.json lands in `results/`.
    #[cfg(unix)]
    #[test]
    fn run_autograder_grades_the_submissions_lab_sources_only() {
        let root = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let r = root.path();
        let write = |p: &str, text: &str| {
            let path = r.join(p);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        };
        write("source/raft/src/lib.rs", "// stub\n");
        write(
            "source/labs/tests/suite/main.rs",
            "// the instructor's suite\n",
        );
        write("submission/raft/src/lib.rs", "// the student's raft\n");
        write(
            "submission/labs/tests/suite/main.rs",
            "// a suite that always passes\n",
        );
        // A fake cargo: records its arguments, writes a results.json.
        write(
            "bin/cargo",
            "#!/bin/sh\necho \"$@\" > \"$AUTOGRADER_ROOT/cargo-args\"\nmkdir -p target/labs\necho '{\"score\": 7}' > target/labs/results.json\n",
        );
        make_executable(&r.join("bin/cargo")).unwrap_or_else(|e| panic!("{e}"));
        let files = write_kits(
            &r.join("source"),
            &stages(&["2aa", "2b"]),
            &["raft", "raftstore"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(files.len(), 3);
        let path = format!(
            "{}:{}",
            r.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let status = Command::new("bash")
            .arg(r.join("source/autograder/run_autograder"))
            .env("AUTOGRADER_ROOT", r)
            .env("PATH", path)
            .env("HOME", r)
            .status()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success());
        let read = |p: &str| std::fs::read_to_string(r.join(p)).unwrap_or_default();
        assert_eq!(read("source/raft/src/lib.rs"), "// the student's raft\n");
        assert_eq!(
            read("source/labs/tests/suite/main.rs"),
            "// the instructor's suite\n"
        );
        assert_eq!(
            read("cargo-args").trim(),
            "run --release --offline -q -p labs -- grade --stage 2aa,2b"
        );
        assert_eq!(read("results/results.json").trim(), "{\"score\": 7}");
        let setup = read("source/autograder/setup.sh");
        assert!(
            setup.contains("cargo build --release --offline -p labs"),
            "{setup}"
        );
    }
}
