//! Stripping: a region of a selected stage loses its reference code and keeps its stub.
//!
//! A stripped solution region keeps its `lab:begin` and `lab:end` lines, so the student sees
//! where their code goes (and a later check can tell code inside regions from code outside
//! them); between them stand the region's stub lines, uncommented, at the indentation of
//! their `lab:stub` line. A stripped needs region goes whole, its marker lines too. Regions
//! not stripped and every line outside a stripped region are left byte for byte.

use std::path::Path;

use super::markers::{self, MarkerError, Region, RegionKind};
use crate::stages::Selection;

/// `source` with the regions of `selection` stripped, given its parsed `regions`.
pub fn strip_regions(source: &str, regions: &[Region], selection: &Selection) -> String {
    let mut out = String::with_capacity(source.len());
    let mut regions = regions
        .iter()
        .filter(|r| r.stripped_by(selection))
        .peekable();
    for (i, line) in source.split_inclusive('\n').enumerate() {
        let n = i + 1;
        // Drop any region already behind this line (regions are in file order).
        while regions.next_if(|r| r.end < n).is_some() {}
        match regions.peek() {
            // A stripped needs region goes whole, markers included (`r.end >= n` here).
            Some(r) if is_needs(r) && r.begin <= n => {}
            Some(r) if n == r.begin => {
                out.push_str(line);
                r.stub.iter().for_each(|s| out.push_str(s));
            }
            Some(r) if n == r.end => out.push_str(line),
            Some(r) if r.begin < n && n < r.end => {}
            _ => out.push_str(line),
        }
    }
    out
}

fn is_needs(region: &Region) -> bool {
    matches!(region.kind, RegionKind::Needs(_))
}

/// What stripping one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The new content.
    pub source: String,
    /// The regions stripped.
    pub regions: Vec<Region>,
    /// Every region of the file, stripped or not.
    pub all_regions: Vec<Region>,
}

/// Parses `source` (errors are labelled with `path`) and strips the regions of `selection`.
pub fn strip_source(
    path: &Path,
    source: &str,
    selection: &Selection,
) -> Result<Stripped, Vec<MarkerError>> {
    let all_regions = markers::parse(path, source)?;
    let stripped: Vec<Region> = all_regions
        .iter()
        .filter(|r| r.stripped_by(selection))
        .cloned()
        .collect();
    Ok(Stripped {
        source: strip_regions(source, &stripped, selection),
        regions: stripped,
        all_regions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Built from lines, so that no line of this file starts with a marker (the grader takes
    // a crate with markers for a lab crate).
    const SOURCE_LINES: &[&str] = &[
        "use a::B;",
        "",
        "fn tick(&mut self) {",
        "    // lab:begin 2aa",
        "    // lab:stub todo!(\"2aa: timers\")",
        "    self.elapsed += 1;",
        "    // lab:end 2aa",
        "}",
        "",
        "fn commit(&mut self) -> bool {",
        "        // lab:begin 2ab",
        "        // lab:stub // TODO(2ab): commit.",
        "      // lab:stub false",
        "        self.maybe_commit()",
        "        // lab:end 2ab",
        "}",
        "// lab:begin 3b",
        "fn helper() {}",
        "// lab:end 3b",
        "const X: u8 = 1;",
    ];

    /// The lines joined by newlines, the last without one.
    fn source() -> String {
        SOURCE_LINES.join("\n")
    }

    fn strip(set: &str) -> String {
        let selection: Selection = set.parse().unwrap();
        strip_source(Path::new("x.rs"), &source(), &selection)
            .unwrap()
            .source
    }

    #[test]
    fn replaces_regions_by_their_stubs_keeping_indentation() {
        let out = strip("2aa,2ab,3b");
        let expected = [
            "use a::B;",
            "",
            "fn tick(&mut self) {",
            "    // lab:begin 2aa",
            "    todo!(\"2aa: timers\")",
            "    // lab:end 2aa",
            "}",
            "",
            "fn commit(&mut self) -> bool {",
            "        // lab:begin 2ab",
            "        // TODO(2ab): commit.",
            "      false",
            "        // lab:end 2ab",
            "}",
            "// lab:begin 3b",
            "// lab:end 3b",
            "const X: u8 = 1;",
        ]
        .join("\n");
        assert_eq!(out, expected);
        // The stripped file is still a valid marked file, with no stubs left.
        let again = markers::parse(Path::new("x.rs"), &out).unwrap();
        assert_eq!(again.len(), 3);
        assert!(again.iter().all(|r| r.stub.is_empty()));
    }

    #[test]
    fn leaves_other_stages_regions_and_the_rest_untouched() {
        let source = source();
        assert_eq!(strip("2b,3a"), source, "no region of these stages");
        let out = strip("2ab");
        assert!(out.contains("// lab:stub todo!(\"2aa: timers\")\n    self.elapsed += 1;"));
        assert!(out.contains("fn helper() {}"));
        assert!(!out.contains("self.maybe_commit()"));
        assert!(out.ends_with("const X: u8 = 1;"), "no newline added");
        // Only the region's interior changed.
        let removed: Vec<&str> = source.lines().filter(|l| !out.contains(l)).collect();
        assert_eq!(
            removed,
            [
                "        // lab:stub // TODO(2ab): commit.",
                "      // lab:stub false",
                "        self.maybe_commit()"
            ]
        );
    }

    #[test]
    fn reports_the_regions_it_stripped() {
        let selection: Selection = "2ab,3b".parse().unwrap();
        let s = strip_source(Path::new("x.rs"), &source(), &selection).unwrap();
        let stages: Vec<&str> = s
            .regions
            .iter()
            .filter_map(|r| r.stage())
            .map(|s| s.name)
            .collect();
        assert_eq!(stages, ["2ab", "3b"]);
        assert_eq!(s.all_regions.len(), 3);
        assert!(strip_source(Path::new("x.rs"), "// lab:end 2b\n", &selection).is_err());
    }

    #[test]
    fn removes_needs_regions_whole_when_any_of_their_stages_is_stripped() {
        let source = [
            "mod tests {",
            "    use super::*;",
            "    // lab:needs 2aa..2ab",
            "    #[test]",
            "    fn elects() {}",
            "    // lab:end-needs",
            "    #[test]",
            "    fn framework() {}",
            "}",
            "",
        ]
        .join("\n");
        let strip = |set: &str| {
            let selection: Selection = set.parse().unwrap();
            strip_source(Path::new("x.rs"), &source, &selection).unwrap()
        };
        let out = strip("2ab");
        assert_eq!(
            out.source,
            [
                "mod tests {",
                "    use super::*;",
                "    #[test]",
                "    fn framework() {}",
                "}",
                "",
            ]
            .join("\n")
        );
        assert_eq!(out.regions.len(), 1);
        assert_eq!(
            strip("2ac,3b").source,
            source,
            "no stage of the set is stripped"
        );
    }
}
