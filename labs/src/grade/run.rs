//! Running one test in a child process under a time limit.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

/// How much of a test's output is kept (its head and its tail), so a test that prints
/// without end cannot exhaust the grader's memory.
const KEEP_BYTES: usize = 32 * 1024;

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The test ran and passed.
    Passed,
    /// The test ran and failed (an assertion or a panic).
    Failed,
    /// The test exceeded its time limit and was killed.
    TimedOut,
    /// The process died without a test verdict (a signal, an abort, an early exit).
    Crashed(String),
    /// The grader could not start the test.
    NotRun(String),
}

impl Status {
    /// Whether the test earns its points.
    pub fn passed(&self) -> bool {
        matches!(self, Status::Passed)
    }

    /// A one-word label for tables and progress lines.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Passed => "pass",
            Status::Failed => "FAIL",
            Status::TimedOut => "TIMEOUT",
            Status::Crashed(_) => "CRASH",
            Status::NotRun(_) => "NOT RUN",
        }
    }
}

/// The outcome of one test run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// Wall time of the process.
    pub duration: Duration,
    /// What the test printed (head and tail when long).
    pub output: String,
}

impl Outcome {
    /// The outcome of a test the grader never got to run.
    pub fn not_run() -> Self {
        Outcome {
            status: Status::NotRun("the grader stopped before this test".into()),
            duration: Duration::ZERO,
            output: String::new(),
        }
    }
}

/// How the grader runs each test's process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunEnv {
    /// Show backtraces (`RUST_BACKTRACE=1`); off by default, whatever the grader's own
    /// environment says, so a failure's report leads with its message, not a stack.
    pub backtrace: bool,
    /// Run the seeded tests under this many seeds (`LABS_SEEDS`); `None`: one fixed seed.
    pub seeds: Option<u32>,
}

/// Runs test `name` of `binary` alone in a child process, killing it after `timeout`.
///
/// The child's environment is the grader's with the variables that change what a test does
/// pinned: `RUST_BACKTRACE` (and `RUST_LIB_BACKTRACE`) from `env.backtrace`, `LABS_SEEDS`
/// from `env.seeds`, and `LABS_SEED` (a replay of one seed) removed: grading never runs one
/// student-chosen seed.
pub fn run_test(binary: &Path, name: &str, timeout: Duration, cwd: &Path, env: &RunEnv) -> Outcome {
    let mut cmd = Command::new(binary);
    // Output stays captured by libtest (and is shown for failures), so a test that prints
    // cannot split its own verdict line.
    cmd.args([name, "--exact", "--test-threads", "1"])
        .current_dir(cwd);
    let bt = if env.backtrace { "1" } else { "0" };
    cmd.env("RUST_BACKTRACE", bt).env("RUST_LIB_BACKTRACE", bt);
    cmd.env_remove("LABS_SEED").env_remove("LABS_SEEDS");
    if let Some(k) = env.seeds {
        cmd.env("LABS_SEEDS", k.to_string());
    }
    run_command(cmd, name, timeout)
}

/// Runs a libtest command for test `name` and classifies the result.
pub fn run_command(mut cmd: Command, name: &str, timeout: Duration) -> Outcome {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        // Its own process group, so a timeout also stops whatever the test spawned.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                status: Status::NotRun(format!("cannot start the test binary: {e}")),
                duration: Duration::ZERO,
                output: String::new(),
            }
        }
    };
    let captured = Arc::new(Mutex::new(Captured::default()));
    let (done_tx, done_rx) = mpsc::channel();
    let mut pipes: Vec<Box<dyn Read + Send>> = Vec::new();
    if let Some(out) = child.stdout.take() {
        pipes.push(Box::new(out));
    }
    if let Some(err) = child.stderr.take() {
        pipes.push(Box::new(err));
    }
    let readers = pipes.len();
    for pipe in pipes {
        drain(pipe, Arc::clone(&captured), done_tx.clone());
    }
    let exit = wait(&mut child, timeout);
    let duration = started.elapsed();
    // A grandchild may hold the pipes open; give the readers a moment, then take what is there.
    for _ in 0..readers {
        if done_rx.recv_timeout(Duration::from_secs(2)).is_err() {
            break;
        }
    }
    let output = captured.lock().map(|c| c.text()).unwrap_or_default();
    let status = match exit {
        None => Status::TimedOut,
        Some(Err(e)) => Status::Crashed(format!("waiting for the test failed: {e}")),
        Some(Ok(code)) => classify(code, &output, name),
    };
    Outcome {
        status,
        duration,
        output,
    }
}

/// Waits up to `timeout`; `None` if the child had to be killed.
fn wait(child: &mut Child, timeout: Duration) -> Option<std::io::Result<std::process::ExitStatus>> {
    match child.wait_timeout(timeout) {
        Ok(Some(status)) => Some(Ok(status)),
        Ok(None) => {
            kill_group(child);
            None
        }
        Err(e) => {
            kill_group(child);
            Some(Err(e))
        }
    }
}

fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A pass needs a zero exit, libtest's line announcing this very test, and its summary of
/// exactly one passed test, so a process that exits early with status 0 does not count.
fn classify(code: std::process::ExitStatus, output: &str, name: &str) -> Status {
    let announced = format!("test {name} ... ");
    let ran_this = output.lines().any(|l| l.starts_with(&announced));
    let passed_one = output.contains("test result: ok. 1 passed; 0 failed");
    let verdict_failed = output.contains(&format!("test {name} ... FAILED"));
    if code.success() && ran_this && passed_one {
        Status::Passed
    } else if verdict_failed || code.code() == Some(101) {
        Status::Failed
    } else {
        Status::Crashed(describe_exit(code))
    }
}

fn describe_exit(code: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = code.signal() {
            return format!("killed by signal {sig}");
        }
    }
    match code.code() {
        Some(c) => format!("exited with status {c} without a test verdict"),
        None => "exited without a status".to_owned(),
    }
}

/// A test's output as far as it is kept: the first and the last [`KEEP_BYTES`].
#[derive(Default)]
struct Captured {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: usize,
}

impl Captured {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.head.len() < KEEP_BYTES {
                self.head.push(b);
            } else {
                self.tail.push_back(b);
                if self.tail.len() > KEEP_BYTES {
                    self.tail.pop_front();
                    self.dropped += 1;
                }
            }
        }
    }

    fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            text.push_str(&format!(
                "\n[... {} bytes of output omitted ...]\n",
                self.dropped
            ));
        }
        let (a, b) = self.tail.as_slices();
        text.push_str(&String::from_utf8_lossy(&[a, b].concat()));
        text
    }
}

/// Reads a pipe to its end on a thread into `captured`, then signals `done`.
fn drain(mut pipe: Box<dyn Read + Send>, captured: Arc<Mutex<Captured>>, done: mpsc::Sender<()>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => match captured.lock() {
                    Ok(mut c) => c.push(&buf[..n]),
                    Err(_) => break,
                },
            }
        }
        let _ = done.send(());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn a_verdict_line_and_zero_exit_is_a_pass() {
        let out = run_command(
            sh("echo 'test m::t_1 ... ok'; echo 'test result: ok. 1 passed; 0 failed'"),
            "m::t_1",
            Duration::from_secs(10),
        );
        assert_eq!(out.status, Status::Passed);
        // A test that prints on its verdict line still passes.
        let out = run_command(
            sh("echo 'test m::t_1 ... step 3/3'; echo ok; echo 'test result: ok. 1 passed; 0 failed'"),
            "m::t_1",
            Duration::from_secs(10),
        );
        assert_eq!(out.status, Status::Passed);
        // Without libtest's summary it is not a pass.
        let out = run_command(
            sh("echo 'test m::t_1 ... ok'"),
            "m::t_1",
            Duration::from_secs(10),
        );
        assert!(matches!(out.status, Status::Crashed(_)), "{:?}", out.status);
    }

    #[test]
    fn an_early_exit_zero_is_not_a_pass() {
        let out = run_command(sh("exit 0"), "m::t_1", Duration::from_secs(10));
        assert!(matches!(out.status, Status::Crashed(_)), "{:?}", out.status);
        // A verdict for another test does not count either.
        let out = run_command(
            sh("echo 'test m::t_10 ... ok'; echo 'test result: ok. 1 passed; 0 failed'"),
            "m::t_1",
            Duration::from_secs(10),
        );
        assert!(matches!(out.status, Status::Crashed(_)), "{:?}", out.status);
    }

    #[test]
    fn a_failed_verdict_is_a_failure() {
        let out = run_command(
            sh("echo 'test m::t_1 ... FAILED'; exit 101"),
            "m::t_1",
            Duration::from_secs(10),
        );
        assert_eq!(out.status, Status::Failed);
        assert!(out.output.contains("FAILED"));
    }

    #[test]
    fn a_signal_is_a_crash() {
        let out = run_command(sh("kill -9 $$"), "m::t_1", Duration::from_secs(10));
        assert!(
            matches!(&out.status, Status::Crashed(why) if why.contains("signal 9")),
            "{:?}",
            out.status
        );
    }

    /// The limit is real time by nature (it guards the grader against hangs), so this test
    /// spends the limit, a fraction of a second, in real time. The hanging child also leaves
    /// a grandchild holding the output pipe, which must not hang the grader either.
    #[test]
    fn a_hang_is_killed_at_the_limit() {
        let started = Instant::now();
        let out = run_command(
            sh("echo started; sleep 30 & sleep 30"),
            "m::t_1",
            Duration::from_millis(300),
        );
        assert_eq!(out.status, Status::TimedOut);
        assert!(out.output.contains("started"));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn endless_output_is_bounded() {
        let out = run_command(
            sh("echo 'test m::t_1 ... ok'; yes 0123456789 | head -c 1000000; echo; echo 'test result: ok. 1 passed; 0 failed'"),
            "m::t_1",
            Duration::from_secs(20),
        );
        assert_eq!(out.status, Status::Passed, "the verdict at the end is kept");
        assert!(out.output.len() < 3 * KEEP_BYTES);
        assert!(out.output.contains("bytes of output omitted"));
    }
}
