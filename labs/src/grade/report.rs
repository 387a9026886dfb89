//! Scores and reports: the printed table, `results.json` (Gradescope's schema) and
//! `junit.xml`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::build::BuildFailure;
use super::failure::FailureSummary;
use super::run::{Outcome, Status};
use crate::stages::{Selection, Stage};

/// One test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// Full libtest name (`stage_1::raw_get_1`).
    pub name: String,
    /// The stage it belongs to.
    pub stage: Stage,
    /// How it ran.
    pub outcome: Outcome,
}

/// One stage's score.
#[derive(Debug, Clone, PartialEq)]
pub struct StageScore {
    /// The stage.
    pub stage: Stage,
    /// Tests that passed.
    pub passed: usize,
    /// Tests the stage has in this tree.
    pub total: usize,
    /// Test functions the stage has (table-driven cases of one function count once).
    pub functions: usize,
    /// Points earned: the stage's points shared equally among its test functions, and a
    /// function's share equally among its cases.
    pub points: f64,
}

impl StageScore {
    /// Points available: the stage's points if it has tests, else none (the suite is not
    /// written yet, so it cannot be graded).
    pub fn max_points(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            f64::from(self.stage.points)
        }
    }
}

/// The test function a libtest name belongs to: the name without the trailing `case_…`
/// segments that rstest adds for table-driven cases (`raft_2aa::vote_2aa::case_3` →
/// `raft_2aa::vote_2aa`).
pub fn test_function(name: &str) -> &str {
    let mut f = name;
    while let Some((head, last)) = f.rsplit_once("::") {
        if last.starts_with("case_") {
            f = head;
        } else {
            break;
        }
    }
    f
}

/// Each result's points if it passes: its stage's points shared equally among the stage's
/// test functions, a function's share equally among its cases. Returns the weights (aligned
/// with `results`) and each stage's count of functions.
fn weights(results: &[TestResult]) -> Vec<f64> {
    use std::collections::BTreeMap;
    let mut cases: BTreeMap<&str, usize> = BTreeMap::new();
    let mut functions: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for r in results {
        let f = test_function(&r.name);
        *cases.entry(f).or_default() += 1;
        functions.entry(r.stage.name).or_default().insert(f);
    }
    results
        .iter()
        .map(|r| {
            let f = test_function(&r.name);
            let n_functions = functions.get(r.stage.name).map_or(1, |s| s.len().max(1));
            let n_cases = cases.get(f).copied().unwrap_or(1).max(1);
            f64::from(r.stage.points) / n_functions as f64 / n_cases as f64
        })
        .collect()
}

/// The whole grading result.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per-stage scores in course order.
    pub stages: Vec<StageScore>,
    /// Every test's result.
    pub results: Vec<TestResult>,
    /// What each result is worth when it passes (aligned with `results`).
    pub weights: Vec<f64>,
    /// Wall time of the grading, build included.
    pub elapsed: Duration,
    /// Set when the tree did not compile (every stage then scores zero).
    pub build_failure: Option<BuildFailure>,
    /// With `--pristine`: the protected files the submission changed, added or removed
    /// (graded with the instructor's copies instead).
    pub tampered: Vec<String>,
}

impl Report {
    /// Scores `results` for the selected stages.
    pub fn new(selection: &Selection, results: Vec<TestResult>, elapsed: Duration) -> Self {
        let weights = weights(&results);
        let stages = selection
            .stages()
            .iter()
            .map(|&stage| {
                let of_stage: Vec<(&TestResult, f64)> = results
                    .iter()
                    .zip(weights.iter().copied())
                    .filter(|(r, _)| r.stage == stage)
                    .collect();
                let functions = of_stage
                    .iter()
                    .map(|(r, _)| test_function(&r.name))
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                StageScore {
                    stage,
                    passed: of_stage
                        .iter()
                        .filter(|(r, _)| r.outcome.status.passed())
                        .count(),
                    total: of_stage.len(),
                    functions,
                    // `+ 0.0`: a float sum of nothing is -0.0, which would print as "-0.0".
                    points: of_stage
                        .iter()
                        .filter(|(r, _)| r.outcome.status.passed())
                        .map(|(_, w)| w)
                        .sum::<f64>()
                        + 0.0,
                }
            })
            .collect();
        Report {
            stages,
            results,
            weights,
            elapsed,
            build_failure: None,
            tampered: Vec::new(),
        }
    }

    /// The report of a tree that does not compile: every selected stage scores zero.
    pub fn build_failed(selection: &Selection, failure: BuildFailure, elapsed: Duration) -> Self {
        let mut report = Report::new(selection, Vec::new(), elapsed);
        report.build_failure = Some(failure);
        report
    }

    /// Points earned over every graded stage.
    pub fn score(&self) -> f64 {
        self.stages.iter().map(|s| s.points).sum::<f64>() + 0.0
    }

    /// Points available over every stage that has tests.
    pub fn max_score(&self) -> f64 {
        self.stages.iter().map(StageScore::max_points).sum()
    }

    /// Whether every test of every graded stage passed (and the tree built).
    pub fn full_marks(&self) -> bool {
        self.build_failure.is_none() && self.stages.iter().all(|s| s.passed == s.total)
    }

    /// (points earned, points available) of result `i`.
    fn points_of(&self, i: usize) -> (f64, f64) {
        let each = self.weights.get(i).copied().unwrap_or(0.0);
        let passed = self
            .results
            .get(i)
            .is_some_and(|r| r.outcome.status.passed());
        (if passed { each } else { 0.0 }, each)
    }

    /// What a failed result's report says: how it ended, then its summary (message, replay
    /// command), then the last lines of its output when the message was not found.
    fn failure_text(r: &TestResult, tail_lines: usize) -> String {
        let mut text = String::new();
        match &r.outcome.status {
            Status::Crashed(why) | Status::NotRun(why) => text.push_str(&format!("{why}\n")),
            Status::TimedOut => text.push_str(&format!(
                "killed after {:.1} s (the per-test limit)\n",
                r.outcome.duration.as_secs_f64()
            )),
            _ => {}
        }
        let summary = FailureSummary::from_output(&r.outcome.output, &r.name, r.stage);
        text.push_str(&summary.render());
        if summary.message.is_none() || !matches!(r.outcome.status, Status::Failed) {
            let lines: Vec<&str> = r.outcome.output.lines().collect();
            text.push_str("last lines of its output:\n");
            for line in &lines[lines.len().saturating_sub(tail_lines)..] {
                text.push_str(&format!("  | {line}\n"));
            }
        }
        text
    }

    /// Prints failures (with the tail of their output) and the score table.
    pub fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        if let Some(f) = &self.build_failure {
            writeln!(
                out,
                "\nThe tree does not build, so no test could run:\n{}",
                f.output
            )?;
        }
        if !self.tampered.is_empty() {
            writeln!(
                out,
                "\nThese files may not be changed; they were graded with the instructor's copies:"
            )?;
            for t in &self.tampered {
                writeln!(out, "    {t}")?;
            }
        }
        let failed: Vec<_> = self
            .results
            .iter()
            .filter(|r| !r.outcome.status.passed())
            .collect();
        for r in &failed {
            writeln!(out, "\n---- {} ({}) ----", r.name, r.outcome.status.label())?;
            for line in Self::failure_text(r, 25).lines() {
                writeln!(out, "    {line}")?;
            }
        }
        writeln!(out)?;
        writeln!(
            out,
            "{:<6} {:<38} {:>9} {:>15}",
            "stage", "", "tests", "points"
        )?;
        writeln!(out, "{}", "-".repeat(71))?;
        for s in &self.stages {
            let (tests, points) = if self.build_failure.is_some() {
                // Its tests are unknown, not absent: every point of the stage is lost.
                (
                    "no build".to_owned(),
                    format!("0.0/{:.1}", f64::from(s.stage.points)),
                )
            } else if s.total == 0 {
                ("no suite".to_owned(), "-".to_owned())
            } else {
                (
                    format!("{}/{}", s.passed, s.total),
                    format!("{:.1}/{:.1}", s.points, s.max_points()),
                )
            };
            writeln!(
                out,
                "{:<6} {:<38} {:>9} {:>15}",
                s.stage.name, s.stage.title, tests, points
            )?;
        }
        writeln!(out, "{}", "-".repeat(71))?;
        let (passed, total): (usize, usize) = self
            .stages
            .iter()
            .fold((0, 0), |(p, t), s| (p + s.passed, t + s.total));
        writeln!(
            out,
            "{:<6} {:<38} {:>9} {:>15}",
            "total",
            format!("graded in {:.1} s", self.elapsed.as_secs_f64()),
            format!("{passed}/{total}"),
            format!("{:.1}/{:.1}", self.score(), self.max_score())
        )?;
        Ok(())
    }

    /// Gradescope's `results.json`.
    pub fn gradescope_json(&self) -> serde_json::Value {
        let tests: Vec<_> = self
            .results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (score, max) = self.points_of(i);
                let output = if r.outcome.status.passed() {
                    r.outcome.status.label().to_owned()
                } else {
                    format!(
                        "{}\n{}",
                        r.outcome.status.label(),
                        Self::failure_text(r, 100)
                    )
                };
                json!({
                    "name": r.name,
                    "number": r.stage.name,
                    "score": round4(score),
                    "max_score": round4(max),
                    "status": if r.outcome.status.passed() { "passed" } else { "failed" },
                    "output": output,
                    "tags": [format!("stage {}", r.stage.name)],
                })
            })
            .collect();
        let output = match &self.build_failure {
            Some(f) => format!("The tree does not build:\n{}", f.output),
            None => format!(
                "{} of {} tests passed",
                self.results
                    .iter()
                    .filter(|r| r.outcome.status.passed())
                    .count(),
                self.results.len()
            ),
        };
        let output = if self.tampered.is_empty() {
            output
        } else {
            format!(
                "{output}\nThese files may not be changed; they were graded with the instructor's copies:\n{}",
                self.tampered.join("\n")
            )
        };
        json!({
            "score": round2(self.score()),
            "max_score": round2(self.max_score()),
            "execution_time": self.elapsed.as_secs(),
            "output": output,
            "tests": tests,
        })
    }

    /// A JUnit XML report: one `testsuite` a stage.
    pub fn junit_xml(&self) -> String {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"labs\">\n",
        );
        for s in &self.stages {
            let results: Vec<_> = self.results.iter().filter(|r| r.stage == s.stage).collect();
            let secs: f64 = results
                .iter()
                .map(|r| r.outcome.duration.as_secs_f64())
                .sum();
            xml.push_str(&format!(
                "  <testsuite name=\"stage {}\" tests=\"{}\" failures=\"{}\" time=\"{secs:.3}\">\n",
                escape(s.stage.name),
                s.total,
                s.total - s.passed
            ));
            for r in results {
                let (module, test) = r.name.rsplit_once("::").unwrap_or(("suite", &r.name));
                xml.push_str(&format!(
                    "    <testcase classname=\"labs.{}\" name=\"{}\" time=\"{:.3}\"",
                    escape(module),
                    escape(test),
                    r.outcome.duration.as_secs_f64()
                ));
                if r.outcome.status.passed() {
                    xml.push_str("/>\n");
                } else {
                    let summary = FailureSummary::from_output(&r.outcome.output, &r.name, r.stage);
                    xml.push_str(&format!(
                        ">\n      <failure message=\"{}: {}\">{}</failure>\n    </testcase>\n",
                        r.outcome.status.label(),
                        escape(summary.headline()),
                        escape(&Self::failure_text(r, 100))
                    ));
                }
            }
            if let (Some(f), 0) = (&self.build_failure, s.total) {
                xml.push_str(&format!(
                    "    <testcase classname=\"labs.build\" name=\"build\">\n      <failure message=\"build failed\">{}</failure>\n    </testcase>\n",
                    escape(&f.output)
                ));
            }
            xml.push_str("  </testsuite>\n");
        }
        xml.push_str("</testsuites>\n");
        xml
    }

    /// Writes `results.json` and `junit.xml` into `dir`.
    pub fn write_files(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json =
            serde_json::to_string_pretty(&self.gradescope_json()).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("results.json"), json)?;
        std::fs::write(dir.join("junit.xml"), self.junit_xml())
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Per-test points can be small fractions (a case of a 20-case function): keep four places.
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Escapes text for XML attributes and content; drops characters XML cannot carry.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, stage: &str, status: Status) -> TestResult {
        TestResult {
            name: name.to_owned(),
            stage: Stage::by_name(stage).unwrap(),
            outcome: Outcome {
                status,
                duration: Duration::from_millis(5),
                output: "out <&>\x07".into(),
            },
        }
    }

    fn sample() -> Report {
        let sel: Selection = "1,2aa,2b".parse().unwrap();
        Report::new(
            &sel,
            vec![
                result("stage_1::a_1", "1", Status::Passed),
                result("stage_1::b_1", "1", Status::Failed),
                result("raft_2aa::c_2aa", "2aa", Status::Passed),
                result("raft_2aa::d_2aa", "2aa", Status::TimedOut),
                result("raft_2aa::e_2aa", "2aa", Status::Passed),
                result("raft_2aa::f_2aa", "2aa", Status::Passed),
            ],
            Duration::from_secs(3),
        )
    }

    #[test]
    fn points_are_shared_within_a_stage() {
        let r = sample();
        assert_eq!(
            r.stages[0],
            StageScore {
                stage: Stage::by_name("1").unwrap(),
                passed: 1,
                total: 2,
                functions: 2,
                points: 5.0
            }
        );
        assert_eq!(r.stages[1].points, 7.5);
        assert_eq!(r.stages[2].total, 0, "2b has no suite in this tree");
        assert_eq!(r.score(), 12.5);
        assert_eq!(
            r.max_score(),
            20.0,
            "a stage without a suite adds no points"
        );
        assert!(!r.full_marks());
    }

    /// A table-driven test weighs what a single test weighs: its cases share its points.
    #[test]
    fn cases_of_one_function_share_its_points() {
        let sel: Selection = "2aa".parse().unwrap();
        let mut results = vec![result("raft_2aa::single_2aa", "2aa", Status::Passed)];
        for i in 0..20 {
            let status = if i < 5 {
                Status::Failed
            } else {
                Status::Passed
            };
            results.push(result(
                &format!("raft_2aa::table_2aa::case_{i}_named"),
                "2aa",
                status,
            ));
        }
        let r = Report::new(&sel, results, Duration::from_secs(1));
        assert_eq!(r.stages[0].functions, 2);
        assert_eq!(r.stages[0].total, 21);
        // 10 points: 5 to the single test, 5 shared by 20 cases (0.25 each), 15 passed.
        assert!((r.score() - 8.75).abs() < 1e-9, "{}", r.score());
        assert!((r.weights[0] - 5.0).abs() < 1e-9);
        assert!((r.weights[1] - 0.25).abs() < 1e-9);
        assert_eq!(test_function("a_2aa::t_2aa::case_3"), "a_2aa::t_2aa");
        assert_eq!(test_function("a_2aa::t_2aa"), "a_2aa::t_2aa");
        assert_eq!(test_function("t_1"), "t_1");
    }

    /// A failure's report leads with its message and replay command, in the table's
    /// failure list, in results.json and in JUnit alike.
    #[test]
    fn a_tree_that_does_not_build_loses_every_point_of_each_stage() {
        let sel: Selection = "1,2aa".parse().unwrap();
        let failure = BuildFailure {
            output: "error[E0425]: cannot find value `x`".into(),
        };
        let r = Report::build_failed(&sel, failure, Duration::from_secs(1));
        let mut out = Vec::new();
        r.print(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("no build") && out.contains("0.0/10.0"),
            "{out}"
        );
        assert!(!out.contains("no suite") && !out.contains("-0.0"), "{out}");
        assert_eq!(r.score(), 0.0);
        assert!(!r.full_marks());
    }

    #[test]
    fn a_stage_with_nothing_passed_scores_plain_zero() {
        let sel: Selection = "2b".parse().unwrap();
        let failed = result("cluster_2b::basic_2b", "2b", Status::Failed);
        let r = Report::new(&sel, vec![failed], Duration::from_secs(1));
        assert!(r.score().is_sign_positive() && r.stages[0].points.is_sign_positive());
        let mut out = Vec::new();
        r.print(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains(" 0.0/20.0") && !out.contains("-0.0"), "{out}");
    }

    #[test]
    fn failures_lead_with_message_and_replay() {
        let sel: Selection = "2b".parse().unwrap();
        let mut noisy = String::new();
        for i in 0..300 {
            noisy.push_str(&format!("captured line {i}\n"));
        }
        noisy.push_str("thread 'cluster_2b::basic_2b' panicked at harness/src/x.rs:1:2:\nclient 0 lost an append\nbasic_2b failed: replay with LABS_SEED=77\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
        let mut failed = result("cluster_2b::basic_2b", "2b", Status::Failed);
        failed.outcome.output = noisy;
        let r = Report::new(&sel, vec![failed], Duration::from_secs(1));
        let mut out = Vec::new();
        r.print(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let head = text
            .split("---- cluster_2b::basic_2b (FAIL) ----\n")
            .nth(1)
            .unwrap_or("");
        assert!(head.starts_with("    client 0 lost an append\n"), "{text}");
        assert!(
            text.contains("replay: LABS_SEED=77 cargo test -p labs --features 2b --test suite -- --exact cluster_2b::basic_2b"),
            "{text}"
        );
        assert!(
            !text.contains("captured line 299"),
            "the raw output is not needed: {text}"
        );
        let j = r.gradescope_json();
        let output = j["tests"][0]["output"].as_str().unwrap_or("");
        assert!(
            output.starts_with("FAIL\nclient 0 lost an append"),
            "{output}"
        );
        assert!(output.contains("replay: LABS_SEED=77"), "{output}");
        let x = r.junit_xml();
        assert!(
            x.contains("<failure message=\"FAIL: client 0 lost an append\">"),
            "{x}"
        );
    }

    #[test]
    fn gradescope_json_has_the_schema_fields() {
        let j = sample().gradescope_json();
        assert_eq!(j["score"], 12.5);
        assert_eq!(j["tests"].as_array().unwrap().len(), 6);
        assert_eq!(j["tests"][0]["status"], "passed");
        assert_eq!(j["tests"][0]["max_score"], 5.0);
        assert_eq!(j["tests"][3]["score"], 0.0);
        assert_eq!(j["tests"][3]["max_score"], 2.5);
    }

    #[test]
    fn junit_is_escaped_and_counts_failures() {
        let x = sample().junit_xml();
        assert!(x.contains("<testsuite name=\"stage 1\" tests=\"2\" failures=\"1\""));
        assert!(x.contains("<testsuite name=\"stage 2aa\" tests=\"4\" failures=\"1\""));
        assert!(x.contains("out &lt;&amp;&gt;"));
        assert!(!x.contains('\x07'));
        assert!(x.contains("classname=\"labs.raft_2aa\" name=\"d_2aa\""));
    }

    #[test]
    fn the_table_lists_every_stage_and_the_failures() {
        let mut out = Vec::new();
        sample().print(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("---- stage_1::b_1 (FAIL) ----"));
        assert!(text.contains("---- raft_2aa::d_2aa (TIMEOUT) ----"));
        assert!(text.contains("no suite"));
        assert!(text.contains("12.5/20.0"));
    }
}
