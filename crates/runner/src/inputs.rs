//! The files and folders a manifest's run reads (weights, data), for up-to-date checks and for
//! saying what is missing before anything runs: each missing input is one reason naming the
//! manifest key that points at it.
use crate::manifest::Resolved;
use mpq_vocab::DataSource;
use std::path::PathBuf;

/// The environment variable naming the ImageNet validation folder, used by the `imagefolder`
/// dataset when `data.path` is empty.
pub const IMAGENET_ENV: &str = "MPQ_IMAGENET_DIR";

/// The folder or file a data source reads (`env`: the value of [`IMAGENET_ENV`], which stands in
/// for an image folder's empty `data.path`); `None` for the embedded dataset (generated from
/// its seed by the data crate, part of the code version). `Err` says what is missing from the
/// configuration itself, naming the key and the variable.
pub fn data_path_with_env(
    source: &DataSource,
    env: Option<&str>,
) -> Result<Option<PathBuf>, String> {
    match source {
        DataSource::Embedded { .. } => Ok(None),
        DataSource::ImageFolder {
            folder: Some(f), ..
        } => Ok(Some(f.clone())),
        DataSource::ImageFolder { folder: None, .. } => match env.filter(|v| !v.is_empty()) {
            Some(v) => Ok(Some(PathBuf::from(v))),
            None => Err(format!(
                "data.path: empty, and {IMAGENET_ENV} is not set: set one of them to the image \
                 folder (one subfolder per class, e.g. the ImageNet validation set)"
            )),
        },
        DataSource::Tensors { file, .. } if file.as_os_str().is_empty() => Err(format!(
            "data.path: empty: the {} dataset needs the path of its file",
            source.dataset()
        )),
        DataSource::Tensors { file, .. } => Ok(Some(file.clone())),
    }
}

/// [`data_path_with_env`] with the process environment.
pub fn data_path(source: &DataSource) -> Result<Option<PathBuf>, String> {
    data_path_with_env(source, std::env::var(IMAGENET_ENV).ok().as_deref())
}

/// A missing input, as one line naming the manifest key that points at it. Ordered as a
/// suite's summary lists them: the data (what every manifest of a suite lacks) first, then the
/// weights.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Missing {
    Data(String),
    Weights(String),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Data(s) | Missing::Weights(s) => f.write_str(s),
        }
    }
}

/// The files a manifest's run reads, and what is missing of them.
pub fn inputs(r: &Resolved) -> (Vec<PathBuf>, Vec<Missing>) {
    let weights = &r.manifest.model.weights;
    let mut files = vec![weights.clone()];
    let mut missing = vec![];
    if !weights.exists() {
        missing.push(Missing::Weights(format!(
            "model.weights: {}: file not found",
            weights.display()
        )));
    }
    match data_path(&r.data) {
        Ok(Some(p)) => {
            if !p.exists() {
                let what = match r.data {
                    DataSource::ImageFolder { .. } => "image folder",
                    DataSource::Embedded { .. } | DataSource::Tensors { .. } => "file",
                };
                missing.push(Missing::Data(format!(
                    "data.path: {}: {what} not found",
                    p.display()
                )));
            }
            files.push(p);
        }
        Ok(None) => {}
        Err(e) => missing.push(Missing::Data(e)),
    }
    (files, missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpq_vocab::{Interpolation, PoolDraw, PoolPart, SynthSplit, Transform};

    fn draw() -> PoolDraw {
        PoolDraw {
            subset_seed: 0,
            calib: PoolPart::Calibration,
            search: PoolPart::Search,
            test: PoolPart::Test,
        }
    }
    fn transform() -> Transform {
        Transform {
            resize: 256,
            crop: 224,
            interpolation: Interpolation::Bilinear,
            mean: [0.5; 3],
            std: [0.5; 3],
        }
    }
    fn folder(f: Option<&str>) -> DataSource {
        DataSource::ImageFolder {
            folder: f.map(PathBuf::from),
            draw: draw(),
            transform: transform(),
            skip_corrupt: false,
            allow_empty_classes: false,
        }
    }

    #[test]
    fn the_imagenet_variable_stands_in_for_an_empty_path() {
        assert_eq!(
            data_path_with_env(&folder(None), Some("/data/val")),
            Ok(Some(PathBuf::from("/data/val")))
        );
        for env in [None, Some("")] {
            let e = data_path_with_env(&folder(None), env).unwrap_err();
            assert!(
                e.starts_with("data.path: empty, and MPQ_IMAGENET_DIR is not set"),
                "{e}"
            );
        }
        assert_eq!(
            data_path_with_env(&folder(Some("here")), Some("/data/val")),
            Ok(Some(PathBuf::from("here")))
        );
        let tensors = |f: &str| DataSource::Tensors {
            file: f.into(),
            draw: draw(),
            transform: transform(),
        };
        let e = data_path_with_env(&tensors(""), Some("/x")).unwrap_err();
        assert!(e.starts_with("data.path: empty"), "{e}");
        assert_eq!(
            data_path_with_env(&tensors("v.safetensors"), None),
            Ok(Some(PathBuf::from("v.safetensors")))
        );
        let embedded = DataSource::Embedded {
            seed: 0,
            calib: SynthSplit::Calibration,
            search: SynthSplit::Search,
            test: SynthSplit::Test,
        };
        assert_eq!(data_path_with_env(&embedded, None), Ok(None));
    }
}
