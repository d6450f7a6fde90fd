//! `query` over small result directories built with polars directly.
use mpq_report::query::{query, write, Format};
use polars::prelude::*;
use std::path::Path;

fn put(dir: &Path, name: &str, mut df: DataFrame) {
    std::fs::create_dir_all(dir).unwrap();
    let f = std::fs::File::create(dir.join(name)).unwrap();
    ParquetWriter::new(f).finish(&mut df).unwrap();
}

fn run(root: &Path, exp: &str, id: &str, arch: &str, strategy: &str, top1: &[f64]) {
    let dir = root.join(exp).join(id);
    let n = top1.len();
    put(
        &dir,
        "steps.parquet",
        df!(
            "run_id" => vec![id; n],
            "arch" => vec![arch; n],
            "pair" => vec!["W4A8"; n],
            "strategy" => vec![strategy; n],
            "step" => (0..n as u32).collect::<Vec<_>>(),
            "top1" => top1.to_vec(),
        )
        .unwrap(),
    );
    put(
        &dir,
        "runs.parquet",
        df!("run_id" => [id], "experiment" => [exp], "arch" => [arch]).unwrap(),
    );
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("mpq-query-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn groups_across_runs_and_skips_unfinished_ones() {
    let root = tmpdir("group");
    run(&root, "a", "r1", "resnet-tiny", "greedy", &[0.9, 0.8, 0.7]);
    run(
        &root,
        "b",
        "r2",
        "resnet-tiny",
        "one-shot",
        &[0.9, 0.6, 0.5],
    );
    run(&root, "c", "r3", "mobilenet-tiny", "greedy", &[0.95, 0.85]);
    // An unfinished run (no runs.parquet) is not a result.
    put(
        &root.join("d/r4"),
        "steps.parquet",
        df!("run_id" => ["r4"], "top1" => [1.0]).unwrap(),
    );

    let df = query(
        &root,
        "SELECT arch, pair, strategy, max(top1) AS best, count(*) AS n FROM steps GROUP BY 1,2,3 ORDER BY arch, strategy",
    )
    .unwrap();
    assert_eq!(df.height(), 3);
    let n: Vec<Option<u32>> = df
        .column("n")
        .unwrap()
        .cast(&DataType::UInt32)
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(n, vec![Some(2), Some(3), Some(3)]);
    let best: Vec<Option<f64>> = df.column("best").unwrap().f64().unwrap().iter().collect();
    assert_eq!(best, vec![Some(0.95), Some(0.9), Some(0.9)]);

    let mut df = query(
        &root,
        "SELECT run_id, top1 FROM steps WHERE step = 1 ORDER BY run_id",
    )
    .unwrap();
    let mut csv = Vec::new();
    write(&mut df, Format::Csv, &mut csv).unwrap();
    assert_eq!(
        String::from_utf8(csv).unwrap(),
        "run_id,top1\nr1,0.8\nr2,0.6\nr3,0.85\n"
    );
    let mut json = Vec::new();
    write(&mut df, Format::Json, &mut json).unwrap();
    assert!(String::from_utf8(json)
        .unwrap()
        .starts_with("[{\"run_id\":\"r1\",\"top1\":0.8}"));
    let mut pq = Vec::new();
    write(&mut df, Format::Parquet, &mut pq).unwrap();
    let back = ParquetReader::new(std::io::Cursor::new(pq))
        .finish()
        .unwrap();
    assert!(back.equals(&df));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn errors_are_one_line() {
    let root = tmpdir("err");
    let e = query(&root, "SELECT 1").unwrap_err().to_string();
    assert!(e.contains("no finished runs"), "{e}");
    run(&root, "a", "r1", "resnet-tiny", "greedy", &[0.9]);
    let e = format!("{:#}", query(&root, "SELECT nope FROM steps").unwrap_err());
    assert!(!e.contains('\n') && e.starts_with("query:"), "{e}");
    std::fs::remove_dir_all(&root).unwrap();
}
