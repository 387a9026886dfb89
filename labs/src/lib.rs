//! The `labs` command of tinykv-rs: grading a tree against the course's suites.
//!
//! The suites themselves are the `suite` test target of this crate (one module a stage, each
//! behind the cargo feature of its stage). This library holds what the command does with them:
//! [`stages`] names the stages and their points, and [`grade`] builds the suite, runs every
//! test in its own child process under a time limit, and reports a score table plus
//! Gradescope and JUnit files. [`bench`] times a stage's suite as `cargo test` runs it.
//! [`kits`] writes the autograder kits (GitHub Classroom, Gradescope) into a handout.
//! [`handout`] writes the student tree of a set of stages and the manifest of what students
//! must not change. [`book`] checks that the course guide (`docs/`) points at what exists.
#![deny(missing_docs)]

pub mod bench;
pub mod book;
pub mod grade;
pub mod handout;
pub mod kits;
pub mod mutants;
pub mod stages;
#[cfg(test)]
mod test_files;
