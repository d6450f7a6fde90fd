//! Manifest layering and validation, on temporary files.
use mpq_runner::discover::find_manifests;
use mpq_runner::manifest::{defaults_for, load_with_env, Manifest};
use mpq_vocab::{ArchName, BetaSetting, BitPair, Dataset, DeviceSpec, Split, StrategyName};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The smallest valid manifest.
const MIN: &str = "[model]\nweights = \"w.safetensors\"\n";

#[test]
fn each_layer_overrides_the_one_before() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write(
        tmp.path(),
        "suite/exp.toml",
        "[model]\nweights = \"w.safetensors\"\n[runtime]\nbatch_size = 8\n[search]\nbeta = 0.5\n",
    );
    let r = |sets: &[&str], env: &[(&str, &str)]| {
        load_with_env(&m, &strings(sets), &pairs(env))
            .unwrap()
            .manifest
    };

    // Built-in defaults, then the manifest (no defaults.toml yet).
    let built_in = r(&[], &[]);
    assert_eq!(built_in.runtime.threads, 0, "built-in");
    assert_eq!(built_in.data.search_images, 2048, "built-in");
    assert_eq!(built_in.runtime.batch_size, 8, "manifest over built-in");

    // defaults.toml over built-in, under the manifest.
    write(
        tmp.path(),
        "defaults.toml",
        "[data]\nsearch_images = 100\n[runtime]\nbatch_size = 7\nthreads = 3\n",
    );
    let d = r(&[], &[]);
    assert_eq!(d.data.search_images, 100, "defaults.toml over built-in");
    assert_eq!(d.runtime.threads, 3, "defaults.toml over built-in");
    assert_eq!(d.runtime.batch_size, 8, "manifest over defaults.toml");
    assert_eq!(d.search.beta, BetaSetting::Fixed(0.5));

    // The nearest defaults.toml wins over one further up.
    write(
        tmp.path(),
        "suite/defaults.toml",
        "[runtime]\nthreads = 5\n",
    );
    assert_eq!(r(&[], &[]).runtime.threads, 5, "nearest defaults.toml");
    assert_eq!(
        r(&[], &[]).data.search_images,
        2048,
        "only the nearest defaults.toml is a layer"
    );
    std::fs::remove_file(tmp.path().join("suite/defaults.toml")).unwrap();

    // Environment over the manifest; only MPQ_X__Y variables are keys.
    let env = [
        ("MPQ_RUNTIME__BATCH_SIZE", "9"),
        ("MPQ_SEARCH__BETA", "0.02"),
        ("MPQ_DATA__CALIB_IMAGES", "30"),
        ("MPQ_IMAGENET_DIR", "/not/a/key"),
        ("MPQ_RUNTIME", "not a key either"),
        ("OTHER__THREADS", "11"),
    ];
    let e = r(&[], &env);
    assert_eq!(e.runtime.batch_size, 9, "env over manifest");
    assert_eq!(e.search.beta, BetaSetting::Fixed(0.02), "env over manifest");
    assert_eq!(e.data.calib_images, 30, "env over built-in");
    assert_eq!(e.runtime.threads, 3, "non-MPQ variables are ignored");

    // --set over the environment; later --set over earlier.
    let s = r(
        &[
            "runtime.batch_size=10",
            "search.beta=auto",
            "runtime.threads=1",
            "runtime.threads = 2",
        ],
        &env,
    );
    assert_eq!(s.runtime.batch_size, 10, "--set over env");
    assert_eq!(s.search.beta, BetaSetting::Auto, "--set over env");
    assert_eq!(s.runtime.threads, 2, "later --set over earlier");
    assert_eq!(s.data.calib_images, 30, "env kept where --set is silent");
    assert_eq!(s.data.search_images, 100, "defaults.toml kept");
}

#[test]
fn built_in_defaults_and_set_value_parsing() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write(tmp.path(), "my-exp.toml", MIN);
    let r = load_with_env(&m, &[], &[]).unwrap().manifest;
    assert_eq!(r.experiment.name, "my-exp", "file stem by default");
    assert_eq!(r.experiment.seed, 0);
    assert_eq!(r.experiment.description, "");
    assert_eq!(r.model.arch, ArchName::ResnetTiny);
    assert_eq!(r.model.weights, PathBuf::from("w.safetensors"));
    assert_eq!(r.data.dataset, Dataset::Embedded);
    assert_eq!(r.data.seed, 0);
    assert_eq!(r.data.calib_images, 256);
    assert_eq!(r.data.search_images, 2048);
    assert_eq!(r.data.test_images, 5000);
    assert_eq!(r.data.test_split, Split::Test);
    assert_eq!(r.data.calib_split, Split::Calibration);
    assert_eq!(r.data.search_split, Split::Search);
    assert_eq!(r.quant.pair, BitPair { w: 4, a: 8 });
    assert_eq!(r.quant.high, BitPair { w: 8, a: 8 });
    assert_eq!(r.search.strategy, StrategyName::Greedy);
    assert_eq!(r.search.beta, BetaSetting::Fixed(0.0));
    assert_eq!(r.runtime.device, DeviceSpec::Cpu);
    assert_eq!(r.runtime.batch_size, 256);
    assert_eq!(r.runtime.threads, 0);
    assert_eq!(r.runtime.results_dir, PathBuf::from("results"));

    // Values that are not TOML are strings; TOML values keep their type.
    let sets = strings(&[
        "quant.pair=w4a4",
        "quant.high=W6A6",
        "search.strategy=one-shot",
        "search.beta=1",
        "data.calib_split=train",
        "experiment.name=\"007\"",
        "experiment.description=two words",
        "model.arch=mobilenet-tiny",
        "runtime.device=cpu",
    ]);
    let r = load_with_env(&m, &sets, &[]).unwrap().manifest;
    assert_eq!(r.quant.pair, BitPair { w: 4, a: 4 });
    assert_eq!(r.quant.high, BitPair { w: 6, a: 6 });
    assert_eq!(r.search.strategy, StrategyName::OneShot);
    assert_eq!(
        r.search.beta,
        BetaSetting::Fixed(1.0),
        "integers are numbers"
    );
    assert_eq!(r.data.calib_split, Split::Train);
    assert_eq!(r.experiment.name, "007");
    assert_eq!(r.experiment.description, "two words");
    assert_eq!(r.model.arch, ArchName::MobilenetTiny);

    let m0 = write(
        tmp.path(),
        "zero.toml",
        &format!("{MIN}[search]\nbeta = 0\n"),
    );
    let r = load_with_env(&m0, &[], &[]).unwrap().manifest;
    assert_eq!(r.search.beta, BetaSetting::Fixed(0.0), "integer 0 is 0.0");
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
    assert_eq!(a.toml, b.toml, "deterministic");
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.hash.len(), 64);
    assert!(a.hash.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(a.path, m);
    assert_eq!(a.manifest.search.beta, BetaSetting::Auto);

    // Every key is written.
    let t: toml::Table = toml::from_str(&a.toml).unwrap();
    let keys = |s: &str| {
        let mut k: Vec<&str> = t[s]
            .as_table()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        k.sort();
        k
    };
    assert_eq!(t.len(), 7);
    // An optional key left unset (`experiment.paper_model`) has no TOML value: it is absent.
    assert_eq!(
        keys("experiment"),
        ["description", "name", "repeats", "seed"]
    );
    assert_eq!(keys("model"), ["arch", "weights"]);
    assert_eq!(
        keys("data"),
        [
            "allow_empty_classes",
            "calib_images",
            "calib_split",
            "crop",
            "dataset",
            "interpolation",
            "mean",
            "path",
            "resize",
            "search_images",
            "search_split",
            "seed",
            "skip_corrupt",
            "std",
            "subset_seed",
            "test_images",
            "test_split"
        ]
    );
    // `quant.bias_correction` is unset: absent.
    assert_eq!(
        keys("quant"),
        [
            "aciq",
            "adaround",
            "first_last_high",
            "high",
            "lapq",
            "method",
            "mmse",
            "pair"
        ]
    );
    assert_eq!(
        keys("search"),
        [
            "beta",
            "layers",
            "max_layers",
            "max_steps",
            "screen_fraction",
            "screen_z",
            "strategy"
        ]
    );
    assert_eq!(
        keys("runtime"),
        [
            "batch_size",
            "cache_mb",
            "device",
            "parallel",
            "prefix_reuse",
            "results_dir",
            "threads"
        ]
    );
    assert_eq!(t["experiment"]["name"].as_str(), Some("a"));
    assert_eq!(t["quant"]["pair"].as_str(), Some("W4A8"));

    // The resolved TOML is itself a manifest resolving to the same thing, wherever it lies
    // (here under a defaults.toml that it overrides entirely).
    write(
        tmp.path(),
        "again/defaults.toml",
        "[data]\nsearch_images = 3\n",
    );
    let again = write(tmp.path(), "again/other-name.toml", &a.toml);
    let c = load_with_env(&again, &[], &[]).unwrap();
    assert_eq!(c.manifest, a.manifest);
    assert_eq!(c.toml, a.toml);
    assert_eq!(c.hash, a.hash);

    // Any changed value changes the hash; the same value from another layer does not.
    let d = load_with_env(&m, &strings(&["search.beta=0.5"]), &[]).unwrap();
    assert_ne!(d.hash, a.hash);
    assert_eq!(d.manifest.search.beta, BetaSetting::Fixed(0.5));
    let e = load_with_env(&m, &[], &pairs(&[("MPQ_DATA__SEED", "1")])).unwrap();
    assert_ne!(e.hash, a.hash);
    let f = load_with_env(&m, &strings(&["search.strategy=one-shot"]), &[]).unwrap();
    assert_eq!(f.hash, a.hash);
    let g = load_with_env(&m, &strings(&["search.beta=-0.0"]), &[]).unwrap();
    let h = load_with_env(&m, &strings(&["search.beta=0"]), &[]).unwrap();
    assert_eq!(g.hash, h.hash, "-0.0 and 0 are the same beta");
}

/// Loads `text` as `dir/bad.toml`, expects an error, checks it is one line, and returns it
/// with the manifest's path.
fn error_in(dir: &Path, text: &str, sets: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let m = write(dir, "bad.toml", text);
    let e = load_with_env(&m, &strings(sets), &pairs(env))
        .expect_err(text)
        .to_string();
    assert!(!e.contains('\n') && !e.contains('\r'), "one line: {e}");
    (e, m.display().to_string())
}

fn error_of(text: &str, sets: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let tmp = tempfile::tempdir().unwrap();
    error_in(tmp.path(), text, sets, env)
}

/// `e` starts with `<file>: <key>: `.
fn assert_names(e: &str, file: &str, key: &str) {
    let prefix = format!("{file}: {key}: ");
    assert!(e.starts_with(&prefix), "{e:?} should start with {prefix:?}");
    assert!(e.len() > prefix.len(), "{e:?} has a message");
}

#[test]
fn every_bad_value_names_file_and_key() {
    let cases: &[(&str, &str)] = &[
        ("[model]\ncolour = 1\n", "model.colour"),
        ("[search]\ncolour = 1\n", "search.colour"),
        ("[extra]\nx = 1\n", "extra"),
        ("colour = 1\n", "colour"),
        ("[data]\nsearch_images = \"x\"\n", "data.search_images"),
        ("[runtime]\nbatch_size = \"x\"\n", "runtime.batch_size"),
        ("[runtime]\nbatch_size = 1.5\n", "runtime.batch_size"),
        ("[experiment]\nseed = -1\n", "experiment.seed"),
        ("[experiment]\nname = 3\n", "experiment.name"),
        ("[experiment]\nname = \"\"\n", "experiment.name"),
        ("[quant]\npair = \"W3A9\"\n", "quant.pair"),
        ("[quant]\npair = \"W4\"\n", "quant.pair"),
        ("[quant]\npair = \"w4a4x\"\n", "quant.pair"),
        ("[quant]\npair = \"W1A8\"\n", "quant.pair"),
        ("[quant]\npair = 48\n", "quant.pair"),
        ("[quant]\nhigh = \"W9A9\"\n", "quant.high"),
        ("[quant]\npair = \"W8A8\"\n", "quant.pair"),
        ("[search]\nbeta = -0.1\n", "search.beta"),
        ("[search]\nbeta = nan\n", "search.beta"),
        ("[search]\nbeta = inf\n", "search.beta"),
        ("[search]\nbeta = \"fast\"\n", "search.beta"),
        ("[search]\nstrategy = \"best\"\n", "search.strategy"),
        ("[model]\narch = \"vgg\"\n", "model.arch"),
        ("[data]\ndataset = \"imagenet\"\n", "data.dataset"),
        ("[data]\ncalib_split = \"val\"\n", "data.calib_split"),
        (
            "[data]\ndataset = \"imagefolder\"\ncalib_split = \"train\"\n",
            "data.calib_split",
        ),
        ("[data]\ncrop = 300\n", "data.crop"),
        ("[data]\ncrop = 0\n", "data.crop"),
        (
            "[data]\ninterpolation = \"nearest\"\n",
            "data.interpolation",
        ),
        ("[data]\nstd = [0.2, 0.0, 0.2]\n", "data.std"),
        ("[data]\nmean = [0.5, 0.5]\n", "data.mean"),
        ("[data]\nsearch_split = \"\"\n", "data.search_split"),
        ("[data]\nsearch_images = 0\n", "data.search_images"),
        ("[data]\ncalib_images = 0\n", "data.calib_images"),
        ("[runtime]\nbatch_size = 0\n", "runtime.batch_size"),
        ("[runtime]\ndevice = \"gpu\"\n", "runtime.device"),
        ("[runtime]\ndevice = \"cuda:x\"\n", "runtime.device"),
        ("[experiment]\nrepeats = 0\n", "experiment.repeats"),
        ("[experiment]\nrepeats = -1\n", "experiment.repeats"),
        ("[resources]\ntime = \"1h\"\n", "resources.time"),
        ("[resources]\nmem = \"16GB\"\n", "resources.mem"),
        ("[resources]\ngpus = -1\n", "resources.gpus"),
        (
            "[resources]\npartition = \"gpu a100\"\n",
            "resources.partition",
        ),
        ("[resources]\nextra = [\"--output=x\"]\n", "resources.extra"),
        (
            "[resources]\nextra = [\"--qos=a\\nrm -rf /\"]\n",
            "resources.extra",
        ),
        (
            "[resources]\ntime = 5\nsignal_before_s = 300\n",
            "resources.signal_before_s",
        ),
        ("[resources]\ncolour = 1\n", "resources.colour"),
    ];
    for (body, key) in cases {
        // Sections other than [model] go after MIN; [model] ones replace it.
        let text = if body.starts_with("[model]") {
            format!("[model]\nweights = \"w.safetensors\"\n{}", &body[8..])
        } else if body.starts_with('[') {
            format!("{MIN}{body}")
        } else {
            format!("{body}{MIN}")
        };
        let (e, file) = error_of(&text, &[], &[]);
        assert_names(&e, &file, key);
    }
}

#[test]
fn specific_messages() {
    let (e, _) = error_of(&format!("{MIN}[quant]\npair = \"W3A9\"\n"), &[], &[]);
    assert!(e.contains("W3A9") && e.contains("2 <= x, y <= 8"), "{e}");
    let (e, _) = error_of(&format!("{MIN}[search]\nbeta = \"fast\"\n"), &[], &[]);
    assert!(e.contains("\"fast\"") && e.contains("auto"), "{e}");
    let (e, _) = error_of(&format!("{MIN}[search]\ncolour = 1\n"), &[], &[]);
    assert!(
        e.contains("unknown key") && e.contains("strategy, beta"),
        "{e}"
    );
    let (e, _) = error_of(&format!("{MIN}arch = \"vgg\"\n"), &[], &[]);
    assert!(e.contains("vgg") && e.contains("resnet-tiny"), "{e}");
    let (e, _) = error_of(&format!("{MIN}[search]\nstrategy = \"best\"\n"), &[], &[]);
    assert!(e.contains("best") && e.contains("one-shot"), "{e}");
    // A step limit on a strategy that has no steps to limit, named by file and key.
    for strategy in ["uniform", "exhaustive"] {
        let (e, file) = error_of(
            &format!("{MIN}[search]\nstrategy = \"{strategy}\"\nmax_steps = 2\n"),
            &[],
            &[],
        );
        assert_names(&e, &file, "search.max_steps");
        assert!(e.contains("a step limit does not apply"), "{e}");
    }
}

#[test]
fn toml_syntax_errors_are_one_line_naming_the_file() {
    let (e, file) = error_of("[model]\nweights = = 1\n", &[], &[]);
    assert!(e.starts_with(&format!("{file}: ")), "{e}");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn errors_in_defaults_toml_name_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = write(tmp.path(), "defaults.toml", "[data]\nsearch_images = 0\n");
    let (e, _) = error_in(&tmp.path().join("sub"), MIN, &[], &[]);
    assert_names(&e, &d.display().to_string(), "data.search_images");
    write(tmp.path(), "defaults.toml", "[data]\ncolour = 0\n");
    let (e, _) = error_in(&tmp.path().join("sub"), MIN, &[], &[]);
    assert_names(&e, &d.display().to_string(), "data.colour");
}

#[test]
fn env_and_set_errors_name_their_origin() {
    let (e, _) = error_of(MIN, &[], &[("MPQ_SEARCH__BETA", "-2")]);
    assert_names(&e, "environment variable MPQ_SEARCH__BETA", "search.beta");
    let (e, _) = error_of(MIN, &[], &[("MPQ_SEARCH__COLOUR", "2")]);
    assert_names(
        &e,
        "environment variable MPQ_SEARCH__COLOUR",
        "search.colour",
    );
    let (e, _) = error_of(MIN, &[], &[("MPQ_RUNTIME__BATCH_SIZE", "0")]);
    assert_names(
        &e,
        "environment variable MPQ_RUNTIME__BATCH_SIZE",
        "runtime.batch_size",
    );
    let (e, _) = error_of(MIN, &["search.beta=fast"], &[]);
    assert_names(&e, "--set search.beta", "search.beta");
    let (e, _) = error_of(MIN, &["model.colour=1"], &[]);
    assert_names(&e, "--set model.colour", "model.colour");
    let (e, _) = error_of(MIN, &["quant.pair=W4"], &[]);
    assert_names(&e, "--set quant.pair", "quant.pair");
    let (e, _) = error_of(MIN, &["model.arch=vgg"], &[]);
    assert_names(&e, "--set model.arch", "model.arch");
    let (e, _) = error_of(MIN, &["model.weights="], &[]);
    assert_names(&e, "--set model.weights", "model.weights");
    // The lower pair equal to the high one blames the later of the two settings.
    let (e, _) = error_of(MIN, &["quant.high=W4A8"], &[]);
    assert_names(&e, "--set quant.high", "quant.high");
    let (e, _) = error_of(MIN, &[], &[("MPQ_QUANT__PAIR", "W8A8")]);
    assert_names(&e, "environment variable MPQ_QUANT__PAIR", "quant.pair");
    // Malformed --set options.
    for bad in ["nonsense", "=1", ".x=1", "search..beta=1", "Search.Beta=1"] {
        let (e, _) = error_of(MIN, &[bad], &[]);
        assert!(
            e.starts_with(&format!("--set {bad}: ")) && e.contains("<section>.<key>=<value>"),
            "{e}"
        );
    }
}

#[test]
fn missing_manifest_and_missing_weights() {
    let e = load_with_env(Path::new("/no/such/manifest.toml"), &[], &[])
        .unwrap_err()
        .to_string();
    assert_eq!(e, "/no/such/manifest.toml: manifest not found");
    let tmp = tempfile::tempdir().unwrap();
    let e = load_with_env(tmp.path(), &[], &[]).unwrap_err().to_string();
    assert!(e.ends_with(": manifest not found"), "a directory: {e}");

    // model.weights is required; left at its built-in default, the manifest is blamed.
    let (e, file) = error_of("[search]\nstrategy = \"greedy\"\n", &[], &[]);
    assert_names(&e, &file, "model.weights");
    let (e, file) = error_of("[model]\nweights = \"\"\n", &[], &[]);
    assert_names(&e, &file, "model.weights");
}

#[test]
fn cuda_devices_need_the_feature() {
    for dev in ["cuda", "cuda:1"] {
        let text = format!("{MIN}[runtime]\ndevice = \"{dev}\"\n");
        if cfg!(feature = "cuda") {
            let tmp = tempfile::tempdir().unwrap();
            let m = write(tmp.path(), "gpu.toml", &text);
            let r = load_with_env(&m, &[], &[]).unwrap();
            let want = if dev == "cuda" { 0 } else { 1 };
            assert_eq!(r.manifest.runtime.device, DeviceSpec::Cuda(want));
        } else {
            let (e, file) = error_of(&text, &[], &[]);
            assert_names(&e, &file, "runtime.device");
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
    if !cfg!(feature = "cuda") {
        let (e, _) = error_of(MIN, &["runtime.device=cuda:0"], &[]);
        assert_names(&e, "--set runtime.device", "runtime.device");
    }
}

#[test]
fn finds_manifests_recursively_without_defaults_or_baselines() {
    let tmp = tempfile::tempdir().unwrap();
    for f in [
        "defaults.toml",
        "a/x.toml",
        "a/b/y.toml",
        "a/b/defaults.toml",
        "baselines/lit.toml",
        "a/baselines/lit.toml",
        "a/readme.md",
        "z.toml",
    ] {
        write(tmp.path(), f, "");
    }
    let found: Vec<String> = find_manifests(tmp.path())
        .iter()
        .map(|p| p.strip_prefix(tmp.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(found, vec!["a/b/y.toml", "a/x.toml", "z.toml"]);
    let one = tmp.path().join("a/x.toml");
    assert_eq!(find_manifests(&one), vec![one]);
    assert!(find_manifests(&tmp.path().join("nothing")).is_empty());
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn project_defaults_match_the_built_in_ones() {
    // experiments/defaults.toml restates the built-in defaults, so a manifest under it resolves
    // as it would without it.
    let text = std::fs::read_to_string(repo().join("experiments/defaults.toml")).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    assert!(
        t.get("model").and_then(|m| m.get("weights")).is_none(),
        "each manifest names its own weights"
    );
    let tmp = tempfile::tempdir().unwrap();
    let bare = write(tmp.path(), "bare/x.toml", MIN);
    write(tmp.path(), "with/defaults.toml", &text);
    let with = write(tmp.path(), "with/x.toml", MIN);
    let a = load_with_env(&bare, &[], &[]).unwrap();
    let b = load_with_env(&with, &[], &[]).unwrap();
    assert_eq!(defaults_for(&bare), None);
    assert_eq!(
        defaults_for(&with),
        Some(tmp.path().join("with/defaults.toml"))
    );
    assert_eq!(a.manifest, b.manifest);
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.manifest, {
        let mut m = Manifest::default();
        m.experiment.name = "x".into();
        m.model.weights = "w.safetensors".into();
        m
    });
}

#[test]
fn every_manifest_of_the_project_resolves() {
    let dir = repo().join("experiments");
    let all = find_manifests(&dir);
    assert!(!all.is_empty());
    for m in all {
        let r = load_with_env(&m, &[], &[]).unwrap_or_else(|e| panic!("{e}"));
        let found = defaults_for(&m).map(|d| d.canonicalize().unwrap());
        // The paper suite has its own defaults (ImageNet); every other suite the project's.
        let suite_defaults = if m.starts_with(dir.join("paper")) {
            "experiments/paper/defaults.toml"
        } else {
            "experiments/defaults.toml"
        };
        let want = repo().join(suite_defaults).canonicalize().unwrap();
        assert_eq!(found, Some(want), "{}", m.display());
        assert!(!r.manifest.model.weights.as_os_str().is_empty());
    }
}

/// `[resources]` through every layer (suite defaults, manifest, environment, `--set`), typed;
/// `experiment.repeats` and its repeats' seeds.
#[test]
fn resources_and_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "defaults.toml",
        "[resources]\npartition = \"gpu\"\ngpus = 1\ntime = \"1-00:00:00\"\n",
    );
    let m = write(
        tmp.path(),
        "m.toml",
        &format!("{MIN}[experiment]\nrepeats = 3\nseed = 10\n[resources]\ncpus = 8\n"),
    );
    let r = load_with_env(
        &m,
        &strings(&["resources.time=90", "resources.extra=[\"--qos=long\"]"]),
        &pairs(&[("MPQ_RESOURCES__MEM", "32G")]),
    )
    .unwrap();
    let res = &r.manifest.resources;
    assert_eq!(res.partition.as_deref(), Some("gpu"));
    assert_eq!((res.gpus, res.cpus), (1, 8));
    assert_eq!(res.time.unwrap().to_string(), "01:30:00");
    assert_eq!(res.mem.unwrap().to_string(), "32G");
    assert_eq!(res.extra, ["--qos=long"]);
    assert_eq!(res.signal_before_s, 300);
    // The resolved TOML holds them, and resolves to the same manifest.
    let again = write(tmp.path(), "again/m.toml", &r.toml);
    assert_eq!(
        load_with_env(&again, &[], &[]).unwrap().manifest,
        r.manifest
    );
    // Repeats: seeds + r, `repeats = 1`, the index recorded.
    assert_eq!(r.repeat, None);
    let reps = r.repeats().unwrap();
    assert_eq!(reps.len(), 3);
    let two = &reps[2];
    assert_eq!(two.repeat, Some(2));
    assert_eq!(two.manifest.experiment.seed, 12);
    assert_eq!(two.manifest.data.seed, 2);
    assert_eq!(two.manifest.data.subset_seed, 2);
    assert_eq!(two.manifest.experiment.repeats, 1);
    assert_ne!(two.hash, reps[1].hash);
    // Neither resources nor repeats change the input key; the repeat's seeds do.
    let key = |r: &mpq_runner::manifest::Resolved| {
        mpq_runner::fingerprint::input_key(r, &[]).unwrap().key
    };
    let plain = load_with_env(&m, &strings(&["experiment.repeats=1"]), &[]).unwrap();
    assert_eq!(key(&reps[0]), key(&plain));
    let other = load_with_env(
        &m,
        &strings(&[
            "experiment.repeats=1",
            "resources.gpus=0",
            "resources.cpus=2",
        ]),
        &[],
    )
    .unwrap();
    assert_eq!(key(&other), key(&plain));
    assert_ne!(key(&reps[1]), key(&plain));
    let (e, file) = error_of(&format!("{MIN}[resources]\ntime = \"1h\"\n"), &[], &[]);
    assert_eq!(
        e,
        format!(
            "{file}: resources.time: \"1h\" is not a Slurm time limit (minutes, MM:SS, HH:MM:SS, \
             D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED)"
        )
    );
}
