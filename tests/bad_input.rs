//! Every bad input of the core issue: one line on stderr naming the file and the key or
//! tensor, a non-zero exit, and nothing created under the results directory.
mod common;
use common::*;
use std::path::{Path, PathBuf};

const GOOD: &str = r#"
[experiment]
name = "bad-input-probe"
[model]
arch = "resnet-tiny"
weights = "experiments/embedded/weights/resnet-tiny.safetensors"
[data]
search_images = 16
calib_images = 8
[quant]
pair = "W4A8"
[search]
strategy = "greedy"
"#;

struct Case {
    _tmp: tempfile::TempDir,
    manifest: PathBuf,
    results: PathBuf,
}

fn case(toml: &str) -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("probe.toml");
    std::fs::write(&manifest, toml).unwrap();
    let results = tmp.path().join("results");
    Case {
        _tmp: tmp,
        manifest,
        results,
    }
}

/// Runs `mpq run` and checks the failure contract; returns the error line.
fn fails(c: &Case, extra: &[&str], must_name: &[&str]) -> String {
    let rd = format!("runtime.results_dir={}", c.results.display());
    let mut args = vec!["run", c.manifest.to_str().unwrap(), "--quiet", "--set", &rd];
    args.extend_from_slice(extra);
    let out = mpq(&args);
    let err = stderr(&out);
    assert!(!out.status.success(), "expected failure, got success");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    for s in must_name {
        assert!(err.contains(s), "{err:?} should name {s:?}");
    }
    assert!(!c.results.exists(), "nothing may be created under results/");
    err
}

fn with(line_from: &str, line_to: &str) -> String {
    assert!(GOOD.contains(line_from));
    GOOD.replace(line_from, line_to)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn unknown_keys() {
    let c = case(&with("[search]", "[search]\ncolour = \"red\""));
    fails(&c, &[], &[&path_str(&c.manifest), "search.colour"]);
    let c = case(&format!("{GOOD}\n[extra]\nx = 1\n"));
    fails(&c, &[], &[&path_str(&c.manifest), "extra"]);
}

#[test]
fn wrong_type() {
    let c = case(&with("search_images = 16", "search_images = \"many\""));
    fails(&c, &[], &[&path_str(&c.manifest), "data.search_images"]);
}

#[test]
fn malformed_pairs() {
    for bad in ["W3A9", "W4", "w4a4x"] {
        let c = case(&with("pair = \"W4A8\"", &format!("pair = \"{bad}\"")));
        fails(&c, &[], &[&path_str(&c.manifest), "quant.pair", bad]);
    }
}

#[test]
fn bad_beta() {
    for bad in ["-0.1", "\"fast\""] {
        let c = case(&with(
            "strategy = \"greedy\"",
            &format!("strategy = \"greedy\"\nbeta = {bad}"),
        ));
        fails(&c, &[], &[&path_str(&c.manifest), "search.beta"]);
    }
    // From the command line too, named as such.
    let c = case(GOOD);
    fails(&c, &["--set", "search.beta=-1"], &["search.beta", "--set"]);
}

#[test]
fn missing_manifest() {
    let c = case(GOOD);
    std::fs::remove_file(&c.manifest).unwrap();
    fails(&c, &[], &[&path_str(&c.manifest)]);
}

#[test]
fn weights_missing_or_not_safetensors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.safetensors");
    let c = case(&with(
        "experiments/embedded/weights/resnet-tiny.safetensors",
        &path_str(&missing),
    ));
    fails(&c, &[], &[&path_str(&missing), "not found"]);

    let garbage = tmp.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a safetensors file at all").unwrap();
    let c = case(&with(
        "experiments/embedded/weights/resnet-tiny.safetensors",
        &path_str(&garbage),
    ));
    fails(&c, &[], &[&path_str(&garbage), "safetensors"]);
}

fn edited_weights(
    dir: &Path,
    edit: impl FnOnce(&mut std::collections::HashMap<String, candle_core::Tensor>),
) -> PathBuf {
    let arch = mpq_models::Arch::new(mpq_vocab::ArchName::ResnetTiny);
    let p = mpq_models::train::Params::init(&arch, 1, &candle_core::Device::Cpu).unwrap();
    let mut t = p.tensors();
    edit(&mut t);
    let path = dir.join("edited.safetensors");
    mpq_models::weights::save_weights(&t, &path).unwrap();
    path
}

#[test]
fn weights_lacking_a_tensor_or_with_a_wrong_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let w = edited_weights(tmp.path(), |t| {
        t.remove("layer2.0.conv1.weight");
    });
    let c = case(&with(
        "experiments/embedded/weights/resnet-tiny.safetensors",
        &path_str(&w),
    ));
    fails(&c, &[], &[&path_str(&w), "layer2.0.conv1.weight"]);

    let tmp = tempfile::tempdir().unwrap();
    let w = edited_weights(tmp.path(), |t| {
        t.insert(
            "fc.weight".into(),
            candle_core::Tensor::zeros(
                (10, 32),
                candle_core::DType::F32,
                &candle_core::Device::Cpu,
            )
            .unwrap(),
        );
    });
    let c = case(&with(
        "experiments/embedded/weights/resnet-tiny.safetensors",
        &path_str(&w),
    ));
    fails(
        &c,
        &[],
        &[&path_str(&w), "fc.weight", "[10, 32]", "[20, 48]"],
    );
}

#[test]
fn weights_with_a_non_finite_value() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let tmp = tempfile::tempdir().unwrap();
        let w = edited_weights(tmp.path(), |t| {
            let x = t["layer2.0.conv1.weight"].clone();
            let mut v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            v[7] = bad;
            t.insert(
                "layer2.0.conv1.weight".into(),
                candle_core::Tensor::from_vec(v, x.shape(), &candle_core::Device::Cpu).unwrap(),
            );
        });
        let c = case(&with(
            "experiments/embedded/weights/resnet-tiny.safetensors",
            &path_str(&w),
        ));
        fails(
            &c,
            &[],
            &[
                &path_str(&w),
                "layer2.0.conv1.weight",
                "non-finite",
                "index 7",
            ],
        );
    }
}

/// `experiment.name` names the run directory: anything but one plain path component would put
/// a run outside `results/`.
#[test]
fn experiment_names_that_would_escape_results() {
    let c = case(GOOD);
    let outside = c.results.parent().unwrap().join("escaped");
    let absolute = c.results.parent().unwrap().join("absolute");
    for name in [
        "../escaped".to_string(),
        "../../../elsewhere".to_string(),
        path_str(&absolute),
        "a/b".to_string(),
        "..".to_string(),
        ".hidden".to_string(),
    ] {
        let set = format!("experiment.name={name}");
        fails(
            &c,
            &["--set", &set],
            &["--set experiment.name", "experiment.name"],
        );
        assert!(
            !outside.exists() && !absolute.exists(),
            "{name}: written outside"
        );
    }
    let c = case(&with("name = \"bad-input-probe\"", "name = \"../escaped\""));
    fails(
        &c,
        &[],
        &[&path_str(&c.manifest), "experiment.name", "path component"],
    );
    assert!(!outside.exists());
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_device_without_the_feature() {
    let c = case(&format!("{GOOD}\n[runtime]\ndevice = \"cuda\"\n"));
    fails(&c, &[], &[&path_str(&c.manifest), "runtime.device", "cuda"]);
}

#[test]
fn validate_accepts_the_embedded_suite_and_rejects_bad_manifests() {
    let out = mpq(&["validate", "experiments"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let c = case(&with("pair = \"W4A8\"", "pair = \"W3A9\""));
    let out = mpq(&["validate", c.manifest.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("quant.pair"));
}
