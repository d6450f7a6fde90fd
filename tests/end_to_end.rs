//! A real greedy and one-shot run of the embedded manifests, read back from Parquet.
mod common;
use common::*;
use polars::prelude::*;

fn col_u32(df: &DataFrame, c: &str) -> Vec<Option<u32>> {
    df.column(c)
        .unwrap()
        .cast(&DataType::UInt32)
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .collect()
}
fn col_f64(df: &DataFrame, c: &str) -> Vec<Option<f64>> {
    df.column(c).unwrap().f64().unwrap().iter().collect()
}

fn run_small(manifest: &str, results: &std::path::Path) {
    let args = small_run_args(manifest, results);
    let out = mpq(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn greedy_run_writes_steps_candidates_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    run_small(
        "experiments/embedded/resnet-tiny-w4a8-greedy.toml",
        tmp.path(),
    );
    let dir = single_run_dir(tmp.path(), "resnet-tiny-w4a8-greedy");
    let steps = mpq_runner::store::read_parquet(&dir.join("steps.parquet")).unwrap();
    let cands = mpq_runner::store::read_parquet(&dir.join("candidates.parquet")).unwrap();
    let runs = mpq_runner::store::read_parquet(&dir.join("runs.parquet")).unwrap();
    let n = 16usize;
    assert_eq!(steps.height(), n + 1);
    assert_eq!(cands.height(), n * (n + 1) / 2);
    assert_eq!(runs.height(), 1);

    let step = col_u32(&steps, "step");
    let layer = col_u32(&steps, "layer_index");
    let top1 = col_f64(&steps, "top1");
    let evals = col_u32(&steps, "evals");
    assert_eq!(step[0], Some(0));
    assert_eq!(layer[0], None, "step 0 is all W8A8");
    assert_eq!(evals[0], Some(0));
    let int8 = col_f64(&runs, "high_top1")[0];
    assert_eq!(top1[0], int8, "step 0 top-1 is the all-W8A8 top-1");

    let c_step = col_u32(&cands, "step");
    let c_layer = col_u32(&cands, "layer_index");
    let c_top1 = col_f64(&cands, "top1");
    let c_obj = col_f64(&cands, "objective");
    let mut chosen = std::collections::HashSet::new();
    for k in 1..=n {
        let j = layer[k].unwrap();
        assert!(chosen.insert(j), "layer {j} chosen twice");
        let rows: Vec<usize> = (0..cands.height())
            .filter(|&r| c_step[r] == Some(k as u32))
            .collect();
        assert_eq!(rows.len(), n - k + 1, "candidates at step {k}");
        let r = *rows.iter().find(|&&r| c_layer[r] == Some(j)).unwrap();
        assert_eq!(
            c_top1[r], top1[k],
            "step {k} top-1 equals its chosen candidate's"
        );
        // beta = 0: the chosen candidate has the largest objective, ties to the smallest index.
        let best = rows
            .iter()
            .map(|&r| c_obj[r].unwrap())
            .fold(f64::MIN, f64::max);
        let first_best = rows.iter().find(|&&r| c_obj[r] == Some(best)).unwrap();
        assert_eq!(c_layer[*first_best], Some(j));
        assert_eq!(evals[k], Some((k * (2 * n - k + 1) / 2) as u32));
    }
    let rel = col_f64(&steps, "rel_size");
    assert!(
        (rel[0].unwrap() - 0.25).abs() < 1e-12,
        "all W8A8 is 8/32 of FP32"
    );
    assert!((rel[n].unwrap() - 0.125).abs() < 1e-12, "all W4 is 4/32");
    let manifest = first_str(&runs, "manifest");
    assert!(
        manifest.contains("search_images = 64"),
        "resolved manifest recorded: {manifest}"
    );
}

#[test]
fn one_shot_run_costs_2n_minus_1_evaluations() {
    let tmp = tempfile::tempdir().unwrap();
    run_small(
        "experiments/embedded/mobilenet-tiny-w4a8-one-shot.toml",
        tmp.path(),
    );
    let dir = single_run_dir(tmp.path(), "mobilenet-tiny-w4a8-one-shot");
    let steps = mpq_runner::store::read_parquet(&dir.join("steps.parquet")).unwrap();
    let cands = mpq_runner::store::read_parquet(&dir.join("candidates.parquet")).unwrap();
    let n = 20usize;
    assert_eq!(steps.height(), n + 1);
    assert_eq!(cands.height(), 2 * n - 1);
    // One-shot order: step-1 accuracies descending, ties to the smaller index.
    let c_step = col_u32(&cands, "step");
    let c_layer = col_u32(&cands, "layer_index");
    let c_top1 = col_f64(&cands, "top1");
    let mut s1: Vec<(f64, u32)> = (0..cands.height())
        .filter(|&r| c_step[r] == Some(1))
        .map(|r| (c_top1[r].unwrap(), c_layer[r].unwrap()))
        .collect();
    s1.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
    let order: Vec<u32> = col_u32(&steps, "layer_index")
        .into_iter()
        .skip(1)
        .map(|x| x.unwrap())
        .collect();
    assert_eq!(order, s1.iter().map(|x| x.1).collect::<Vec<_>>());
}

/// A greedy search over a post-training method's layers, from the manifest (`quant.method`):
/// the method runs once, its cost is in the runs table, and the search moves layers between
/// the high pair and the method's layers. Bad settings are refused naming their key.
#[test]
fn greedy_over_a_ptq_method_from_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = "experiments/embedded/strategies/resnet-tiny-w4a8-8layers-greedy.toml";
    for (method, more) in [
        ("rtn", None),
        ("mmse", None),
        ("adaround", Some("quant.adaround.iterations=20")),
    ] {
        let results = tmp.path().join(method);
        let mut args = small_run_args(manifest, &results);
        args.extend(["--set".into(), format!("quant.method={method}")]);
        if let Some(m) = more {
            args.extend(["--set".into(), m.to_string()]);
        }
        let out = mpq(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "{method}: {}", stderr(&out));
        let dir = single_run_dir(&results, "resnet-tiny-w4a8-8layers-greedy");
        let runs = mpq_runner::store::read_parquet(&dir.join("runs.parquet")).unwrap();
        let steps = mpq_runner::store::read_parquet(&dir.join("steps.parquet")).unwrap();
        assert_eq!(first_str(&runs, "method"), method);
        assert_eq!(
            steps.height(),
            9,
            "{method}: step 0 and the 8 searched layers"
        );
        let passes = first_u64(&runs, "method_passes");
        let iterations = first_u64(&runs, "method_iterations");
        match method {
            // The spec's quantizer: nothing applied, nothing spent.
            "rtn" => assert_eq!((passes, iterations), (None, None)),
            "mmse" => assert_eq!(iterations, Some(0), "closed form"),
            // 20 Adam steps for each of the 16 layers at the low pair.
            _ => assert_eq!(iterations, Some(20 * 16)),
        }
        if method != "rtn" {
            assert!(passes.unwrap() > 0, "{method}");
        }
    }
    for (set, key) in [
        ("quant.method=foo", "quant.method"),
        ("quant.adaround.iterations=0", "quant.adaround.iterations"),
    ] {
        let mut args = small_run_args(manifest, &tmp.path().join("bad"));
        args.extend(["--set".into(), set.to_string()]);
        let out = mpq(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!out.status.success(), "{set}");
        let e = stderr(&out);
        assert!(e.contains(key) && e.lines().count() == 1, "{set}: {e}");
    }
}
