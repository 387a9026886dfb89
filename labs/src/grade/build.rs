//! Building the suite binary and listing its tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::stages::Selection;

/// The compiler's complaint when the tree does not build.
#[derive(Debug, Clone)]
pub struct BuildFailure {
    /// The tail of cargo's output.
    pub output: String,
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Builds the `suite` test binary with the selection's features and returns its path, or
/// the build failure (the student's code does not compile). Cargo's progress goes to stderr
/// as it happens.
pub fn build_suite(
    workspace: &Path,
    selection: &Selection,
    release: bool,
) -> std::io::Result<Result<PathBuf, BuildFailure>> {
    SuiteBuild {
        workspace,
        features: selection.features(),
        release,
        target_dir: None,
        echo: true,
    }
    .run()
}

/// One build of the `suite` test binary.
#[derive(Debug, Clone)]
pub struct SuiteBuild<'a> {
    /// The workspace root.
    pub workspace: &'a Path,
    /// The cargo features of `labs` (comma-separated stage names).
    pub features: String,
    /// Build with the release profile.
    pub release: bool,
    /// A `CARGO_TARGET_DIR` of its own (default: cargo's).
    pub target_dir: Option<&'a Path>,
    /// Relay cargo's output to stderr as it happens (otherwise only its tail is kept).
    pub echo: bool,
}

impl SuiteBuild<'_> {
    /// Builds; returns the binary's path, or the build failure with the tail of cargo's output.
    pub fn run(&self) -> std::io::Result<Result<PathBuf, BuildFailure>> {
        let mut cmd = Command::new(cargo());
        cmd.current_dir(self.workspace)
            .args(["test", "-p", "labs", "--test", "suite", "--no-run"])
            .args(["--message-format", "json-render-diagnostics"])
            .args(["--features", &self.features])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.release {
            cmd.arg("--release");
        }
        if let Some(dir) = self.target_dir {
            cmd.env("CARGO_TARGET_DIR", dir);
        }
        let echo = self.echo;
        let mut child = cmd.spawn()?;
        let stderr = child.stderr.take().map(BufReader::new);
        // Relay cargo's human output while keeping its tail for the report.
        let relay = std::thread::spawn(move || {
            let mut tail = std::collections::VecDeque::new();
            if let Some(stderr) = stderr {
                for line in stderr.lines().map_while(Result::ok) {
                    if echo {
                        eprintln!("{line}");
                    }
                    tail.push_back(line);
                    if tail.len() > 200 {
                        tail.pop_front();
                    }
                }
            }
            tail.into_iter().collect::<Vec<_>>().join("\n")
        });
        let mut executable = None;
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(path) = suite_executable(&line) {
                    executable = Some(path);
                }
            }
        }
        let status = child.wait()?;
        let tail = relay.join().unwrap_or_default();
        match executable {
            Some(path) if status.success() => Ok(Ok(path)),
            _ => Ok(Err(BuildFailure { output: tail })),
        }
    }
}

/// The executable of the `suite` test target, if `line` is cargo's artifact message for it.
fn suite_executable(line: &str) -> Option<PathBuf> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let target = msg.get("target")?;
    if target.get("name")?.as_str()? != "suite" {
        return None;
    }
    msg.get("executable")?.as_str().map(PathBuf::from)
}

/// The names of every test in the suite binary.
pub fn list_tests(binary: &Path) -> std::io::Result<Vec<String>> {
    let out = Command::new(binary)
        .args(["--list", "--format", "terse"])
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{} --list failed with {}",
            binary.display(),
            out.status
        )));
    }
    Ok(parse_test_list(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses libtest's terse list (`name: test` lines; benches and other lines are skipped).
pub fn parse_test_list(list: &str) -> Vec<String> {
    list.lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_suite_artifact() {
        let line = r#"{"reason":"compiler-artifact","target":{"name":"suite","kind":["test"]},"executable":"/t/debug/deps/suite-abc"}"#;
        assert_eq!(
            suite_executable(line),
            Some(PathBuf::from("/t/debug/deps/suite-abc"))
        );
        let other = r#"{"reason":"compiler-artifact","target":{"name":"engine","kind":["lib"]},"executable":null}"#;
        assert_eq!(suite_executable(other), None);
        assert_eq!(suite_executable("not json"), None);
        assert_eq!(
            suite_executable(r#"{"reason":"build-finished","success":true}"#),
            None
        );
    }

    #[test]
    fn parses_terse_lists() {
        let list =
            "stage_1::raw_get_1: test\nraft_2aa::leader_election_2aa: test\nsome_bench: bench\n\n";
        assert_eq!(
            parse_test_list(list),
            vec![
                "stage_1::raw_get_1".to_owned(),
                "raft_2aa::leader_election_2aa".to_owned()
            ]
        );
    }
}
