//! The batch script and the Slurm client against real daemons (tools/slurm/cluster.sh), with a
//! stand-in for `mpq` that keeps its progress in a file as the journal does and stops with 75
//! on SIGTERM or SIGUSR1: a task that succeeds, one that fails for real (not requeued), one
//! told its time limit is near (requeues itself and resumes), one requeued by `scontrol
//! requeue` (Slurm requeues it, it resumes), and one that has used up its restarts.
//! Skipped, with one line, where the Slurm packages cannot be installed.
use mpq_cluster::local::LocalCluster;
use mpq_cluster::script::{task_log_path, TaskLog};
use mpq_cluster::{ArrayJob, Exit, FailKind, Resources, Task, TaskState, TaskStatus};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FAKE_MPQ: &str = r#"#!/bin/bash
# A stand-in for `mpq run --quiet <manifest> --set ...`: the manifest file says what to do.
manifest=$3
echo "$@" >"$manifest.args"
case "$(cat "$manifest")" in
ok) exit 0 ;;
fail) echo "mpq: $manifest: model.weights: missing.safetensors: not found" >&2; exit 1 ;;
slow)
    trap 'exit 75' TERM USR1
    n=$(cat "$manifest.count" 2>/dev/null || echo 0)
    while [ "$n" -lt 40 ]; do
        sleep 0.25 & wait $!
        n=$((n + 1))
        echo "$n" >"$manifest.count"
    done
    exit 0 ;;
esac
exit 2
"#;

fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count(manifest: &Path) -> u32 {
    std::fs::read_to_string(manifest.with_extension("toml.count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn job(dir: &Path, name: &str, manifests: &[PathBuf], resources: Resources) -> ArrayJob {
    let exe = dir.join("fake-mpq");
    std::fs::write(&exe, FAKE_MPQ).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    ArrayJob {
        name: name.into(),
        dir: dir.join(name),
        workdir: dir.to_path_buf(),
        exe,
        sets: vec!["runtime.results_dir=/shared/results".into()],
        tasks: manifests
            .iter()
            .map(|m| Task {
                manifest: m.clone(),
                sets: vec![format!(
                    "experiment.name={}",
                    m.file_stem().unwrap().to_string_lossy()
                )],
                repeat: None,
            })
            .collect(),
        resources,
    }
}

#[test]
fn array_tasks_stop_requeue_and_fail_as_designed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Some(cluster) = LocalCluster::up(&root.join("tools/slurm/cluster.sh")).unwrap() else {
        eprintln!("skipped: no Slurm (the line above says why)");
        return;
    };
    let slurm = cluster.slurm();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let manifests: Vec<PathBuf> = ["ok", "fail", "slow", "slow"]
        .iter()
        .enumerate()
        .map(|(i, what)| {
            let m = dir.join(format!("t{i}.toml"));
            std::fs::write(&m, what).unwrap();
            m
        })
        .collect();

    // A submission error is one line naming the command and what sbatch said.
    let mut bad = job(dir, "bad", &manifests[..1], Resources::default());
    bad.resources.partition = Some("nosuchpartition".into());
    let e = slurm.submit(&bad.write().unwrap()).unwrap_err().to_string();
    assert!(
        e.starts_with("sbatch --parsable ") && e.contains("nvalid partition"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");

    let resources = Resources {
        cpus: 1,
        ..Resources::default()
    };
    let j = job(dir, "main", &manifests, resources);
    let t0 = Instant::now();
    let id = slurm.submit(&j.write().unwrap()).unwrap();

    // Task 2: told its time limit is near (what `--signal=B:USR1@N` sends), mid-run.
    // Task 3: requeued by Slurm (SIGTERM), mid-run.
    until(
        "tasks 2 and 3 to make progress",
        Duration::from_secs(120),
        || count(&manifests[2]) >= 8 && count(&manifests[3]) >= 8,
    );
    slurm.signal_batch(id, 2, "USR1").unwrap();
    slurm.requeue(id, 3).unwrap();
    // Slurm starts a requeued task again after the cluster's cred_expire (10 s here).
    let mut seen = vec![];
    let end = slurm
        .wait(
            id,
            4,
            Duration::from_millis(500),
            Some(Duration::from_secs(180)),
            &mut |s| seen.push(mpq_cluster::slurm::summary(s)),
        )
        .unwrap();
    eprintln!(
        "job array of 4 tasks with 2 requeues: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let log = |task: u32| {
        let p = task_log_path(&j.dir, id, task);
        (
            TaskLog::read(&p).unwrap(),
            std::fs::read_to_string(&p).unwrap(),
        )
    };
    let states: Vec<TaskState> = end.iter().map(|t: &TaskStatus| t.state.clone()).collect();
    assert_eq!(
        states,
        [
            TaskState::Completed,
            TaskState::Failed {
                kind: FailKind::Exit,
                exit: Some(Exit::Code(1))
            },
            TaskState::Completed,
            TaskState::Completed,
        ],
        "{seen:#?}\n{}",
        (0..4).map(|t| log(t).1).collect::<Vec<_>>().join("\n")
    );
    // The failure is recorded, with mpq's error, and was not retried.
    let (failed, _) = log(1);
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.last_end.as_ref().unwrap().action, "fail");
    assert!(failed
        .last_error
        .unwrap()
        .ends_with("missing.safetensors: not found"));
    // Both interrupted tasks resumed where they stopped and finished on their second attempt.
    for task in [2, 3] {
        let (l, text) = log(task);
        assert_eq!(l.attempts, 2, "{text}");
        let end = l.last_end.unwrap();
        assert_eq!((end.attempt, end.action.as_str()), (1, "done"), "{text}");
        assert_eq!(count(&manifests[task as usize]), 40);
    }
    assert!(log(2)
        .1
        .contains("exit=75 action=requeue reason=time limit near"));
    let (_, text) = log(3);
    assert!(
        text.contains("exit=75 action=stop reason=stopped at the journal on SIGTERM"),
        "{text}"
    );
    // What each task ran: its manifest, the threads from its CPUs, the common and own sets.
    let args = std::fs::read_to_string(manifests[0].with_extension("toml.args")).unwrap();
    assert_eq!(
        args.trim(),
        format!(
            "run --quiet {} --set runtime.threads=1 --set runtime.results_dir=/shared/results \
             --set experiment.name=t0",
            manifests[0].display()
        )
    );

    // A task that keeps reaching its time limit gives up after max_restarts requeues.
    std::fs::remove_file(manifests[2].with_extension("toml.count")).unwrap();
    let capped = job(
        dir,
        "capped",
        &manifests[2..3],
        Resources {
            max_restarts: 0,
            ..Resources::default()
        },
    );
    let id = slurm.submit(&capped.write().unwrap()).unwrap();
    until("the task to make progress", Duration::from_secs(60), || {
        count(&manifests[2]) >= 4
    });
    slurm.signal_batch(id, 0, "USR1").unwrap();
    let end = slurm
        .wait(
            id,
            1,
            Duration::from_millis(500),
            Some(Duration::from_secs(60)),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(
        end[0].state,
        TaskState::Failed {
            kind: FailKind::Exit,
            exit: Some(Exit::Code(75))
        }
    );
    let l = TaskLog::read(&task_log_path(&capped.dir, id, 0)).unwrap();
    let reason = l.last_end.unwrap().reason.unwrap();
    assert!(reason.contains("resources.max_restarts = 0"), "{reason}");
    drop(cluster);
}
