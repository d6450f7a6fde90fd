//! A run's data source turned into its calibration and search batches: the embedded dataset's
//! generated splits, or disjoint seeded subsets of an image pool (an ImageNet-style image folder
//! decoded with torchvision's evaluation transform, or a prepared tensor file).
//!
//! Every problem is one line naming the manifest and the key (`data.path`, counts) or the data
//! file (and tensor) at fault.
use crate::inputs::data_path;
use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use mpq_data::subset::{Part, Partition};
use mpq_data::synth::{generate, SynthConfig};
use mpq_data::{Batch, Dataset, ImageFolder, OnBadImage, Preprocess, TensorFile};
use mpq_vocab::{DataSource, PoolDraw, Split, Transform};
use std::path::{Path, PathBuf};

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

/// How many images of each part a run uses (`data.calib_images`, `data.search_images`).
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    pub calib: usize,
    pub search: usize,
}

/// The evaluation transform of a data source's settings.
pub fn preprocess(t: &Transform) -> Preprocess {
    Preprocess {
        resize: t.resize,
        crop: t.crop,
        interpolation: t.interpolation,
        mean: t.mean.map(|v| v as f32),
        std: t.std.map(|v| v as f32),
    }
}

/// Load the calibration and search images of `source`, batched for `device` (`calib_batch` and
/// `search_batch` images per batch). `manifest` names the manifest in errors; `num_classes` is
/// the model's output count.
pub fn load(
    source: &DataSource,
    counts: Counts,
    manifest: &Path,
    num_classes: usize,
    (calib_batch, search_batch): (usize, usize),
    device: &Device,
) -> Result<DataSplits> {
    let at = manifest.display();
    let path = data_path(source).map_err(|e| anyhow!("{at}: {e}"))?;
    let (calib, search, skipped) = match (source, path) {
        (
            DataSource::Embedded {
                seed,
                calib,
                search,
            },
            _,
        ) => {
            let synth = SynthConfig {
                seed: *seed,
                ..SynthConfig::default()
            };
            let c = generate(&synth, *calib, 0, counts.calib);
            let s = generate(&synth, *search, 0, counts.search);
            (c, s, vec![])
        }
        (
            DataSource::ImageFolder {
                draw,
                transform,
                skip_corrupt,
                allow_empty_classes,
                ..
            },
            Some(root),
        ) => {
            let folder = ImageFolder::scan(&root, *allow_empty_classes)?;
            if folder.classes.len() > num_classes {
                bail!(
                    "{}: {} class folders, more than the model's {num_classes} classes",
                    root.display(),
                    folder.classes.len()
                );
            }
            let (ci, si) = subsets(draw, counts, manifest, folder.len(), &root)?;
            let pre = preprocess(transform);
            let on_bad = if *skip_corrupt {
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
        (
            DataSource::Tensors {
                draw, transform, ..
            },
            Some(file),
        ) => {
            let f = TensorFile::open(&file)?;
            f.check_labels(num_classes)?;
            check_prepared(transform, &f, manifest)?;
            let (ci, si) = subsets(draw, counts, manifest, f.len(), &file)?;
            (
                f.gather(&ci, num_classes),
                f.gather(&si, num_classes),
                vec![],
            )
        }
        (DataSource::ImageFolder { .. } | DataSource::Tensors { .. }, None) => {
            unreachable!("an image pool always has a path (data_path)")
        }
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
    draw: &PoolDraw,
    counts: Counts,
    manifest: &Path,
    n: usize,
    source: &Path,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let p = Partition::new(n, draw.subset_seed, counts.calib, counts.search);
    let take = |key: &str, part: Part, k: usize| -> Result<Vec<usize>> {
        p.take(part, k).map(<[usize]>::to_vec).map_err(|have| {
            anyhow!(
                "{}: {key}: {k} images asked from part \"{}\" of the {n} images \
                 of {}, which holds {have} (calibration part first, then search, then test)",
                manifest.display(),
                Split::from(part),
                source.display()
            )
        })
    };
    Ok((
        take("data.calib_images", draw.calib, counts.calib)?,
        take("data.search_images", draw.search, counts.search)?,
    ))
}

/// A prepared file must hold images of the manifest's crop, and, when it records its
/// preprocessing, the manifest's.
fn check_prepared(t: &Transform, f: &TensorFile, manifest: &Path) -> Result<()> {
    let want = preprocess(t);
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
        p.resize, p.crop, p.interpolation, p.mean, p.std
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpq_vocab::{Interpolation, PoolPart};

    #[test]
    fn the_default_transform_is_torchvisions() {
        let d = crate::manifest::DataSection::default();
        let t = Transform {
            resize: d.resize,
            crop: d.crop,
            interpolation: d.interpolation,
            mean: d.mean,
            std: d.std,
        };
        assert_eq!(preprocess(&t), Preprocess::default());
        assert_eq!(t.interpolation, Interpolation::Bilinear);
    }

    #[test]
    fn counts_beyond_a_part_name_the_key() {
        let draw = PoolDraw {
            subset_seed: 0,
            calib: PoolPart::Calibration,
            search: PoolPart::Search,
        };
        let counts = Counts {
            calib: 4,
            search: 7,
        };
        let e = subsets(
            &draw,
            counts,
            Path::new("m.toml"),
            10,
            Path::new("v.safetensors"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("m.toml: data.search_images: 7 images asked from part \"search\" of the 10 images of v.safetensors, which holds 6"),
            "{e}"
        );
        // Paper style: search on the whole pool, calibration images included.
        let all = PoolDraw {
            search: PoolPart::All,
            ..draw.clone()
        };
        let counts = Counts {
            calib: 4,
            search: 10,
        };
        let (c, s) = subsets(&all, counts, Path::new("m.toml"), 10, Path::new("v")).unwrap();
        assert_eq!((c.len(), s.len()), (4, 10));
        assert!(c.iter().all(|i| s.contains(i)));
        // Default parts are disjoint.
        let counts = Counts {
            calib: 4,
            search: 6,
        };
        let (c, s) = subsets(&draw, counts, Path::new("m.toml"), 10, Path::new("v")).unwrap();
        assert!(c.iter().all(|i| !s.contains(i)));
    }
}
