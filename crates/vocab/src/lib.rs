//! The vocabulary every crate of mpq shares, and nothing else: the names of strategies,
//! architectures, the paper's networks, layer kinds, bit pairs, datasets, splits, resampling
//! filters, devices, executors and post-training methods; a resolved data source; the result tables' row types with
//! their column names. Each name is spelled once, here ([`names!`]); manifests deserialize
//! straight into these types (serde), command lines parse into them (clap), tables store their
//! strings.
//! Knows nothing of candle, polars or files.
//!
//! Adding a value to a name type (a strategy, an architecture, ...) makes every exhaustive
//! `match` on it a compile error until handled: that is how a missed place is caught.

mod names;
pub mod rows;

mod arch;
mod data;
mod device;
mod executor;
mod method;
mod pair;
mod search;

pub use arch::{ArchName, LayerKind, PaperModel};
pub use data::{
    DataSource, Dataset, Interpolation, PoolDraw, PoolPart, Split, SynthSplit, Transform,
};
pub use device::DeviceSpec;
pub use executor::Executor;
pub use method::MethodName;
pub use names::UnknownName;
pub use pair::{BitPair, PairError};
pub use rows::{CandidateRow, LayerRow, Row, RunRow, RunTables, StepRow};
pub use search::{BetaSetting, StrategyName};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_print_and_order_once() {
        for s in StrategyName::ALL {
            assert_eq!(s.as_str().parse::<StrategyName>(), Ok(*s));
        }
        let e = "gready".parse::<StrategyName>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown strategy \"gready\" (known: greedy, lazy-greedy, screened-greedy, one-shot, random, exhaustive, uniform)"
        );
        assert!(StrategyName::Greedy < StrategyName::OneShot);
        assert_eq!(
            ArchName::embedded().collect::<Vec<_>>(),
            [ArchName::ResnetTiny, ArchName::MobilenetTiny]
        );
        assert_eq!(ArchName::Resnet50.paper_model(), Some(PaperModel::ResNet50));
    }

    #[test]
    fn names_deserialize_with_the_known_values_in_the_error() {
        #[derive(serde::Deserialize, Debug)]
        struct S {
            #[allow(dead_code)]
            s: StrategyName,
        }
        // Through serde's value deserializer: an unknown variant lists the known ones.
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer;
        let d: StrDeserializer<Error> = "x".into_deserializer();
        let e = <StrategyName as serde::Deserialize>::deserialize(d).unwrap_err();
        assert!(e.to_string().contains("expected one of `greedy`"), "{e}");
        let d: StrDeserializer<Error> = "one-shot".into_deserializer();
        assert_eq!(
            <StrategyName as serde::Deserialize>::deserialize(d).unwrap(),
            StrategyName::OneShot
        );
        let _ = std::any::type_name::<S>();
    }
}
