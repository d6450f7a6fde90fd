//! Preemption and time limits, end to end with the real `mpq`:
//! - a run sent SIGTERM in the middle of its search stops at its journal with exit code 75
//!   (nothing half-written, its lock released) and, run again, resumes to the tables of an
//!   uninterrupted run;
//!   `mpq status` calls it interrupted;
//! - on the project's single-node Slurm (tools/slurm/cluster.sh; skipped with one line where
//!   the packages cannot be installed), `mpq reproduce --executor slurm --wait` of a suite of
//!   two embedded manifests, one task requeued mid-run by `scontrol requeue` and the other told
//!   mid-run that its time limit is near (the USR1 of `--signal=B:USR1@N`, so it requeues
//!   itself), ends with the same tables as local runs and writes the reports; `mpq status`
//!   follows it (running step k of N, queued or requeued, up to date);
//! - `mpq run --executor slurm --wait` of a sweep with repeats makes the same runs as locally,
//!   and a task that fails for real is reported, with the reason from its log, by `--wait`
//!   and by `mpq status`.
mod common;
use common::*;
use mpq_cluster::local::LocalCluster;
use mpq_cluster::script::TaskLog;
use mpq_runner::submit::{submissions, Submission};
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MANIFESTS: [&str; 2] = [
    "experiments/embedded/resnet-tiny-w4a8-greedy.toml",
    "experiments/embedded/resnet-tiny-w4a4-greedy.toml",
];

/// The overrides of every run here: a slice of the embedded data (256 search images, so that a
/// task still runs for seconds after its 25th evaluation on the CPU kernels; 256 held-out
/// images), one evaluation at a time (so the journal grows steadily), one run per manifest
/// (the embedded W4A4 greedy is repeated over seeds).
fn sets(results: &Path) -> Vec<String> {
    vec![
        format!("runtime.results_dir={}", results.display()),
        "data.search_images=256".into(),
        "data.calib_images=32".into(),
        "data.test_images=256".into(),
        "experiment.repeats=1".into(),
        "runtime.parallel=false".into(),
    ]
}

/// `mpq <command> --set <sets(results)>... <the rest of args>`, its SLURM_CONF that of `conf`:
/// a `--set` of `args` comes later, so it wins over these.
fn spawn(args: &[&str], results: &Path, conf: Option<&Path>) -> Child {
    let mut a: Vec<String> = args[..1].iter().map(|s| s.to_string()).collect();
    for s in sets(results) {
        a.extend(["--set".into(), s]);
    }
    a.extend(args[1..].iter().map(|s| s.to_string()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_mpq"));
    c.args(&a)
        .current_dir(root())
        .env_remove("RAYON_NUM_THREADS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(conf) = conf {
        c.env("SLURM_CONF", conf);
    }
    c.spawn().unwrap()
}

fn spawn_run(manifest: &str, results: &Path) -> Child {
    spawn(&["run", manifest, "--quiet"], results, None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `mpq status <suite>` of the test's experiments root, with the run's overrides.
fn status(exp_root: &Path, suite: &str, results: &Path, more: &[&str], conf: &Path) -> String {
    let mut a = vec!["status", suite, "--experiments", exp_root.to_str().unwrap()];
    a.extend(more);
    let out = spawn(&a, results, Some(conf)).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The line of `experiment` in a status printout.
fn line_of<'a>(status: &'a str, suite: &str, experiment: &str) -> &'a str {
    let head = format!("{suite}/{experiment}: ");
    status
        .lines()
        .find(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no {head} in\n{status}"))
}

/// A suite `name` of the given manifests under `exp_root`, with the project's defaults.
fn suite(exp_root: &Path, name: &str, manifests: &[&str]) {
    std::fs::create_dir_all(exp_root.join(name)).unwrap();
    experiments_root(exp_root);
    for m in manifests {
        let to = exp_root.join(name).join(Path::new(m).file_name().unwrap());
        std::fs::copy(root().join(m), to).unwrap();
    }
}

/// The only submission under `results`, once its record is there.
fn the_submission(results: &Path) -> Submission {
    let mut found = vec![];
    until("the submission record", Duration::from_secs(120), || {
        found = submissions(results).unwrap();
        !found.is_empty()
    });
    assert_eq!(found.len(), 1);
    found.remove(0)
}

fn experiment(manifest: &str) -> &str {
    Path::new(manifest).file_stem().unwrap().to_str().unwrap()
}

/// Lines of the journal (header included) of the run directories of `experiment`.
fn journal_lines(results: &Path, experiment: &str) -> usize {
    let Ok(rd) = std::fs::read_dir(results.join(experiment)) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("journal.log")).ok())
        .map(|t| t.lines().count())
        .sum()
}

fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The steps and candidates of the only run of `experiment`, without run ids and timings.
fn tables(results: &Path, experiment: &str) -> (DataFrame, DataFrame) {
    tables_of(&single_run_dir(results, experiment))
}

/// The steps and candidates of the run in `dir`, without run ids and timings.
fn tables_of(dir: &Path) -> (DataFrame, DataFrame) {
    let read =
        |t: &str| mpq_runner::store::read_parquet(&dir.join(format!("{t}.parquet"))).unwrap();
    let steps = read("steps").drop_many(["run_id", "elapsed_s"]);
    let cands = read("candidates").drop("run_id").unwrap();
    (steps, cands)
}

fn evals_replayed(results: &Path, experiment: &str) -> u64 {
    let dir = single_run_dir(results, experiment);
    let runs = mpq_runner::store::read_parquet(&dir.join("runs.parquet")).unwrap();
    first_u64(&runs, "evals_replayed").unwrap()
}

fn assert_same_tables(a: &Path, b: &Path, experiment: &str) {
    let (s1, c1) = tables(a, experiment);
    let (s2, c2) = tables(b, experiment);
    assert_eq!(s1.height(), 17, "{experiment}");
    assert!(s1.equals_missing(&s2), "{experiment} steps\n{s1}\n{s2}");
    assert!(c1.equals_missing(&c2), "{experiment} candidates");
}

#[test]
fn interrupted_runs_resume_locally_and_on_slurm() {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");

    // The uninterrupted runs, side by side.
    let t = Instant::now();
    let whole: Vec<Child> = MANIFESTS.iter().map(|m| spawn_run(m, &local)).collect();
    for c in whole {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    eprintln!(
        "two local runs side by side: {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // SIGTERM in the middle of the search: a clean stop at the journal, exit code 75.
    let stopped = tmp.path().join("stopped");
    let exp = experiment(MANIFESTS[0]);
    let child = spawn_run(MANIFESTS[0], &stopped);
    until("25 journaled evaluations", Duration::from_secs(600), || {
        journal_lines(&stopped, exp) > 25
    });
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("stopped at the journal on SIGTERM; run the same manifest again to resume"),
        "{said}"
    );
    let exp_root = tmp.path().join("experiments");
    suite(&exp_root, "s", &MANIFESTS);
    let no_conf = tmp.path().join("no-slurm.conf");
    let said = status(&exp_root, "s", &stopped, &[], &no_conf);
    let journaled = journal_lines(&stopped, exp) - 1;
    assert_eq!(
        line_of(&said, "s", exp),
        format!(
            "s/{exp}: interrupted: {journaled} configurations journaled, resumed by the next run"
        )
    );
    assert_eq!(
        line_of(&said, "s", experiment(MANIFESTS[1])),
        format!("s/{}: not run", experiment(MANIFESTS[1]))
    );
    let dir = single_run_dir(&stopped, exp);
    assert!(!dir.join("runs.parquet").exists());
    assert!(!dir.join("steps.parquet").exists());
    assert!(
        !dir.join(mpq_runner::store::LOCK_FILE).exists(),
        "the lock is released"
    );
    let out = spawn_run(MANIFESTS[0], &stopped)
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(evals_replayed(&stopped, exp), journaled as u64);
    assert_same_tables(&local, &stopped, exp);

    // The same on Slurm, both ways a cluster stops a task, through `mpq reproduce`.
    let Some(cluster) = LocalCluster::up(&root().join("tools/slurm/cluster.sh")).unwrap() else {
        eprintln!("skipped the Slurm part: no Slurm (the line above says why)");
        return;
    };
    let conf = cluster.conf.clone();
    let slurm = cluster.slurm();
    let results = tmp.path().join("slurm-results");
    let reports = tmp.path().join("reports");
    let t = Instant::now();
    let reproduce = spawn(
        &[
            "reproduce",
            "s",
            "--experiments",
            exp_root.to_str().unwrap(),
            "--executor",
            "slurm",
            "--wait",
            "--quiet",
            "--reports",
            reports.to_str().unwrap(),
        ],
        &results,
        Some(&conf),
    );
    let sub = the_submission(&results);
    let id = sub.job;
    assert_eq!(sub.tasks.len(), 2);
    let (e0, e1) = (experiment(MANIFESTS[0]), experiment(MANIFESTS[1]));
    // The tasks follow the plan's order (the suite's manifests by path), not MANIFESTS'.
    let task_of = |e: &str| sub.tasks.iter().position(|t| t.experiment == e).unwrap() as u32;
    let (t0, t1) = (task_of(e0), task_of(e1));
    // Both tasks under way before either is stopped: with the CPU kernels a task of this size
    // takes seconds, so both stops are sent back to back while both run.
    until(
        "both tasks to journal 25 evaluations",
        Duration::from_secs(600),
        || journal_lines(&results, e0) > 25 && journal_lines(&results, e1) > 25,
    );
    let said = status(&exp_root, "s", &results, &[], &conf);
    let l = line_of(&said, "s", e0);
    assert!(
        l.starts_with(&format!("s/{e0}: running step "))
            && l.contains(&format!("(Slurm job {id}_{t0})")),
        "{said}"
    );
    slurm.requeue(id, t0).unwrap();
    slurm.signal_batch(id, t1, "USR1").unwrap();
    // Requeued, then queued until the cluster's cred_expire has passed.
    let mut said = String::new();
    until(
        "task 0 to show as requeued or queued",
        Duration::from_secs(60),
        || {
            said = status(&exp_root, "s", &results, &[], &conf);
            let l = line_of(&said, "s", e0);
            l.contains(": requeued (Slurm job ") || l.contains(": queued")
        },
    );
    let out = reproduce.wait_with_output().unwrap();
    eprintln!(
        "reproduce --executor slurm --wait of 2 manifests, both interrupted and resumed: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let logs: Vec<String> = (0..2)
        .map(|task| std::fs::read_to_string(sub.log(task)).unwrap_or_default())
        .collect();
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        stdout(&out),
        stderr(&out),
        logs.join("\n")
    );
    let said = stdout(&out);
    assert!(
        said.contains(&format!("submitted job {id}: 2 task(s), logs in ")),
        "{said}"
    );
    assert!(said.contains("reports: "), "{said}");
    assert!(said.contains("2 run, 0 up to date, 0 skipped"), "{said}");
    assert!(reports.join("s").is_dir());
    for (task, log) in logs.iter().enumerate() {
        let l = TaskLog::parse(log);
        assert_eq!(l.attempts, 2, "{log}");
        assert_eq!(l.last_end.unwrap().action, "done", "{log}");
        let exp = &sub.tasks[task].experiment;
        assert!(
            evals_replayed(&results, exp) >= 25,
            "resumed from the journal: {log}"
        );
        assert_same_tables(&local, &results, exp);
    }
    assert!(logs[t0 as usize].contains("action=stop reason=stopped at the journal on SIGTERM"));
    assert!(logs[t1 as usize].contains("action=requeue reason=time limit near"));
    let said = status(&exp_root, "s", &results, &[], &conf);
    assert!(said.ends_with("2 up to date\n"), "{said}");

    // A sweep with repeats on Slurm makes the runs `mpq run` makes here; the point whose
    // results directory cannot be created fails for real, and says why.
    let sweep = [
        "--sweep",
        "search.beta=0,0.02",
        "--set",
        "experiment.repeats=2",
        "--set",
        "search.max_steps=1",
    ];
    let swept = tmp.path().join("swept");
    let (bad, good) = (format!("{e0}--beta=0.02"), format!("{e0}--beta=0"));
    std::fs::create_dir_all(&swept).unwrap();
    std::fs::write(swept.join(&bad), "not a directory").unwrap();
    let t = Instant::now();
    let mut a = vec![
        "run",
        MANIFESTS[0],
        "--quiet",
        "--executor",
        "slurm",
        "--wait",
    ];
    a.extend(sweep);
    let out = spawn(&a, &swept, Some(&conf)).wait_with_output().unwrap();
    eprintln!(
        "run --executor slurm --wait of a sweep of 2 points x 2 repeats: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    let said = stdout(&out);
    assert!(
        stderr(&out).contains("2 of 4 Slurm task(s) did not finish their run (listed above)"),
        "{}",
        stderr(&out)
    );
    let failed: Vec<&str> = said.lines().filter(|l| l.starts_with(&bad)).collect();
    assert_eq!(failed.len(), 2, "{said}");
    assert!(
        failed[1].starts_with(&format!("{bad} repeat 1: failed (exit code 1) (job "))
            && failed[1].contains("Not a directory"),
        "{said}"
    );
    let here = tmp.path().join("swept-here");
    let mut a = vec!["run", MANIFESTS[0], "--quiet", "--sweep", "search.beta=0"];
    a.extend(&sweep[2..]);
    let out = spawn(&a, &here, None).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let by_repeat = |results: &Path| -> Vec<(DataFrame, DataFrame)> {
        let mut dirs: Vec<(u64, PathBuf)> = std::fs::read_dir(results.join(&good))
            .unwrap()
            .map(|e| {
                let d = e.unwrap().path();
                let runs = mpq_runner::store::read_parquet(&d.join("runs.parquet")).unwrap();
                (first_u64(&runs, "repeat").unwrap(), d)
            })
            .collect();
        dirs.sort();
        assert_eq!(dirs.len(), 2, "{dirs:?}");
        dirs.iter().map(|(_, d)| tables_of(d)).collect()
    };
    let (there, here) = (by_repeat(&swept), by_repeat(&here));
    for r in 0..2 {
        assert!(there[r].0.equals_missing(&here[r].0), "repeat {r} steps");
        assert!(
            there[r].1.equals_missing(&here[r].1),
            "repeat {r} candidates"
        );
    }
    suite(&exp_root, "swept", &MANIFESTS[..1]);
    let mut more = vec![];
    more.extend(sweep);
    let said = status(&exp_root, "swept", &swept, &more, &conf);
    assert!(said.ends_with("2 up to date, 2 failed\n"), "{said}");
    let l = line_of(&said, "swept", &format!("{bad} repeat 0"));
    assert!(
        l.contains(": failed: ") && l.contains("Not a directory") && l.contains("(Slurm job "),
        "{said}"
    );
    drop(cluster);
}
