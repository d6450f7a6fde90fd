//! The data vocabulary: datasets, splits, resampling filters, and a resolved data source with
//! the fields each kind of dataset has.
use std::path::PathBuf;

crate::names! {
    /// `data.dataset`: where the images come from.
    pub enum Dataset ("dataset") {
        /// The project's synthetic dataset, generated from a seed.
        Embedded = "embedded",
        /// A folder with one subfolder per class (ImageNet's validation set sorted by synset).
        ImageFolder = "imagefolder",
        /// A tensor file prepared from such a folder by `mpq data prepare`.
        Tensors = "tensors",
    }
}

crate::names! {
    /// `data.calib_split`, `data.search_split`, `data.test_split`: a generated split of the
    /// embedded dataset ([`SynthSplit`]) or a part of an image pool ([`PoolPart`]).
    pub enum Split ("split") {
        Train = "train",
        Calibration = "calibration",
        Search = "search",
        Test = "test",
        All = "all",
    }
}

crate::names! {
    /// `data.interpolation`: the resize filter (Pillow's antialiased resampling).
    pub enum Interpolation ("interpolation") {
        /// torchvision's default.
        Bilinear = "bilinear",
        /// timm's evaluation transform for Xception.
        Bicubic = "bicubic",
    }
}

/// One of the four disjoint generated splits of the embedded dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SynthSplit {
    Train,
    Calibration,
    Search,
    Test,
}

/// A part of a pool of images shuffled by a seed (`mpq_data::subset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolPart {
    Calibration,
    Search,
    Test,
    All,
}

impl Split {
    /// The generated split this names, if it is one.
    pub const fn synth(self) -> Option<SynthSplit> {
        match self {
            Split::Train => Some(SynthSplit::Train),
            Split::Calibration => Some(SynthSplit::Calibration),
            Split::Search => Some(SynthSplit::Search),
            Split::Test => Some(SynthSplit::Test),
            Split::All => None,
        }
    }

    /// The pool part this names, if it is one.
    pub const fn pool(self) -> Option<PoolPart> {
        match self {
            Split::Train => None,
            Split::Calibration => Some(PoolPart::Calibration),
            Split::Search => Some(PoolPart::Search),
            Split::Test => Some(PoolPart::Test),
            Split::All => Some(PoolPart::All),
        }
    }
}

impl From<SynthSplit> for Split {
    fn from(s: SynthSplit) -> Split {
        match s {
            SynthSplit::Train => Split::Train,
            SynthSplit::Calibration => Split::Calibration,
            SynthSplit::Search => Split::Search,
            SynthSplit::Test => Split::Test,
        }
    }
}

impl From<PoolPart> for Split {
    fn from(p: PoolPart) -> Split {
        match p {
            PoolPart::Calibration => Split::Calibration,
            PoolPart::Search => Split::Search,
            PoolPart::Test => Split::Test,
            PoolPart::All => Split::All,
        }
    }
}

impl Dataset {
    /// The splits a dataset of this kind has.
    pub fn splits(self) -> Vec<Split> {
        Split::ALL
            .iter()
            .copied()
            .filter(|s| match self {
                Dataset::Embedded => s.synth().is_some(),
                Dataset::ImageFolder | Dataset::Tensors => s.pool().is_some(),
            })
            .collect()
    }
}

/// torchvision's evaluation transform: resize the shorter side, center-crop, normalize.
#[derive(Clone, Debug, PartialEq)]
pub struct Transform {
    /// Shorter side after resizing.
    pub resize: usize,
    /// Side of the center crop (the model's input).
    pub crop: usize,
    pub interpolation: Interpolation,
    /// Per-channel `(x - mean) / std` of values in [0, 1].
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

/// How the calibration, search and held-out test images are drawn from a pool.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolDraw {
    /// Seed of the pool's shuffle.
    pub subset_seed: u64,
    pub calib: PoolPart,
    pub search: PoolPart,
    /// Where the held-out images come from (used when the run scores any).
    pub test: PoolPart,
}

/// A resolved `[data]` section: the source of a run's images with exactly the fields its kind
/// has.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// The synthetic dataset of generator seed `seed`.
    Embedded {
        seed: u64,
        calib: SynthSplit,
        search: SynthSplit,
        /// Where the held-out images come from (used when the run scores any).
        test: SynthSplit,
    },
    /// An image folder; `None`: the folder named by `MPQ_IMAGENET_DIR`.
    ImageFolder {
        folder: Option<PathBuf>,
        draw: PoolDraw,
        transform: Transform,
        skip_corrupt: bool,
        allow_empty_classes: bool,
    },
    /// A prepared tensor file.
    Tensors {
        file: PathBuf,
        draw: PoolDraw,
        transform: Transform,
    },
}

impl DataSource {
    pub fn dataset(&self) -> Dataset {
        match self {
            DataSource::Embedded { .. } => Dataset::Embedded,
            DataSource::ImageFolder { .. } => Dataset::ImageFolder,
            DataSource::Tensors { .. } => Dataset::Tensors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dataset_has_its_splits() {
        assert_eq!(
            Dataset::Embedded.splits(),
            [Split::Train, Split::Calibration, Split::Search, Split::Test]
        );
        assert_eq!(
            Dataset::Tensors.splits(),
            [Split::Calibration, Split::Search, Split::Test, Split::All]
        );
        for s in Split::ALL {
            if let Some(x) = s.synth() {
                assert_eq!(Split::from(x), *s);
            }
            if let Some(x) = s.pool() {
                assert_eq!(Split::from(x), *s);
            }
        }
    }
}
