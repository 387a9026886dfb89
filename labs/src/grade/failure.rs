//! What a failing test's report leads with: its panic message (the assertion and, for cluster
//! tests, the story of the run), the seed that replays it, and the command to run it alone.
//!
//! libtest prints a failed test's captured output, then the panic (`thread '…' panicked at
//! file:line:col:` and the message), then hints about backtraces. The message is cut out of
//! that, so that neither a long captured output nor a backtrace hides it.

use crate::stages::Stage;

/// The longest message kept, in lines (a failure story is a few dozen lines).
pub const MAX_MESSAGE_LINES: usize = 80;

/// The lead of a failure's report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailureSummary {
    /// Where the test panicked (`file:line:col`), if it did.
    pub location: Option<String>,
    /// The panic message, if one was found.
    pub message: Option<String>,
    /// The seed named by a `replay with LABS_SEED=<n>` line.
    pub seed: Option<u64>,
    /// The command that runs this test alone (with its seed, if any).
    pub replay: String,
}

impl FailureSummary {
    /// Reads the summary of test `name` (of `stage`) from its output.
    pub fn from_output(output: &str, name: &str, stage: Stage) -> FailureSummary {
        let (location, message) = panic_message(output);
        let seed = replay_seed(output);
        let mut replay = String::new();
        if let Some(seed) = seed {
            replay.push_str(&format!("LABS_SEED={seed} "));
        }
        replay.push_str(&format!(
            "cargo test -p labs --features {} --test suite -- --exact {name}",
            stage.name
        ));
        FailureSummary {
            location,
            message,
            seed,
            replay,
        }
    }

    /// The summary as text: the message (or a note that there is none), where, and the
    /// replay command.
    pub fn render(&self) -> String {
        let mut out = String::new();
        match &self.message {
            Some(m) => out.push_str(m),
            None => out.push_str("(no panic message in the output)"),
        }
        out.push('\n');
        if let Some(loc) = &self.location {
            out.push_str(&format!("  at {loc}\n"));
        }
        out.push_str(&format!("replay: {}\n", self.replay));
        out
    }

    /// The message's first line, for one-line contexts (a JUnit failure's attribute).
    pub fn headline(&self) -> &str {
        self.message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or("")
    }
}

/// The first panic's location and message.
fn panic_message(output: &str) -> (Option<String>, Option<String>) {
    let lines: Vec<&str> = output.lines().collect();
    let Some(start) = lines.iter().position(|l| l.contains(" panicked at ")) else {
        return (None, None);
    };
    let header = lines[start];
    let after = &header[header.find(" panicked at ").map_or(0, |i| i + 13)..];
    // `file:line:col:` then, in older formats, `'message', file:line:col` on the same line.
    let (location, inline) = match after.strip_suffix(':') {
        Some(loc) => (Some(loc.to_owned()), None),
        None => (None, Some(after.to_owned())),
    };
    let mut message: Vec<&str> = Vec::new();
    for line in &lines[start + 1..] {
        if is_trailer(line) {
            break;
        }
        message.push(line);
    }
    while message.last().is_some_and(|l| l.trim().is_empty()) {
        message.pop();
    }
    let mut text = inline.unwrap_or_default();
    if message.len() > MAX_MESSAGE_LINES {
        let dropped = message.len() - MAX_MESSAGE_LINES;
        message.truncate(MAX_MESSAGE_LINES);
        message.push("");
        let note = format!("[... {dropped} more lines of the message ...]");
        text.push_str(&message.join("\n"));
        text.push_str(&note);
    } else {
        if !text.is_empty() && !message.is_empty() {
            text.push('\n');
        }
        text.push_str(&message.join("\n"));
    }
    let text = if text.trim().is_empty() {
        None
    } else {
        Some(text)
    };
    (location, text)
}

/// Lines libtest or the panic hook print after a panic message.
fn is_trailer(line: &str) -> bool {
    line.starts_with("note: run with `RUST_BACKTRACE")
        || line.starts_with("stack backtrace:")
        || line.starts_with("note: Some details are omitted")
        || line == "failures:"
        || line.starts_with("test result: ")
        || (line.starts_with("---- ") && line.ends_with(" ----"))
}

/// The seed of the last `replay with LABS_SEED=<n>` in the output.
fn replay_seed(output: &str) -> Option<u64> {
    const MARK: &str = "replay with LABS_SEED=";
    let at = output.rfind(MARK)? + MARK.len();
    let digits: String = output[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str) -> Stage {
        Stage::by_name(name).unwrap_or_else(|| panic!("stage {name}"))
    }

    const CLUSTER_FAILURE: &str = "\nrunning 1 test\ntest cluster_2b::basic_2b ... FAILED\n\nfailures:\n\n---- cluster_2b::basic_2b stdout ----\nsome captured line\n\nthread 'cluster_2b::basic_2b' (123) panicked at harness/src/cluster/mod.rs:662:9:\nclient 0 lost an append\n  at virtual time 3.2s after 900 events\n  last events:\n    3.1s #899 tick\nbasic_2b failed: replay with LABS_SEED=4242\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n\nfailures:\n    cluster_2b::basic_2b\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored\n";

    #[test]
    fn a_cluster_failure_leads_with_its_story_and_seed() {
        let s = FailureSummary::from_output(CLUSTER_FAILURE, "cluster_2b::basic_2b", stage("2b"));
        assert_eq!(
            s.location.as_deref(),
            Some("harness/src/cluster/mod.rs:662:9")
        );
        let m = s.message.as_deref().unwrap_or("");
        assert!(m.starts_with("client 0 lost an append\n"), "{m}");
        assert!(m.contains("3.1s #899 tick"), "{m}");
        assert!(m.ends_with("replay with LABS_SEED=4242"), "{m}");
        assert!(!m.contains("RUST_BACKTRACE"), "{m}");
        assert_eq!(s.seed, Some(4242));
        assert_eq!(
            s.replay,
            "LABS_SEED=4242 cargo test -p labs --features 2b --test suite -- --exact cluster_2b::basic_2b"
        );
        assert_eq!(s.headline(), "client 0 lost an append");
        let text = s.render();
        assert!(text.starts_with("client 0 lost an append"), "{text}");
        assert!(text.contains("replay: LABS_SEED=4242 cargo test"), "{text}");
    }

    #[test]
    fn a_backtrace_does_not_hide_the_message() {
        let out = "thread 'raft_2aa::x_2aa' panicked at raft/src/raft.rs:10:5:\nassertion `left == right` failed\n  left: 1\n right: 2\nstack backtrace:\n   0: std::panicking::begin_panic\n   1: raft::raft::Raft::step\n";
        let s = FailureSummary::from_output(out, "raft_2aa::x_2aa", stage("2aa"));
        assert_eq!(
            s.message.as_deref(),
            Some("assertion `left == right` failed\n  left: 1\n right: 2")
        );
        assert_eq!(s.seed, None);
        assert_eq!(
            s.replay,
            "cargo test -p labs --features 2aa --test suite -- --exact raft_2aa::x_2aa"
        );
    }

    #[test]
    fn no_panic_means_no_message() {
        let s = FailureSummary::from_output("killed\n", "t_1", stage("1"));
        assert_eq!(s.message, None);
        assert!(s.render().starts_with("(no panic message in the output)"));
    }

    #[test]
    fn a_huge_message_is_cut_with_a_note() {
        let mut out = String::from("thread 't' panicked at a.rs:1:1:\n");
        for i in 0..500 {
            out.push_str(&format!("line {i}\n"));
        }
        let s = FailureSummary::from_output(&out, "t_1", stage("1"));
        let m = s.message.unwrap_or_default();
        assert!(m.starts_with("line 0\n"), "{m}");
        assert!(m.contains("[... 420 more lines of the message ...]"), "{m}");
        assert!(m.lines().count() <= MAX_MESSAGE_LINES + 2);
    }
}
