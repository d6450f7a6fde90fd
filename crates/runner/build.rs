//! Exports the code version of results (`MPQ_CODE_UNITS`: one hash per unit of the code that
//! computes them; see `src/codeversion.rs`) to the crate, rebuilding it when a unit's sources
//! or `Cargo.lock` change.
#[path = "src/codeversion.rs"]
#[allow(dead_code)]
mod codeversion;

use std::path::Path;

fn main() {
    let root = Path::new("../..");
    for unit in codeversion::UNITS {
        println!("cargo:rerun-if-changed=../../{}", unit.dir);
    }
    println!("cargo:rerun-if-changed=../../Cargo.lock");
    let units = codeversion::unit_hashes(root);
    println!(
        "cargo:rustc-env=MPQ_CODE_UNITS={}",
        codeversion::encode(&units)
    );
}
