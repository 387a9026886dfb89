//! The solution markers of a source file: parsing and validating `lab:` regions.
//!
//! A region is one `// lab:begin S` line, then zero or more `// lab:stub <code>` lines, then
//! the reference code, then a `// lab:end S` line naming the same stage `S` (a single stage:
//! `2aa`, not the group `2a`).
//!
//! A *needs* region, `// lab:needs SET` to `// lab:end-needs` (SET as `labs handout --strip`
//! takes it: `2b`, `2aa..3a`, `2a,2b`), fences code outside the solution that runs the
//! reference solution of the stages in SET: unit tests, doctests, fixtures. A
//! handout that strips any stage of SET removes the region whole, markers included, so a
//! student tree has no test that panics on a stub. It has no stub lines.
//!
//! Each marker stands alone on its line (only indentation before it). Regions do not nest. Anything that looks like a marker and is not one of these is an
//! error rather than ordinary text, because a marker the generator silently ignores would hand
//! the reference solution to students.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::stages::{Selection, Stage};

/// The prefix of every marker line, after its indentation.
const PREFIX: &str = "// lab:";

/// What a region fences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionKind {
    /// Reference code that the students of this stage write (`lab:begin S`).
    Solution(Stage),
    /// Code that runs the reference solution of these stages (`lab:needs SET`).
    Needs(Selection),
}

/// One `lab:` region of a file. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// What the region fences.
    pub kind: RegionKind,
    /// The `lab:begin` line.
    pub begin: usize,
    /// The `lab:end` line.
    pub end: usize,
    /// The code that replaces the region when it is stripped: each `lab:stub` line's text
    /// after `// lab:stub `, behind that line's indentation, with its line ending.
    pub stub: Vec<String>,
}

impl Region {
    /// The stage whose students write the region, for a solution region.
    pub fn stage(&self) -> Option<Stage> {
        match &self.kind {
            RegionKind::Solution(stage) => Some(*stage),
            RegionKind::Needs(_) => None,
        }
    }

    /// Whether a handout stripping `selection` strips this region: a solution region when
    /// its stage is selected, a needs region when any of its stages is.
    pub fn stripped_by(&self, selection: &Selection) -> bool {
        match &self.kind {
            RegionKind::Solution(stage) => selection.contains(*stage),
            RegionKind::Needs(set) => set.stages().iter().any(|s| selection.contains(*s)),
        }
    }
}

/// What is wrong with a marker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerErrorKind {
    /// A region opened and never closed.
    #[error("`lab:begin {0}` has no matching `lab:end {0}`")]
    BeginWithoutEnd(String),
    /// A region closed that was not open.
    #[error("`lab:end {0}` without a `lab:begin {0}` before it")]
    EndWithoutBegin(String),
    /// A region closed under another stage's name.
    #[error("`lab:end {end}` closes the region `lab:begin {begin}` opened at line {begin_line}")]
    EndMismatch {
        /// The stage of the open region.
        begin: String,
        /// The line of its `lab:begin`.
        begin_line: usize,
        /// The stage the `lab:end` names.
        end: String,
    },
    /// A region opened inside another.
    #[error("`lab:{inner}` inside the region `lab:{outer}` opened at line {outer_line}; regions do not nest")]
    Nested {
        /// The open region's opening marker (`begin 2b`, `needs 2aa..3a`).
        outer: String,
        /// The line of its opening marker.
        outer_line: usize,
        /// The opening marker of the region opened inside it.
        inner: String,
    },
    /// A needs region opened and never closed.
    #[error("`lab:needs {0}` has no matching `lab:end-needs`")]
    NeedsWithoutEnd(String),
    /// A needs region closed that was not open.
    #[error("`lab:end-needs` without a `lab:needs` before it")]
    EndNeedsWithoutNeeds,
    /// A region closed by the other kind's end marker.
    #[error("`lab:{close}` cannot close the region `lab:{open}` opened at line {open_line}")]
    KindMismatch {
        /// The open region's opening marker.
        open: String,
        /// The line of its opening marker.
        open_line: usize,
        /// The end marker met (`end 2b`, `end-needs`).
        close: String,
    },
    /// A stub line outside every region.
    #[error("`lab:stub` outside a lab: region")]
    StubOutsideRegion,
    /// A stub line after the region's reference code started.
    #[error("`lab:stub` after reference code in the region opened at line {0}; stub lines follow `lab:begin` directly")]
    StubAfterCode(usize),
    /// A marker naming something that is not a stage.
    #[error("unknown stage {0:?} (regions name one stage: 1, 2aa, 2ab, 2ac, 2b, 2c, 3a, 3b, 3c, 4a, 4b, 4c)")]
    UnknownStage(String),
    /// A `lab:needs` naming something that is not a set of stages.
    #[error("`lab:needs {0}`: not a set of stages (write it as for --strip: 2b, 2aa..3a, 2a,2b)")]
    UnknownSet(String),
    /// A stub line in a needs region, which is removed whole.
    #[error("`lab:stub` in the `lab:needs` region opened at line {0}; a needs region is removed whole and has no stub")]
    StubInNeeds(usize),
    /// A solution region in a framework crate (the harness), which students do not write.
    #[error("a `lab:begin` region in a framework crate, which students do not write; only `lab:needs` regions belong here")]
    SolutionInFramework,
    /// A `// lab:` comment with another directive than begin, stub, end, needs or end-needs.
    #[error("unknown directive `lab:{0}` (markers are lab:begin, lab:stub, lab:end, lab:needs, lab:end-needs)")]
    UnknownDirective(String),
    /// A begin or end line without exactly one stage name.
    #[error("`lab:{0}` takes exactly one argument (a stage; for lab:needs, a set of stages)")]
    StageCount(String),
    /// Something that looks like a marker but is not written as one.
    #[error("malformed marker {0:?}: a marker is `// lab:begin S`, `// lab:stub CODE`, `// lab:end S`, `// lab:needs SET` or `// lab:end-needs`, alone on its line")]
    Malformed(String),
}

/// A marker error at `path:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerError {
    /// The file, as given to [`parse`].
    pub path: PathBuf,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub kind: MarkerErrorKind,
}

impl fmt::Display for MarkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.kind)
    }
}

impl std::error::Error for MarkerError {}

/// One line's marker, if it has one.
enum Marker<'a> {
    Begin(&'a str),
    End(&'a str),
    Stub(String),
    Needs(&'a str),
}

/// The marker on `line` (with its line ending), `Ok(None)` for an ordinary line.
fn classify(line: &str) -> Result<Option<Marker<'_>>, MarkerErrorKind> {
    let body = line.trim_end_matches(['\n', '\r']);
    let trimmed = body.trim_start();
    let Some(rest) = trimmed.strip_prefix(PREFIX) else {
        return if looks_like_marker(trimmed) {
            Err(MarkerErrorKind::Malformed(trimmed.to_owned()))
        } else {
            Ok(None)
        };
    };
    let (directive, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let stage_arg = |directive: &str| -> Result<&str, MarkerErrorKind> {
        let mut words = args.split_whitespace();
        match (words.next(), words.next()) {
            (Some(name), None) => Ok(name),
            _ => Err(MarkerErrorKind::StageCount(directive.to_owned())),
        }
    };
    match directive {
        "begin" => Ok(Some(Marker::Begin(stage_arg("begin")?))),
        "end" => Ok(Some(Marker::End(stage_arg("end")?))),
        "needs" => Ok(Some(Marker::Needs(stage_arg("needs")?))),
        "end-needs" if args.trim().is_empty() => Ok(Some(Marker::End(END_NEEDS))),
        "end-needs" => Err(MarkerErrorKind::Malformed(trimmed.to_owned())),
        "stub" => {
            let indent = &body[..body.len() - trimmed.len()];
            let ending = &line[body.len()..];
            Ok(Some(Marker::Stub(format!("{indent}{args}{ending}"))))
        }
        _ => Err(MarkerErrorKind::UnknownDirective(directive.to_owned())),
    }
}

/// Whether a line that is not a well-formed marker mentions one: `//lab:begin`, `///
/// lab:end`, code followed by `// lab:stub ...`. Such a line is rejected.
fn looks_like_marker(trimmed: &str) -> bool {
    ["lab:begin", "lab:end", "lab:stub", "lab:needs"]
        .iter()
        .any(|m| trimmed.contains(m))
        || trimmed
            .trim_start_matches('/')
            .trim_start()
            .starts_with("lab:")
            && trimmed.starts_with("//")
}

/// How a needs region's end is told from a solution region's end while scanning.
const END_NEEDS: &str = "end-needs";

/// The region open while scanning.
struct Open {
    /// The parsed kind (`None` when its stage or set did not parse).
    kind: Option<RegionKind>,
    /// Its opening marker after `lab:` (`begin 2b`, `needs 2aa..3a`).
    marker: String,
    /// The stage a solution region's `lab:end` must name; `None` for a needs region.
    stage_name: Option<String>,
    line: usize,
    stub: Vec<String>,
    code_seen: bool,
}

/// The regions of `source`, or every marker error in it (`path` only labels the errors).
pub fn parse(path: &Path, source: &str) -> Result<Vec<Region>, Vec<MarkerError>> {
    let mut regions = Vec::new();
    let mut errors = Vec::new();
    let mut open: Option<Open> = None;
    let mut error = |line: usize, kind: MarkerErrorKind| {
        errors.push(MarkerError {
            path: path.to_owned(),
            line,
            kind,
        });
    };
    for (i, text) in source.split_inclusive('\n').enumerate() {
        let line = i + 1;
        let marker = match classify(text) {
            Ok(m) => m,
            Err(kind) => {
                error(line, kind);
                continue;
            }
        };
        let opening = match marker {
            None => {
                if let Some(o) = open.as_mut() {
                    o.code_seen = true;
                }
                continue;
            }
            Some(Marker::Stub(code)) => {
                match open.as_mut() {
                    None => error(line, MarkerErrorKind::StubOutsideRegion),
                    Some(o) if o.stage_name.is_none() => {
                        error(line, MarkerErrorKind::StubInNeeds(o.line))
                    }
                    Some(o) if o.code_seen => error(line, MarkerErrorKind::StubAfterCode(o.line)),
                    Some(o) => o.stub.push(code),
                }
                continue;
            }
            Some(Marker::End(name)) => {
                close(&mut open, name, line, &mut regions, &mut error);
                continue;
            }
            Some(Marker::Begin(name)) => {
                let stage = Stage::by_name(name);
                if stage.is_none() {
                    error(line, MarkerErrorKind::UnknownStage(name.to_owned()));
                }
                Open {
                    kind: stage.map(RegionKind::Solution),
                    marker: format!("begin {name}"),
                    stage_name: Some(name.to_owned()),
                    line,
                    stub: Vec::new(),
                    code_seen: false,
                }
            }
            Some(Marker::Needs(set)) => {
                let parsed = set.parse::<Selection>().ok();
                if parsed.is_none() {
                    error(line, MarkerErrorKind::UnknownSet(set.to_owned()));
                }
                Open {
                    kind: parsed.map(RegionKind::Needs),
                    marker: format!("needs {set}"),
                    stage_name: None,
                    line,
                    stub: Vec::new(),
                    code_seen: false,
                }
            }
        };
        if let Some(outer) = &open {
            error(
                line,
                MarkerErrorKind::Nested {
                    outer: outer.marker.clone(),
                    outer_line: outer.line,
                    inner: opening.marker,
                },
            );
            // Keep the outer region open: its end is the one that will come.
            continue;
        }
        open = Some(opening);
    }
    if let Some(o) = open {
        let kind = match o.stage_name {
            Some(name) => MarkerErrorKind::BeginWithoutEnd(name),
            None => MarkerErrorKind::NeedsWithoutEnd(o.marker["needs ".len()..].to_owned()),
        };
        error(o.line, kind);
    }
    if errors.is_empty() {
        Ok(regions)
    } else {
        Err(errors)
    }
}

/// Handles an end marker (`name` is a stage, or [`END_NEEDS`]) at `line`.
fn close(
    open: &mut Option<Open>,
    name: &str,
    line: usize,
    regions: &mut Vec<Region>,
    error: &mut impl FnMut(usize, MarkerErrorKind),
) {
    let needs_end = name == END_NEEDS;
    if !needs_end && Stage::by_name(name).is_none() {
        error(line, MarkerErrorKind::UnknownStage(name.to_owned()));
    }
    let Some(o) = open.take() else {
        error(
            line,
            if needs_end {
                MarkerErrorKind::EndNeedsWithoutNeeds
            } else {
                MarkerErrorKind::EndWithoutBegin(name.to_owned())
            },
        );
        return;
    };
    let close_marker = || {
        if needs_end {
            END_NEEDS.to_owned()
        } else {
            format!("end {name}")
        }
    };
    match (&o.stage_name, needs_end) {
        (Some(_), true) | (None, false) => error(
            line,
            MarkerErrorKind::KindMismatch {
                open: o.marker,
                open_line: o.line,
                close: close_marker(),
            },
        ),
        (Some(begin), false) if begin != name => error(
            line,
            MarkerErrorKind::EndMismatch {
                begin: begin.clone(),
                begin_line: o.line,
                end: name.to_owned(),
            },
        ),
        _ => {
            if let Some(kind) = o.kind {
                regions.push(Region {
                    kind,
                    begin: o.line,
                    end: line,
                    stub: o.stub,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source made of `lines`, one a line.
    fn src(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    fn errors(lines: &[&str]) -> Vec<(usize, MarkerErrorKind)> {
        match parse(Path::new("x.rs"), &src(lines)) {
            Ok(r) => panic!("expected errors, parsed {r:?}"),
            Err(e) => e.into_iter().map(|e| (e.line, e.kind)).collect(),
        }
    }

    #[test]
    fn parses_regions_with_their_stubs() {
        let s = src(&[
            "fn a() {",
            "    // lab:begin 2aa",
            "    // lab:stub // TODO(2aa): a",
            "    // lab:stub let _ = x;",
            "        // lab:stub",
            "    x + 1",
            "    // lab:end 2aa",
            "}",
            "// lab:begin 3b",
            "fn helper() {}",
            "// lab:end 3b",
        ]);
        let regions = parse(Path::new("x.rs"), &s).unwrap();
        assert_eq!(regions.len(), 2);
        assert_eq!(regions[0].stage().unwrap().name, "2aa");
        assert_eq!((regions[0].begin, regions[0].end), (2, 7));
        assert_eq!(
            regions[0].stub,
            ["    // TODO(2aa): a\n", "    let _ = x;\n", "        \n"]
        );
        assert_eq!(regions[1].stage().unwrap().name, "3b");
        assert_eq!((regions[1].begin, regions[1].end), (9, 11));
        assert!(regions[1].stub.is_empty());
    }

    #[test]
    fn keeps_crlf_line_endings_in_stubs() {
        let s = "  // lab:begin 1\r\n  // lab:stub todo!()\r\n  x\r\n  // lab:end 1\r\n";
        let regions = parse(Path::new("x.rs"), s).unwrap();
        assert_eq!(regions[0].stub, ["  todo!()\r\n"]);
    }

    #[test]
    fn ordinary_comments_and_docs_are_not_markers() {
        let s = src(&[
            "// lab work: none here",
            "/// The labs crate grades.",
            "let lab = 1; // a lab",
        ]);
        assert_eq!(parse(Path::new("x.rs"), &s), Ok(vec![]));
    }

    #[test]
    fn rejects_begin_without_end() {
        assert_eq!(
            errors(&["// lab:begin 2b", "x"]),
            [(1, MarkerErrorKind::BeginWithoutEnd("2b".into()))]
        );
    }

    #[test]
    fn rejects_end_without_begin() {
        assert_eq!(
            errors(&["x", "// lab:end 2b"]),
            [(2, MarkerErrorKind::EndWithoutBegin("2b".into()))]
        );
    }

    #[test]
    fn rejects_an_end_naming_another_stage() {
        assert_eq!(
            errors(&["// lab:begin 2b", "x", "// lab:end 2c"]),
            [(
                3,
                MarkerErrorKind::EndMismatch {
                    begin: "2b".into(),
                    begin_line: 1,
                    end: "2c".into()
                }
            )]
        );
    }

    #[test]
    fn rejects_nested_regions() {
        assert_eq!(
            errors(&[
                "// lab:begin 2b",
                "  // lab:begin 2c",
                "  x",
                "  // lab:end 2c",
                "// lab:end 2b",
            ]),
            [
                (
                    2,
                    MarkerErrorKind::Nested {
                        outer: "begin 2b".into(),
                        outer_line: 1,
                        inner: "begin 2c".into()
                    }
                ),
                (
                    4,
                    MarkerErrorKind::EndMismatch {
                        begin: "2b".into(),
                        begin_line: 1,
                        end: "2c".into()
                    }
                ),
                (5, MarkerErrorKind::EndWithoutBegin("2b".into())),
            ]
        );
    }

    #[test]
    fn rejects_stubs_outside_regions_or_after_code() {
        assert_eq!(
            errors(&["// lab:stub todo!()"]),
            [(1, MarkerErrorKind::StubOutsideRegion)]
        );
        assert_eq!(
            errors(&[
                "// lab:begin 2b",
                "x",
                "// lab:stub todo!()",
                "// lab:end 2b"
            ]),
            [(3, MarkerErrorKind::StubAfterCode(1))]
        );
    }

    #[test]
    fn rejects_unknown_stages_and_groups() {
        assert_eq!(
            errors(&["// lab:begin 2a", "x", "// lab:end 2a"]),
            [
                (1, MarkerErrorKind::UnknownStage("2a".into())),
                (3, MarkerErrorKind::UnknownStage("2a".into()))
            ]
        );
        assert_eq!(
            errors(&["// lab:begin 5", "// lab:end 5"])[0],
            (1, MarkerErrorKind::UnknownStage("5".into()))
        );
    }

    #[test]
    fn rejects_unknown_directives_and_malformed_markers() {
        assert_eq!(
            errors(&["// lab:start 2b"]),
            [(1, MarkerErrorKind::UnknownDirective("start".into()))]
        );
        assert_eq!(
            errors(&["// lab:begin", "// lab:end 2b extra"]),
            [
                (1, MarkerErrorKind::StageCount("begin".into())),
                (2, MarkerErrorKind::StageCount("end".into()))
            ]
        );
        for bad in [
            "//lab:begin 2b",
            "///lab:end 2b",
            "x(); // lab:begin 2b",
            "//  lab:stub x",
            "// lab: begin 2b",
        ] {
            let got = errors(&[bad]);
            assert!(
                matches!(
                    got.as_slice(),
                    [(
                        1,
                        MarkerErrorKind::Malformed(_) | MarkerErrorKind::UnknownDirective(_)
                    )]
                ),
                "{bad:?}: {got:?}"
            );
        }
    }

    #[test]
    fn parses_needs_regions() {
        let s = src(&[
            "#[cfg(test)]",
            "mod tests {",
            "    // lab:needs 2aa..2ab",
            "    #[test]",
            "    fn elects() {}",
            "    // lab:end-needs",
            "}",
        ]);
        let regions = parse(Path::new("x.rs"), &s).unwrap();
        assert_eq!(regions.len(), 1);
        assert_eq!((regions[0].begin, regions[0].end), (3, 6));
        assert_eq!(regions[0].stage(), None);
        let set = |s: &str| s.parse::<Selection>().unwrap();
        assert!(regions[0].stripped_by(&set("2ab")));
        assert!(regions[0].stripped_by(&set("all")));
        assert!(!regions[0].stripped_by(&set("2ac,2b")));
    }

    #[test]
    fn rejects_malformed_needs_regions() {
        assert_eq!(
            errors(&["// lab:needs 2z", "// lab:end-needs"]),
            [(1, MarkerErrorKind::UnknownSet("2z".into()))]
        );
        assert_eq!(
            errors(&["// lab:needs 2b", "x"]),
            [(1, MarkerErrorKind::NeedsWithoutEnd("2b".into()))]
        );
        assert_eq!(
            errors(&["x", "// lab:end-needs"]),
            [(2, MarkerErrorKind::EndNeedsWithoutNeeds)]
        );
        assert_eq!(
            errors(&["// lab:needs 2b", "// lab:stub todo!()", "// lab:end-needs"]),
            [(2, MarkerErrorKind::StubInNeeds(1))]
        );
        assert_eq!(
            errors(&["// lab:needs 2b", "x", "// lab:end 2b"]),
            [(
                3,
                MarkerErrorKind::KindMismatch {
                    open: "needs 2b".into(),
                    open_line: 1,
                    close: "end 2b".into()
                }
            )]
        );
        assert_eq!(
            errors(&["// lab:begin 2b", "x", "// lab:end-needs"]),
            [(
                3,
                MarkerErrorKind::KindMismatch {
                    open: "begin 2b".into(),
                    open_line: 1,
                    close: "end-needs".into()
                }
            )]
        );
        assert_eq!(
            errors(&[
                "// lab:needs 2b",
                "// lab:begin 2b",
                "// lab:end 2b",
                "// lab:end-needs"
            ])[0],
            (
                2,
                MarkerErrorKind::Nested {
                    outer: "needs 2b".into(),
                    outer_line: 1,
                    inner: "begin 2b".into()
                }
            )
        );
        assert_eq!(
            errors(&["// lab:needs", "// lab:end-needs 2b"]),
            [
                (1, MarkerErrorKind::StageCount("needs".into())),
                (2, MarkerErrorKind::Malformed("// lab:end-needs 2b".into()))
            ]
        );
    }

    #[test]
    fn errors_read_as_path_line_message() {
        let e = parse(Path::new("raft/src/raft.rs"), "// lab:end 2aa\n").unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "raft/src/raft.rs:1: `lab:end 2aa` without a `lab:begin 2aa` before it"
        );
    }
}
