//! Running manifests on a Slurm cluster: the resources a task asks for (`resources`), the batch
//! script of a job array with its stop-and-requeue protocol (`script`), submitting and watching
//! it through Slurm's commands (`slurm`), the tasks' states (`state`), and the project's
//! single-node test cluster (`local`). Knows nothing of models, manifests' other sections or
//! results: the runner decides what to run, this crate how to run it on Slurm.
pub mod local;
pub mod resources;
pub mod script;
pub mod slurm;
pub mod state;

pub use resources::{MemSize, ResourceError, Resources, TimeLimit};
pub use script::{ArrayJob, JobError, Task, TaskLog, EXIT_INTERRUPTED};
pub use slurm::{Slurm, SlurmError};
pub use state::{Exit, FailKind, TaskState, TaskStatus};
