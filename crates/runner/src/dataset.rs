//! A manifest's `[data]` section turned into the calibration and search batches of a run:
//! the embedded dataset's generated splits, or disjoint seeded subsets of an image pool (an
//! ImageNet-style image folder decoded with torchvision's evaluation transform, or a prepared
//! tensor file). Also which files and folders a section reads, for up-to-date checks.
//!
//! Every problem is one line naming the manifest and the key (`data.path`, counts) or the data
//! file (and tensor) at fault.
use crate::manifest::DataSection;
use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use mpq_data::subset::{Part, Partition};
use mpq_data::synth::{generate, Split, SynthConfig};
use mpq_data::{Batch, Dataset, ImageFolder, Interpolation, OnBadImage, Preprocess, TensorFile};
use std::path::{Path, PathBuf};

/// The environment variable naming the ImageNet validation folder, used by the `imagefolder`
/// dataset when `data.path` is empty.
pub const IMAGENET_ENV: &str = "MPQ_IMAGENET_DIR";

/// The images of a run.
#[derive(Debug)]
pub struct DataSplits {
    pub calib: Vec<Batch>,
    pub search: Vec<Batch>,
    /// Images actually in `calib` and `search` (fewer than asked for only when undecodable
    /// images were skipped).
    pub n_calib: usize,
    pub n_search: usize,
    /// Images left out as undecodable (`data.skip_corrupt`), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// The folder or file a section reads: `data.path`, or for `imagefolder` with an empty
/// `data.path`, `$MPQ_IMAGENET_DIR` (`env` is the variable's value). `None` for `embedded`.
pub fn data_path_with_env(
    d: &DataSection,
    env: Option<&str>,
) -> std::result::Result<Option<PathBuf>, String> {
    match d.dataset.as_str() {
        "embedded" => Ok(None),
        "imagefolder" if d.path.as_os_str().is_empty() => match env.filter(|v| !v.is_empty()) {
            Some(v) => Ok(Some(PathBuf::from(v))),
            None => Err(format!(
                "data.path: empty, and {IMAGENET_ENV} is not set: set one of them to the image \
                 folder (one subfolder per class, e.g. the ImageNet validation set)"
            )),
        },
        _ if d.path.as_os_str().is_empty() => Err(format!(
            "data.path: empty: the {} dataset needs the path of its file",
            d.dataset
        )),
        _ => Ok(Some(d.path.clone())),
    }
}

/// [`data_path_with_env`] with the process environment.
pub fn data_path(d: &DataSection) -> std::result::Result<Option<PathBuf>, String> {
    data_path_with_env(d, std::env::var(IMAGENET_ENV).ok().as_deref())
}

/// The input files and folders a section's data reads (for up-to-date checks): nothing for
/// `embedded` (generated from the seed by the data crate, whose code is part of the code
/// version), the image folder's root for `imagefolder` (its class folders and images are not
/// listed), the file for `tensors`. `Err` says what is missing from the configuration itself
/// (an empty `data.path` with `MPQ_IMAGENET_DIR` unset), naming the key and the variable.
pub fn data_inputs(d: &DataSection) -> std::result::Result<Vec<PathBuf>, String> {
    Ok(data_path(d)?.into_iter().collect())
}

/// The evaluation transform a section asks for (`data.resize`, `crop`, `interpolation`,
/// `mean`, `std`).
pub fn preprocess(d: &DataSection) -> Preprocess {
    Preprocess {
        resize: d.resize,
        crop: d.crop,
        interpolation: Interpolation::parse(&d.interpolation)
            .expect("checked by the manifest loader"),
        mean: d.mean.map(|v| v as f32),
        std: d.std.map(|v| v as f32),
    }
}

/// Load the calibration and search images a section names, batched for `device`
/// (`calib_batch` and `search_batch` images per batch). `manifest` names the manifest in
/// errors; `num_classes` is the model's output count.
pub fn load(
    d: &DataSection,
    manifest: &Path,
    num_classes: usize,
    (calib_batch, search_batch): (usize, usize),
    device: &Device,
) -> Result<DataSplits> {
    let at = manifest.display();
    let path = data_path(d).map_err(|e| anyhow!("{at}: {e}"))?;
    let (calib, search, skipped) = match (d.dataset.as_str(), path) {
        ("embedded", _) => {
            let synth = SynthConfig {
                seed: d.seed,
                ..SynthConfig::default()
            };
            let split =
                |s: &str| Split::parse(s).ok_or_else(|| anyhow!("{at}: unknown split {s:?}"));
            let calib = generate(&synth, split(&d.calib_split)?, 0, d.calib_images);
            let search = generate(&synth, split(&d.search_split)?, 0, d.search_images);
            (calib, search, vec![])
        }
        ("imagefolder", Some(root)) => {
            let folder = ImageFolder::scan(&root, d.allow_empty_classes)?;
            if folder.classes.len() > num_classes {
                bail!(
                    "{}: {} class folders, more than the model's {num_classes} classes",
                    root.display(),
                    folder.classes.len()
                );
            }
            let (ci, si) = subsets(d, manifest, folder.len(), &root)?;
            let pre = preprocess(d);
            let on_bad = if d.skip_corrupt {
                OnBadImage::Skip
            } else {
                OnBadImage::Fail
            };
            let c = folder.load(&ci, &pre, on_bad)?;
            let s = folder.load(&si, &pre, on_bad)?;
            // An image can be in both parts (search_split = "all"): count each file once.
            let mut skipped: Vec<_> = c.skipped.into_iter().chain(s.skipped).collect();
            skipped.sort_by(|a, b| a.0.cmp(&b.0));
            skipped.dedup_by(|a, b| a.0 == b.0);
            (c.dataset, s.dataset, skipped)
        }
        ("tensors", Some(file)) => {
            let f = TensorFile::open(&file)?;
            f.check_labels(num_classes)?;
            check_prepared(d, &f, manifest)?;
            let (ci, si) = subsets(d, manifest, f.len(), &file)?;
            (
                f.gather(&ci, num_classes),
                f.gather(&si, num_classes),
                vec![],
            )
        }
        (other, _) => bail!("{at}: data.dataset: unknown dataset {other:?}"),
    };
    let batches = |ds: &Dataset, batch_size: usize| -> Result<Vec<Batch>> {
        if ds.is_empty() {
            bail!("{at}: no image left to use after skipping undecodable ones");
        }
        Ok(ds.batches(batch_size, device)?)
    };
    Ok(DataSplits {
        calib: batches(&calib, calib_batch)?,
        search: batches(&search, search_batch)?,
        n_calib: calib.len(),
        n_search: search.len(),
        skipped,
    })
}

/// The calibration and search indices of a pool of `n` images.
fn subsets(
    d: &DataSection,
    manifest: &Path,
    n: usize,
    source: &Path,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let p = Partition::new(n, d.subset_seed, d.calib_images, d.search_images);
    let take = |key: &str, split: &str, k: usize| -> Result<Vec<usize>> {
        let part = Part::parse(split).expect("checked by the manifest loader");
        p.take(part, k).map(<[usize]>::to_vec).map_err(|have| {
            anyhow!(
                "{}: data.{key}_images: {k} images asked from part {split:?} of the {n} images \
                 of {}, which holds {have} (calibration part first, then search, then test)",
                manifest.display(),
                source.display()
            )
        })
    };
    Ok((
        take("calib", &d.calib_split, d.calib_images)?,
        take("search", &d.search_split, d.search_images)?,
    ))
}

/// A prepared file must hold images of the manifest's crop, and, when it records its
/// preprocessing, the manifest's.
fn check_prepared(d: &DataSection, f: &TensorFile, manifest: &Path) -> Result<()> {
    let want = preprocess(d);
    let [_, h, w] = f.shape;
    if (h, w) != (want.crop, want.crop) {
        bail!(
            "{}: tensor \"images\": images are {h}x{w}, but {} asks for data.crop = {}",
            f.path.display(),
            manifest.display(),
            want.crop
        );
    }
    if let Some(got) = f.preprocess()? {
        if got != want {
            bail!(
                "{}: prepared with {}, but {} asks for {} (data.resize, crop, interpolation, mean, std)",
                f.path.display(),
                describe(&got),
                manifest.display(),
                describe(&want)
            );
        }
    }
    Ok(())
}

fn describe(p: &Preprocess) -> String {
    format!(
        "resize {} crop {} {} mean {:?} std {:?}",
        p.resize,
        p.crop,
        p.interpolation.name(),
        p.mean,
        p.std
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(dataset: &str, path: &str) -> DataSection {
        DataSection {
            dataset: dataset.into(),
            path: path.into(),
            ..DataSection::default()
        }
    }

    #[test]
    fn the_imagenet_variable_stands_in_for_an_empty_path() {
        let d = section("imagefolder", "");
        assert_eq!(
            data_path_with_env(&d, Some("/data/val")),
            Ok(Some(PathBuf::from("/data/val")))
        );
        for env in [None, Some("")] {
            let e = data_path_with_env(&d, env).unwrap_err();
            assert!(
                e.starts_with("data.path: empty, and MPQ_IMAGENET_DIR is not set"),
                "{e}"
            );
        }
        let d = section("imagefolder", "here");
        assert_eq!(
            data_path_with_env(&d, Some("/data/val")),
            Ok(Some(PathBuf::from("here")))
        );
        let e = data_path_with_env(&section("tensors", ""), Some("/x")).unwrap_err();
        assert!(e.starts_with("data.path: empty"), "{e}");
        assert_eq!(
            data_path_with_env(&section("embedded", "x"), None),
            Ok(None)
        );
        assert_eq!(
            data_inputs(&section("tensors", "v.safetensors")),
            Ok(vec![PathBuf::from("v.safetensors")])
        );
        assert_eq!(data_inputs(&section("embedded", "")), Ok(vec![]));
        assert!(data_inputs(&section("tensors", "")).is_err());
    }

    #[test]
    fn the_default_transform_is_torchvisions() {
        assert_eq!(preprocess(&DataSection::default()), Preprocess::default());
    }

    #[test]
    fn counts_beyond_a_part_name_the_key() {
        let d = DataSection {
            calib_images: 4,
            search_images: 7,
            ..section("tensors", "v.safetensors")
        };
        let e = subsets(&d, Path::new("m.toml"), 10, Path::new("v.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.toml: data.search_images: 7 images asked from part \"search\" of the 10 images of v.safetensors, which holds 6"),
            "{e}"
        );
        // Paper style: search on the whole pool, calibration images included.
        let d = DataSection {
            search_split: "all".into(),
            search_images: 10,
            ..d
        };
        let (c, s) = subsets(&d, Path::new("m.toml"), 10, Path::new("v")).unwrap();
        assert_eq!((c.len(), s.len()), (4, 10));
        assert!(c.iter().all(|i| s.contains(i)));
        // Default parts are disjoint.
        let d = DataSection {
            search_split: "search".into(),
            search_images: 6,
            ..d
        };
        let (c, s) = subsets(&d, Path::new("m.toml"), 10, Path::new("v")).unwrap();
        assert!(c.iter().all(|i| !s.contains(i)));
    }
}
