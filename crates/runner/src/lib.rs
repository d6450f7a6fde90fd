//! Orchestration: manifest schema and layering, finding manifests and suites, running a
//! manifest (its core computes the numbers; the store writes them under results/, the only
//! writer there), resuming from the journal, deciding what is up to date (`reproduce`), the
//! benchmarks of the search paths, and each command's body (`commands`).
//!
//! Module dependencies point one way: `commands` -> `status` -> `reproduce` -> `submit`,
//! `expand`, `run` -> `core`, `journal`, `store`, `fingerprint` (-> `codeversion`), `inputs`,
//! `discover`, `sweep` -> `manifest`, `system`.

pub mod bench;
pub mod codeversion;
pub mod commands;
pub mod core;
pub mod discover;
pub mod expand;
pub mod fingerprint;
pub mod inputs;
pub mod interrupt;
pub mod journal;
pub mod manifest;
pub mod progress;
pub mod reproduce;
pub mod run;
pub mod status;
pub mod store;
pub mod submit;
pub mod sweep;
pub mod system;
pub mod validate;

pub use run::{run, RunOptions, RunOutcome};
