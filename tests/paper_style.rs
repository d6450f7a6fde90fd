//! A paper-style manifest (resnet18 in torchvision's names, ImageNet-style data) run end to end
//! through the real binary on tiny generated data: random weights written to a safetensors
//! file, a generated image folder of JPEG and PNG files, and the same folder prepared with
//! `mpq data prepare`. Both data sources must give the same run.
mod common;
use candle_core::{Device, Tensor};
use common::*;
use mpq_data::Rng;
use mpq_models::Arch;
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// resnet18 with random weights and batch-norm statistics, in torchvision's tensor names.
fn write_weights(path: &Path) {
    write_weights_of(mpq_vocab::ArchName::Resnet18, path);
}

/// `arch` with random weights and batch-norm statistics, in the reference library's names.
fn write_weights_of(arch: mpq_vocab::ArchName, path: &Path) {
    let arch = Arch::new(arch);
    let mut t = mpq_models::train::Params::init(&arch, 5, &Device::Cpu)
        .unwrap()
        .tensors();
    let mut r = Rng::new(6);
    for l in &arch.layers {
        let Some(bn) = &l.bn else { continue };
        for (f, lo, hi) in [("running_mean", -0.1, 0.1), ("running_var", 0.5, 1.5)] {
            let v: Vec<f32> = (0..l.out_ch).map(|_| r.range(lo, hi) as f32).collect();
            t.insert(
                format!("{bn}.{f}"),
                Tensor::from_vec(v, l.out_ch, &Device::Cpu).unwrap(),
            );
        }
    }
    mpq_models::weights::save_weights(&t, path).unwrap();
}

/// Three classes of six images each, 48x40 or 40x52, alternately JPEG and PNG.
fn write_folder(root: &Path) {
    for (c, class) in ["n01440764", "n01443537", "n01484850"].iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for k in 0..6u32 {
            let (w, h) = if k % 2 == 0 { (48, 40) } else { (40, 52) };
            let img = image::RgbImage::from_fn(w, h, |x, y| {
                let v = (x * (c as u32 + 1) * 9 + y * (k + 2) * 5) as u8;
                image::Rgb([v, v.wrapping_mul(3), 255 - v])
            });
            let ext = if k % 2 == 0 { "JPEG" } else { "png" };
            img.save_with_format(
                root.join(class).join(format!("img{k}.{ext}")),
                if k % 2 == 0 {
                    image::ImageFormat::Jpeg
                } else {
                    image::ImageFormat::Png
                },
            )
            .unwrap();
        }
    }
}

/// `mpq data prepare` of the folder at 40/32, f32.
fn prepare(val: &Path, prepared: &Path) -> std::process::Output {
    let out = mpq(&[
        "data",
        "prepare",
        val.to_str().unwrap(),
        "--out",
        prepared.to_str().unwrap(),
        "--resize",
        "40",
        "--crop",
        "32",
        "--dtype",
        "f32",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

fn manifest(dir: &Path, name: &str, data: &str, weights: &Path) -> PathBuf {
    let m = dir.join(format!("{name}.toml"));
    std::fs::write(
        &m,
        format!(
            r#"
[experiment]
name = "{name}"
[model]
arch = "resnet18"
weights = "{}"
[data]
{data}
resize = 40
crop = 32
subset_seed = 3
calib_images = 4
search_images = 10
test_images = 4
[quant]
pair = "W4A8"
[search]
strategy = "greedy"
max_steps = 2
[runtime]
batch_size = 8
"#,
            weights.display()
        ),
    )
    .unwrap();
    m
}

fn steps_top1(results: &Path, experiment: &str) -> (Vec<Option<f64>>, DataFrame) {
    let dir = single_run_dir(results, experiment);
    let steps = mpq_runner::store::read_parquet(&dir.join("steps.parquet")).unwrap();
    let runs = mpq_runner::store::read_parquet(&dir.join("runs.parquet")).unwrap();
    let top1 = steps
        .column("top1")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    (top1, runs)
}

#[test]
fn resnet18_on_an_image_folder_and_its_prepared_file_runs_to_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("resnet18.safetensors");
    write_weights(&weights);
    let val = tmp.path().join("val");
    write_folder(&val);
    let results = tmp.path().join("results");
    let rd = format!("runtime.results_dir={}", results.display());

    let prepared = tmp.path().join("val.safetensors");
    let out = prepare(&val, &prepared);
    assert!(String::from_utf8_lossy(&out.stdout).contains("18 images of 3 classes (0 skipped)"));

    let folder = manifest(
        tmp.path(),
        "r18-folder",
        &format!("dataset = \"imagefolder\"\npath = \"{}\"", val.display()),
        &weights,
    );
    let tensors = manifest(
        tmp.path(),
        "r18-tensors",
        &format!("dataset = \"tensors\"\npath = \"{}\"", prepared.display()),
        &weights,
    );
    for m in [&folder, &tensors] {
        let out = mpq(&["run", m.to_str().unwrap(), "--quiet", "--set", &rd]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let (a, runs) = steps_top1(&results, "r18-folder");
    let (b, _) = steps_top1(&results, "r18-tensors");
    assert_eq!(
        a.len(),
        3,
        "step 0 and the two steps search.max_steps allows"
    );
    assert_eq!(a, b, "the prepared file holds exactly the folder's images");
    assert_eq!(first_u64(&runs, "n_layers"), Some(21));
    // The 4 images calibration and search left are the held-out ones.
    assert_eq!(first_u64(&runs, "n_test_images"), Some(4));
    assert_eq!(first_str(&runs, "arch"), "resnet18");

    // A prepared file made with another crop than the manifest asks for is refused.
    let out = mpq(&[
        "run",
        tensors.to_str().unwrap(),
        "--quiet",
        "--set",
        &rd,
        "--set",
        "data.crop=30",
    ]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("val.safetensors: tensor \"images\": images are 32x32")
            && err.contains("data.crop = 30"),
        "{err}"
    );
}

#[test]
fn an_empty_data_path_without_the_imagenet_variable_is_one_line_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("resnet18.safetensors");
    write_weights(&weights);
    let m = manifest(tmp.path(), "r18-env", "dataset = \"imagefolder\"", &weights);
    let results = tmp.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_mpq"))
        .args(["run", m.to_str().unwrap(), "--quiet", "--set"])
        .arg(format!("runtime.results_dir={}", results.display()))
        .current_dir(root())
        .env_remove("MPQ_IMAGENET_DIR")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("r18-env.toml: data.path: empty, and MPQ_IMAGENET_DIR is not set"),
        "{err}"
    );
    assert!(!results.exists());
    // With the variable set, the folder it names is used (here: one that does not exist).
    let out = Command::new(env!("CARGO_BIN_EXE_mpq"))
        .args(["run", m.to_str().unwrap(), "--quiet", "--set"])
        .arg(format!("runtime.results_dir={}", results.display()))
        .current_dir(root())
        .env("MPQ_IMAGENET_DIR", tmp.path().join("imagenet/val"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("imagenet/val: image folder not found"),
        "{err}"
    );
}

#[test]
fn skipped_corrupt_images_are_counted_in_the_run_record() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("resnet18.safetensors");
    write_weights(&weights);
    let val = tmp.path().join("val");
    write_folder(&val);
    std::fs::write(
        val.join("n01443537/broken.JPEG"),
        b"\xff\xd8\xff not a jpeg",
    )
    .unwrap();
    let m = manifest(
        tmp.path(),
        "r18-skip",
        &format!(
            "dataset = \"imagefolder\"\npath = \"{}\"\nskip_corrupt = true",
            val.display()
        ),
        &weights,
    );
    let results = tmp.path().join("results");
    let rd = format!("runtime.results_dir={}", results.display());
    // Search on the whole pool (19 files, one undecodable), one step.
    let out = mpq(&[
        "run",
        m.to_str().unwrap(),
        "--quiet",
        "--set",
        &rd,
        "--set",
        "data.search_split=all",
        "--set",
        "data.search_images=19",
        "--set",
        "data.test_images=0",
        "--set",
        "search.max_steps=1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 undecodable image(s) skipped"),
        "{}",
        stderr(&out)
    );
    let (_, runs) = steps_top1(&results, "r18-skip");
    assert_eq!(first_u64(&runs, "skipped_images"), Some(1));
    assert_eq!(first_u64(&runs, "n_search_images"), Some(18));
}

/// Every baseline manifest of the paper suite (`experiments/paper/ptq/`: each post-training
/// method at ResNet50 W4A4 and W4A8, ResNet18 W4A8, MobileNetV2 W6A6) validates and runs end to
/// end as written, on generated data in place of ImageNet: random weights of its network, the
/// prepared 32x32 folder, few images, and the methods' iteration counts cut down.
#[test]
fn the_paper_suites_baseline_manifests_run_end_to_end_on_generated_data() {
    let out = mpq(&["validate", "experiments/paper/ptq"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tmp = tempfile::tempdir().unwrap();
    let val = tmp.path().join("val");
    write_folder(&val);
    let prepared = tmp.path().join("val.safetensors");
    prepare(&val, &prepared);
    let results = tmp.path().join("results");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(root().join("experiments/paper/ptq"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    manifests.sort();
    assert_eq!(manifests.len(), 20, "5 methods x 4 networks and pairs");
    let mut weights: Vec<(mpq_vocab::ArchName, PathBuf)> = Vec::new();
    for m in &manifests {
        let text: toml::Table = std::fs::read_to_string(m).unwrap().parse().unwrap();
        let arch: mpq_vocab::ArchName = text["model"]["arch"].as_str().unwrap().parse().unwrap();
        let method = text["quant"]["method"].as_str().unwrap().to_string();
        let w = match weights.iter().find(|w| w.0 == arch) {
            Some(w) => w.1.clone(),
            None => {
                let w = tmp.path().join(format!("{arch}.safetensors"));
                write_weights_of(arch, &w);
                weights.push((arch, w.clone()));
                w
            }
        };
        let sets = [
            format!("model.weights={}", w.display()),
            "data.dataset=tensors".to_string(),
            format!("data.path={}", prepared.display()),
            "data.resize=40".to_string(),
            "data.crop=32".to_string(),
            "data.calib_images=4".to_string(),
            "data.search_split=search".to_string(),
            "data.search_images=10".to_string(),
            "data.test_images=4".to_string(),
            "quant.adaround.iterations=2".to_string(),
            "quant.adaround.batch_size=2".to_string(),
            "quant.lapq.max_evaluations=4".to_string(),
            "quant.lapq.norms=[2.0, 3.0, 4.0]".to_string(),
            "quant.lapq.search_points=4".to_string(),
            "quant.mmse.search_points=10".to_string(),
            "runtime.batch_size=8".to_string(),
            format!("runtime.results_dir={}", results.display()),
        ];
        let mut args = vec!["run", m.to_str().unwrap(), "--quiet"];
        for s in &sets {
            args.extend(["--set", s.as_str()]);
        }
        let t0 = std::time::Instant::now();
        let out = mpq(&args);
        assert!(out.status.success(), "{}: {}", m.display(), stderr(&out));
        eprintln!("{}: {:.1} s", m.display(), t0.elapsed().as_secs_f64());
        let name = m.file_stem().unwrap().to_str().unwrap();
        let dir = single_run_dir(&results, name);
        let runs = mpq_runner::store::read_parquet(&dir.join("runs.parquet")).unwrap();
        let steps = mpq_runner::store::read_parquet(&dir.join("steps.parquet")).unwrap();
        assert_eq!(first_str(&runs, "strategy"), "uniform", "{name}");
        assert_eq!(first_str(&runs, "method"), method, "{name}");
        assert_eq!(first_str(&runs, "arch"), arch.to_string(), "{name}");
        assert_eq!(first_u64(&runs, "n_test_images"), Some(4), "{name}");
        assert_eq!(
            steps.height(),
            2,
            "{name}: step 0 and every layer at the pair"
        );
        let n = first_u64(&runs, "n_layers").unwrap() as usize;
        let low = steps
            .column("low_layers")
            .unwrap()
            .str()
            .unwrap()
            .get(1)
            .unwrap();
        assert_eq!(low.split(',').count(), n, "{name}");
        assert!(
            steps
                .column("test_top1")
                .unwrap()
                .f64()
                .unwrap()
                .null_count()
                == 0,
            "{name}"
        );
        let iterations = first_u64(&runs, "method_iterations");
        match method.as_str() {
            "adaround" => assert_eq!(iterations, Some(2 * n as u64), "{name}"),
            "lapq" => assert!(iterations.is_some_and(|i| (1..=4).contains(&i)), "{name}"),
            "mmse" | "aciq" => assert_eq!(iterations, Some(0), "{name}"),
            _ => assert_eq!(iterations, None, "{name}: rtn applies nothing"),
        }
    }
}
