//! `--executor`: where the runs of a plan are computed.
crate::names! {
    /// Where `mpq run` and `mpq reproduce` compute the runs they have to make.
    pub enum Executor ("executor") {
        /// In this process, one run after another.
        Local = "local",
        /// As one Slurm job array, one task per run (docs/cluster.md).
        Slurm = "slurm",
    }
}
