//! Manifest layering and validation, on temporary files.
use mpq_runner::manifest::{load_with_env, BetaSetting, DeviceSpec, StrategyName};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

const MIN: &str = "[model]\nweights = \"w.safetensors\"\n";

#[test]
fn layers_override_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "defaults.toml",
        "[data]\nsearch_images = 100\ncalib_images = 10\n[runtime]\nbatch_size = 7\nthreads = 3\n",
    );
    let m = write(
        tmp.path(),
        "suite/exp.toml",
        &format!(
            "{MIN}[data]\nsearch_images = 200\ncalib_images = 20\n[runtime]\nbatch_size = 8\n"
        ),
    );
    let env = vec![
        ("MPQ_DATA__CALIB_IMAGES".to_string(), "30".to_string()),
        ("MPQ_RUNTIME__BATCH_SIZE".to_string(), "9".to_string()),
        ("MPQ_IMAGENET_DIR".to_string(), "/not/a/key".to_string()),
    ];
    let r = load_with_env(
        &m,
        &["runtime.batch_size=10".into(), "quant.pair=W4A4".into()],
        &env,
    )
    .unwrap();
    let mm = &r.manifest;
    assert_eq!(mm.experiment.name, "exp", "file stem by default");
    assert_eq!(mm.runtime.threads, 3, "from defaults.toml");
    assert_eq!(mm.data.search_images, 200, "manifest over defaults");
    assert_eq!(mm.data.calib_images, 30, "env over manifest");
    assert_eq!(mm.runtime.batch_size, 10, "--set over env");
    assert_eq!(mm.quant.pair.to_string(), "W4A4");
    assert_eq!(mm.quant.high.to_string(), "W8A8");
    assert_eq!(mm.search.strategy, StrategyName::Greedy);
    assert_eq!(mm.search.beta, BetaSetting::Fixed(0.0));
    assert_eq!(mm.runtime.device, DeviceSpec::Cpu);
}

#[test]
fn resolved_toml_round_trips_and_hash_tracks_values() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write(
        tmp.path(),
        "a.toml",
        &format!("{MIN}[search]\nbeta = \"auto\"\nstrategy = \"one-shot\"\n"),
    );
    let a = load_with_env(&m, &[], &[]).unwrap();
    let b = load_with_env(&m, &[], &[]).unwrap();
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.hash.len(), 64);
    assert_eq!(a.manifest.search.beta, BetaSetting::Auto);
    // The resolved TOML is itself a manifest resolving to the same thing.
    let again = write(tmp.path(), "again/a.toml", &a.toml);
    let c = load_with_env(&again, &[], &[]).unwrap();
    assert_eq!(c.manifest, a.manifest);
    assert_eq!(c.hash, a.hash);
    let d = load_with_env(&m, &["search.beta=0.5".into()], &[]).unwrap();
    assert_ne!(d.hash, a.hash);
    assert_eq!(d.manifest.search.beta, BetaSetting::Fixed(0.5));
    let e = load_with_env(&m, &["search.beta=1".into()], &[]).unwrap();
    assert_eq!(
        e.manifest.search.beta,
        BetaSetting::Fixed(1.0),
        "integers are numbers"
    );
}

fn error_of(text: &str, sets: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let m = write(tmp.path(), "bad.toml", text);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let e = load_with_env(&m, &sets, &env).unwrap_err().to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    (e, m.display().to_string())
}

#[test]
fn every_bad_value_names_file_and_key() {
    let cases: &[(&str, &str)] = &[
        ("[search]\ncolour = 1\n", "search.colour"),
        ("[extra]\nx = 1\n", "extra"),
        ("[data]\nsearch_images = \"x\"\n", "data.search_images"),
        ("[runtime]\nbatch_size = \"x\"\n", "runtime.batch_size"),
        ("[quant]\npair = \"W3A9\"\n", "quant.pair"),
        ("[quant]\npair = \"W4\"\n", "quant.pair"),
        ("[quant]\npair = \"w4a4x\"\n", "quant.pair"),
        ("[quant]\npair = \"W1A8\"\n", "quant.pair"),
        ("[quant]\npair = \"W8A8\"\n", "quant.pair"),
        ("[search]\nbeta = -0.1\n", "search.beta"),
        ("[search]\nbeta = \"fast\"\n", "search.beta"),
        ("[search]\nstrategy = \"best\"\n", "search.strategy"),
        ("[model]\narch = \"vgg\"\n", "model.arch"),
        ("[data]\nsearch_images = 0\n", "data.search_images"),
    ];
    for (body, key) in cases {
        let text = format!("{MIN}{body}").replace(
            "[model]\nweights = \"w.safetensors\"\n[model]\n",
            "[model]\nweights = \"w.safetensors\"\n",
        );
        let (e, file) = error_of(&text, &[], &[]);
        assert!(e.contains(&file), "{e} names {file}");
        assert!(e.contains(key), "{e} names {key}");
    }
}

#[test]
fn cuda_without_the_feature_is_an_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    for dev in ["cuda", "cuda:1"] {
        let (e, file) = error_of(&format!("{MIN}[runtime]\ndevice = \"{dev}\"\n"), &[], &[]);
        assert!(
            e.contains(&file) && e.contains("runtime.device") && e.contains("--features cuda"),
            "{e}"
        );
    }
}

#[test]
fn env_and_set_errors_name_their_origin() {
    let (e, _) = error_of(MIN, &[], &[("MPQ_SEARCH__BETA", "-2")]);
    assert!(
        e.contains("environment variable MPQ_SEARCH__BETA") && e.contains("search.beta"),
        "{e}"
    );
    let (e, _) = error_of(MIN, &["search.beta=fast"], &[]);
    assert!(
        e.contains("--set search.beta") && e.contains("search.beta"),
        "{e}"
    );
    let (e, _) = error_of(MIN, &["nonsense"], &[]);
    assert!(e.contains("key=value"), "{e}");
}

#[test]
fn missing_manifest_and_missing_weights_key() {
    let e = load_with_env(Path::new("/no/such/manifest.toml"), &[], &[])
        .unwrap_err()
        .to_string();
    assert_eq!(e, "/no/such/manifest.toml: manifest not found");
    let (e, _) = error_of("[search]\nstrategy = \"greedy\"\n", &[], &[]);
    assert!(e.contains("model.weights"), "{e}");
}

#[test]
fn finds_manifests_recursively_without_defaults_or_baselines() {
    let tmp = tempfile::tempdir().unwrap();
    for f in [
        "defaults.toml",
        "a/x.toml",
        "a/b/y.toml",
        "baselines/lit.toml",
        "a/readme.md",
    ] {
        write(tmp.path(), f, "");
    }
    let found: Vec<String> = mpq_runner::manifest::find_manifests(tmp.path())
        .iter()
        .map(|p| p.strip_prefix(tmp.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(found, vec!["a/b/y.toml", "a/x.toml"]);
}
