//! Datasets for the searches: the synthetic embedded dataset the project generates itself
//! (so everything runs anywhere with nothing downloaded), image folders in torchvision's
//! layout with torchvision's evaluation preprocessing (ImageNet), prepared tensor files,
//! seeded disjoint subsets, and batching into candle tensors. Knows nothing of models or
//! searches.

pub mod imagefolder;
pub mod prepare;
pub mod preprocess;
pub mod rng;
pub mod subset;
pub mod synth;
pub mod tensorfile;

use candle_core::{Device, Tensor};
use std::path::PathBuf;

pub use imagefolder::{ImageFolder, OnBadImage};
pub use preprocess::{Interpolation, Preprocess};
pub use rng::Rng;
pub use synth::{Split, SynthConfig};
pub use tensorfile::{StoredDtype, TensorFile};

/// A problem with a data file, as one line naming the file (and the tensor).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: tensor {tensor:?}: {message}")]
    Tensor {
        path: PathBuf,
        tensor: String,
        message: String,
    },
}

/// Images `[N, 3, H, W]` (f32, normalized) and labels `[N]` held in memory on the host.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    pub shape: [usize; 3],
    pub num_classes: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Images `start..start+len` as a `[len, C, H, W]` tensor on `device`.
    pub fn images_tensor(
        &self,
        start: usize,
        len: usize,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let il = self.image_len();
        let [c, h, w] = self.shape;
        Tensor::from_slice(
            &self.images[start * il..(start + len) * il],
            (len, c, h, w),
            device,
        )
    }

    /// Images of the given indices (any order) as one tensor.
    pub fn gather_images(&self, idx: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let il = self.image_len();
        let mut v = Vec::with_capacity(idx.len() * il);
        for &i in idx {
            v.extend_from_slice(&self.images[i * il..(i + 1) * il]);
        }
        let [c, h, w] = self.shape;
        Tensor::from_vec(v, (idx.len(), c, h, w), device)
    }

    /// SHA-256 (first 16 bytes, hex) of the image shape, every pixel value (little-endian f32
    /// bits) and every label, in order: two datasets with the same digest hold the same
    /// images, so results on them can be compared image by image.
    pub fn digest(&self) -> String {
        let mut h = mpq_io::Hasher::new();
        for d in self.shape {
            h.update((d as u64).to_le_bytes());
        }
        h.update((self.len() as u64).to_le_bytes());
        let bytes: Vec<u8> = self.images.iter().flat_map(|v| v.to_le_bytes()).collect();
        h.update(&bytes);
        let labels: Vec<u8> = self.labels.iter().flat_map(|v| v.to_le_bytes()).collect();
        h.update(&labels);
        h.finish_hex(16)
    }

    /// Consecutive batches `(images, labels)` of at most `batch` images, kept on `device`.
    pub fn batches(&self, batch: usize, device: &Device) -> candle_core::Result<Vec<Batch>> {
        assert!(batch > 0);
        (0..self.len())
            .step_by(batch)
            .map(|s| {
                let n = batch.min(self.len() - s);
                Ok(Batch {
                    images: self.images_tensor(s, n, device)?,
                    labels: self.labels[s..s + n].to_vec(),
                })
            })
            .collect()
    }
}

/// One batch: images on the device, labels on the host (for counting correct answers).
#[derive(Clone, Debug)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Vec<u32>,
}
