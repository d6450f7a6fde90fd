//! The data a manifest's `[data]` section names: the files it reads (for the up-to-date
//! check) and its calibration and search batches.
use crate::manifest::DataSection;
use std::path::PathBuf;

/// The files and directories the data of a manifest reads; `Err` says what is missing from
/// the configuration itself (an unset variable, an empty path).
pub fn data_inputs(data: &DataSection) -> Result<Vec<PathBuf>, String> {
    match data.dataset.as_str() {
        // Generated from the seed by the data crate: its code is part of the code version.
        "embedded" => Ok(vec![]),
        other => Err(format!("data.dataset {other:?} has no loader")),
    }
}
