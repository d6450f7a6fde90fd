//! Orchestration: manifest schema and layering, the manifest's data (`dataset`), running a
//! manifest (model, data, calibration, search), progress display, and the result store, the
//! only writer under results/.

pub mod bench;
pub mod dataset;
pub mod evaluator;
pub mod fingerprint;
pub mod interrupt;
pub mod journal;
pub mod manifest;
pub mod progress;
pub mod reproduce;
pub mod run;
pub mod store;
pub mod sweep;
pub mod validate;

pub use run::{run, RunOptions, RunOutcome};
