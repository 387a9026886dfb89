//! The course's stages: their cargo features, their points, and how a test names its stage.

use std::fmt;
use std::str::FromStr;

/// One graded stage of the course.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stage {
    /// The cargo feature and test-name suffix (`2aa` for `leader_election_2aa`).
    pub name: &'static str,
    /// What the student builds in this stage.
    pub title: &'static str,
    /// Points for passing every test of the stage.
    pub points: u32,
}

/// Every graded stage, in course order. Points follow the original course's weighting of
/// effort (cluster stages weigh more than the raft unit stages).
pub const STAGES: &[Stage] = &[
    Stage {
        name: "1",
        title: "standalone KV",
        points: 10,
    },
    Stage {
        name: "2aa",
        title: "raft: leader election",
        points: 10,
    },
    Stage {
        name: "2ab",
        title: "raft: log replication",
        points: 15,
    },
    Stage {
        name: "2ac",
        title: "raft: RawNode",
        points: 5,
    },
    Stage {
        name: "2b",
        title: "RaftKV on a cluster",
        points: 20,
    },
    Stage {
        name: "2c",
        title: "log GC and snapshots",
        points: 15,
    },
    Stage {
        name: "3a",
        title: "raft: leader transfer, conf change",
        points: 10,
    },
    Stage {
        name: "3b",
        title: "raftstore admin commands",
        points: 20,
    },
    Stage {
        name: "3c",
        title: "scheduler",
        points: 15,
    },
    Stage {
        name: "4a",
        title: "MVCC",
        points: 10,
    },
    Stage {
        name: "4b",
        title: "transactions: get, prewrite, commit",
        points: 10,
    },
    Stage {
        name: "4c",
        title: "transactions: rollback, resolve, scan",
        points: 10,
    },
];

/// Groups a student may name instead of single stages.
const GROUPS: &[(&str, &[&str])] = &[("2a", &["2aa", "2ab", "2ac"]), ("all", &[])];

impl Stage {
    /// Looks a stage up by its name.
    pub fn by_name(name: &str) -> Option<Stage> {
        STAGES.iter().copied().find(|s| s.name == name)
    }

    /// The stage a test belongs to, from the suffix of its last path segment
    /// (`stage_1::raw_get_1` → stage `1`).
    pub fn of_test(test: &str) -> Option<Stage> {
        let last = test.rsplit("::").next().unwrap_or(test);
        let (_, suffix) = last.rsplit_once('_')?;
        Stage::by_name(suffix)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A stage name that is neither a stage nor a group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown stage {0:?}; stages are 1, 2a (= 2aa, 2ab, 2ac), 2b, 2c, 3a, 3b, 3c, 4a, 4b, 4c, all"
)]
pub struct UnknownStage(pub String);

/// A selection of stages, in course order without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(Vec<Stage>);

impl Selection {
    /// Every stage.
    pub fn all() -> Self {
        Selection(STAGES.to_vec())
    }

    /// The selected stages in course order.
    pub fn stages(&self) -> &[Stage] {
        &self.0
    }

    /// Whether `stage` is selected.
    pub fn contains(&self, stage: Stage) -> bool {
        self.0.contains(&stage)
    }

    /// The cargo features that switch the selected stages' suites on.
    pub fn features(&self) -> String {
        self.0.iter().map(|s| s.name).collect::<Vec<_>>().join(",")
    }
}

impl FromStr for Selection {
    type Err = UnknownStage;

    /// Parses a comma-separated list such as `1,2a,3b` (`all` = every stage).
    fn from_str(list: &str) -> Result<Self, UnknownStage> {
        let mut chosen = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let name = name.to_ascii_lowercase();
            if name == "all" {
                return Ok(Selection::all());
            }
            if let Some((_, members)) = GROUPS.iter().find(|(g, _)| *g == name) {
                chosen.extend(members.iter().filter_map(|m| Stage::by_name(m)));
            } else {
                chosen.push(Stage::by_name(&name).ok_or_else(|| UnknownStage(name.clone()))?);
            }
        }
        if chosen.is_empty() {
            return Err(UnknownStage(list.to_owned()));
        }
        chosen.sort_by_key(|s| STAGES.iter().position(|x| x == s));
        chosen.dedup();
        Ok(Selection(chosen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_map_to_stages_by_suffix() {
        assert_eq!(Stage::of_test("stage_1::raw_get_1").unwrap().name, "1");
        assert_eq!(
            Stage::of_test("raft_2aa::leader_election_2aa")
                .unwrap()
                .name,
            "2aa"
        );
        assert_eq!(
            Stage::of_test("x::split_recover_3b::case_2_x_3b")
                .unwrap()
                .name,
            "3b"
        );
        assert_eq!(Stage::of_test("helper"), None);
        assert_eq!(
            Stage::of_test("m::thing_2a"),
            None,
            "2a is a group, not a stage"
        );
    }

    #[test]
    fn selections_expand_groups_and_keep_course_order() {
        let s: Selection = "3a, 2a,1,2aa".parse().unwrap();
        let names: Vec<_> = s.stages().iter().map(|s| s.name).collect();
        assert_eq!(names, ["1", "2aa", "2ab", "2ac", "3a"]);
        assert_eq!(s.features(), "1,2aa,2ab,2ac,3a");
        assert_eq!("all".parse::<Selection>().unwrap(), Selection::all());
        assert!("5".parse::<Selection>().is_err());
        assert!("".parse::<Selection>().is_err());
    }

    #[test]
    fn every_stage_has_points() {
        assert!(STAGES.iter().all(|s| s.points > 0));
        assert_eq!(STAGES.iter().map(|s| s.points).sum::<u32>(), 150);
    }
}
