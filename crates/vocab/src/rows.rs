//! The result tables' rows: each table's columns spelled once, as the fields of a row type.
//!
//! [`table!`] declares a row struct and its [`Row`] impl: the table's name, every column's name,
//! type and documentation (from the field's doc comment), the row as cells and back. The runner
//! builds rows (one place per table), the store turns them into Parquet columns, the report and
//! the tidy tests read the same types. Nothing here knows Parquet or polars: a [`Value`] is a
//! plain cell.
use crate::{ArchName, BetaSetting, BitPair, LayerKind, MethodName, PaperModel, StrategyName};

/// The storage type of a column (the only Parquet types the tables use, so pandas, DuckDB and
/// polars all read them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Str,
    F64,
    U32,
    U64,
}

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    F64(f64),
    U32(u32),
    U64(u64),
}

/// A column of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
    /// The field's documentation.
    pub doc: &'static str,
}

/// A Rust type a column can hold.
pub trait Cell: Sized {
    const TYPE: ColumnType;
    const NULLABLE: bool = false;
    fn to_value(&self) -> Value;
    /// `Err` says what was wrong with the cell (a null in a non-null column, a bad name).
    fn from_value(v: Value) -> Result<Self, String>;
}

fn unexpected(want: &str, v: &Value) -> String {
    match v {
        Value::Null => format!("null where {want} is required"),
        v => format!("{v:?} where {want} is required"),
    }
}

impl Cell for String {
    const TYPE: ColumnType = ColumnType::Str;
    fn to_value(&self) -> Value {
        Value::Str(self.clone())
    }
    fn from_value(v: Value) -> Result<Self, String> {
        match v {
            Value::Str(s) => Ok(s),
            v => Err(unexpected("a string", &v)),
        }
    }
}

impl Cell for f64 {
    const TYPE: ColumnType = ColumnType::F64;
    fn to_value(&self) -> Value {
        Value::F64(*self)
    }
    fn from_value(v: Value) -> Result<Self, String> {
        match v {
            Value::F64(x) => Ok(x),
            Value::U32(x) => Ok(x.into()),
            Value::U64(x) => Ok(x as f64),
            v => Err(unexpected("a number", &v)),
        }
    }
}

impl Cell for u32 {
    const TYPE: ColumnType = ColumnType::U32;
    fn to_value(&self) -> Value {
        Value::U32(*self)
    }
    fn from_value(v: Value) -> Result<Self, String> {
        match v {
            Value::U32(x) => Ok(x),
            Value::U64(x) => u32::try_from(x).map_err(|e| e.to_string()),
            v => Err(unexpected("an unsigned integer", &v)),
        }
    }
}

impl Cell for u64 {
    const TYPE: ColumnType = ColumnType::U64;
    fn to_value(&self) -> Value {
        Value::U64(*self)
    }
    fn from_value(v: Value) -> Result<Self, String> {
        match v {
            Value::U64(x) => Ok(x),
            Value::U32(x) => Ok(x.into()),
            v => Err(unexpected("an unsigned integer", &v)),
        }
    }
}

impl<T: Cell> Cell for Option<T> {
    const TYPE: ColumnType = T::TYPE;
    const NULLABLE: bool = true;
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_value)
    }
    fn from_value(v: Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// Names and other types stored as their string.
macro_rules! string_cell {
    ($($T:ty),*) => {$(
        impl Cell for $T {
            const TYPE: ColumnType = ColumnType::Str;
            fn to_value(&self) -> Value {
                Value::Str(self.to_string())
            }
            fn from_value(v: Value) -> Result<Self, String> {
                String::from_value(v)?.parse().map_err(|e| format!("{e}"))
            }
        }
    )*};
}
string_cell!(
    ArchName,
    PaperModel,
    StrategyName,
    LayerKind,
    BitPair,
    BetaSetting,
    MethodName
);

/// A row type of a result table (see [`table!`]).
pub trait Row: Sized {
    /// The table's name: its file is `<TABLE>.parquet`.
    const TABLE: &'static str;
    /// Every column, in storage order.
    fn columns() -> &'static [Column];
    /// The row's cells, in the order of [`Row::columns`].
    fn cells(&self) -> Vec<Value>;
    /// A row from its cells, given by column name; `Err` names the column.
    fn from_cells(get: &mut dyn FnMut(&'static str) -> Value) -> Result<Self, String>;
}

/// Old column names still read: `(table, old name, current name)`. A stored run written before
/// a rename has the old column; readers take it as the current one.
pub const RENAMED_COLUMNS: &[(&str, &str, &str)] = &[("runs", "int8_top1", "high_top1")];

/// Declares a result table's row type (see the module documentation): a struct of documented
/// fields whose types implement [`Cell`].
#[macro_export]
macro_rules! table {
    (
        $(#[doc = $doc:literal])*
        pub struct $T:ident in $table:literal {
            $(
                $(#[doc = $fdoc:literal])*
                pub $f:ident : $ty:ty,
            )+
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $T {
            $( $(#[doc = $fdoc])* pub $f: $ty, )+
        }

        impl $crate::rows::Row for $T {
            const TABLE: &'static str = $table;
            fn columns() -> &'static [$crate::rows::Column] {
                const COLUMNS: &[$crate::rows::Column] = &[$(
                    $crate::rows::Column {
                        name: stringify!($f),
                        ty: <$ty as $crate::rows::Cell>::TYPE,
                        nullable: <$ty as $crate::rows::Cell>::NULLABLE,
                        doc: concat!($($fdoc, "\n"),*),
                    },
                )+];
                COLUMNS
            }
            fn cells(&self) -> Vec<$crate::rows::Value> {
                vec![$( $crate::rows::Cell::to_value(&self.$f) ),+]
            }
            fn from_cells(
                get: &mut dyn FnMut(&'static str) -> $crate::rows::Value,
            ) -> Result<Self, String> {
                Ok($T {
                    $( $f: <$ty as $crate::rows::Cell>::from_value(get(stringify!($f)))
                        .map_err(|e| format!("column {}: {e}", stringify!($f)))?, )+
                })
            }
        }
    };
}

table! {
    /// One row of `steps`: the configuration after search step `step` (step 0 = every layer at
    /// the high pair).
    pub struct StepRow in "steps" {
        pub run_id: String,
        pub experiment: String,
        pub arch: ArchName,
        /// The low bit pair of the run, e.g. `W4A8`.
        pub pair: BitPair,
        pub strategy: StrategyName,
        /// The beta the search used (the computed value for `auto`).
        pub beta: f64,
        pub step: u32,
        /// Name of the layer moved to the low pair at this step (`None` at step 0 and for
        /// strategies whose steps are not nested).
        pub layer: Option<String>,
        pub layer_index: Option<u32>,
        /// Top-1 accuracy on the search images, a fraction in 0..=1.
        pub top1: f64,
        /// Objective `acc * (ln params)^beta`; `None` where `ln 0` would be needed.
        pub objective: Option<f64>,
        /// Weights of the layers at the low pair.
        pub params_low: u64,
        /// Model size in bits, `sum_i n_i * w_bits(i)`.
        pub size_bits: u64,
        /// `size_bits / (32 * total weights)`.
        pub rel_size: f64,
        /// Evaluations spent so far (cumulative; step 0 is not counted).
        pub evals: u64,
        pub elapsed_s: f64,
        /// The layers at the low pair after this step, sorted indices joined by commas (`""`
        /// at step 0).
        pub low_layers: String,
        /// Cost so far in full-evaluation equivalents (a partial evaluation on a fraction of
        /// the images counts that fraction).
        pub work: f64,
        /// Top-1 of this step's configuration on the run's held-out images (`runs.n_test_images`
        /// images that neither calibration nor search saw), a fraction; null when the run scored
        /// none (`data.test_images = 0`, or a run written before held-out scoring).
        pub test_top1: Option<f64>,
        /// Per-image result of this step's configuration on the held-out images, for paired
        /// tests: bit i set when held-out image i (in the run's fixed order) is classified
        /// correctly; hex, byte k = images 8k..8k+8, least significant bit first
        /// (`mpq_stats::Correctness::to_hex`; `runs.n_test_images` bits). Null with `test_top1`.
        pub test_correct: Option<String>,
    }
}

table! {
    /// One row of `candidates`: a configuration evaluated while choosing step `step`.
    pub struct CandidateRow in "candidates" {
        pub run_id: String,
        pub step: u32,
        pub layer: String,
        pub layer_index: u32,
        pub top1: f64,
        pub objective: Option<f64>,
        /// Images the top-1 was measured on (fewer than the run's search images for a
        /// partial, screening evaluation).
        pub n_images: u32,
    }
}

table! {
    /// One row of `layers`: a quantizable layer of the run's network, in execution order.
    pub struct LayerRow in "layers" {
        pub run_id: String,
        pub layer_index: u32,
        pub layer: String,
        pub kind: LayerKind,
        pub n_weights: u64,
    }
}

table! {
    /// The single row of `runs`: what was run, where, with which code, and the reference
    /// accuracies.
    pub struct RunRow in "runs" {
        pub run_id: String,
        pub experiment: String,
        pub arch: ArchName,
        pub pair: BitPair,
        pub high_pair: BitPair,
        pub strategy: StrategyName,
        /// The beta the search used.
        pub beta: f64,
        /// The resolved manifest, as TOML text.
        pub manifest: String,
        pub manifest_hash: String,
        pub git_commit: Option<String>,
        pub device: String,
        pub fp32_top1: f64,
        /// Top-1 with every layer at the high pair (`high_pair`; `int8_top1` in runs written
        /// before the rename).
        pub high_top1: f64,
        /// Held-out images every step was also scored on (`data.test_images` of
        /// `data.test_split`); null when none were (`data.test_images = 0`, or a run written
        /// before held-out scoring).
        pub n_test_images: Option<u32>,
        /// SHA-256 (first 16 bytes, hex) of the held-out images and labels as scored: runs with
        /// the same digest were scored on the same images in the same order, so their
        /// `test_correct` bitsets can be compared image by image. Null with `n_test_images`.
        pub test_digest: Option<String>,
        /// Top-1 of the FP32 model on the held-out images. Null with `n_test_images`.
        pub fp32_test_top1: Option<f64>,
        /// Top-1 with every layer at the high pair on the held-out images (= step 0's
        /// `test_top1`). Null with `n_test_images`.
        pub high_test_top1: Option<f64>,
        /// Per-image result of the FP32 model on the held-out images, encoded as
        /// `steps.test_correct`. Null with `n_test_images`.
        pub fp32_test_correct: Option<String>,
        /// Seconds spent scoring every step on the held-out images (part of `wall_s`; the FP32
        /// model's held-out score not included). Null with `n_test_images`.
        pub test_s: Option<f64>,
        pub n_layers: u32,
        pub n_search_images: u32,
        pub n_calib_images: u32,
        /// Undecodable images left out of the calibration and search images.
        pub skipped_images: u32,
        /// RFC 3339, UTC.
        pub started_at: String,
        pub finished_at: String,
        pub status: String,
        pub wall_s: f64,
        pub evals: u64,
        /// The suite the manifest belongs to (`embedded`, `paper`, ...).
        pub suite: Option<String>,
        /// The paper's network this run reproduces or stands in for.
        pub paper_model: Option<PaperModel>,
        /// The manifest file, as given.
        pub manifest_path: String,
        /// `search.beta` as set: a number or `auto` (`beta` holds the value used).
        pub beta_setting: BetaSetting,
        /// Hash of everything the results depend on (the run's input key).
        pub input_key: String,
        /// The code units' versions the run was computed with.
        pub code_version: String,
        /// The searchable layers when the search was restricted to some (comma-separated
        /// indices).
        pub search_layers: Option<String>,
        /// Steps the search was limited to (`search.max_steps`; null: no limit).
        pub max_steps: Option<u32>,
        /// The search's cost in full-evaluation equivalents.
        pub work: f64,
        /// Evaluations answered from the journal of an interrupted run.
        pub evals_replayed: u64,
        /// index of this run among its experiment's repeats (experiment.repeats > 1); null: a single run
        pub repeat: Option<u32>,
        /// `quant.method`: the post-training method that quantized the layers at the low pair (`rtn`: the spec's quantizer); null in runs written before methods, which are `rtn`
        pub method: Option<MethodName>,
        /// seconds the method took (its calibration passes included, part of `wall_s`); null when nothing was applied (`rtn` without bias correction)
        pub method_s: Option<f64>,
        /// forward passes of the whole network over the calibration images the method made; null with `method_s`
        pub method_passes: Option<u64>,
        /// optimisation iterations of the method: AdaRound's Adam steps over all layers, LAPQ's loss evaluations in its joint search, 0 for the closed-form methods; null with `method_s`
        pub method_iterations: Option<u64>,
    }
}

/// The four tables of one run, as the run computed them.
#[derive(Clone, Debug, PartialEq)]
pub struct RunTables {
    pub steps: Vec<StepRow>,
    pub candidates: Vec<CandidateRow>,
    pub layers: Vec<LayerRow>,
    pub run: RunRow,
}

/// The tables' names and columns, for documentation checks.
pub fn all_tables() -> [(&'static str, &'static [Column]); 4] {
    [
        (StepRow::TABLE, StepRow::columns()),
        (CandidateRow::TABLE, CandidateRow::columns()),
        (LayerRow::TABLE, LayerRow::columns()),
        (RunRow::TABLE, RunRow::columns()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_cells() {
        let r = LayerRow {
            run_id: "r".into(),
            layer_index: 3,
            layer: "conv1".into(),
            kind: LayerKind::Depthwise,
            n_weights: 9,
        };
        let cols = LayerRow::columns();
        assert_eq!(
            cols.iter().map(|c| c.name).collect::<Vec<_>>(),
            ["run_id", "layer_index", "layer", "kind", "n_weights"]
        );
        let cells = r.cells();
        assert_eq!(cells[3], Value::Str("depthwise".into()));
        let back = LayerRow::from_cells(&mut |name| {
            cells[cols.iter().position(|c| c.name == name).unwrap()].clone()
        })
        .unwrap();
        assert_eq!(back, r);
        let e = LayerRow::from_cells(&mut |name| {
            if name == "kind" {
                Value::Str("pool".into())
            } else {
                cells[cols.iter().position(|c| c.name == name).unwrap()].clone()
            }
        })
        .unwrap_err();
        assert!(
            e.starts_with("column kind: unknown layer kind \"pool\""),
            "{e}"
        );
    }

    #[test]
    fn columns_carry_their_documentation_and_nullability() {
        let c = StepRow::columns()
            .iter()
            .find(|c| c.name == "objective")
            .unwrap();
        assert!(c.nullable && c.ty == ColumnType::F64);
        assert!(c.doc.contains("acc * (ln params)^beta"), "{}", c.doc);
        assert!(RunRow::columns().iter().any(|c| c.name == "high_top1"));
    }
}
