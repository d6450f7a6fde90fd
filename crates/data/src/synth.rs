//! The embedded dataset: 32x32 RGB images generated deterministically from a seed, so that the
//! whole pipeline (training, calibration, search) runs anywhere with nothing downloaded.
//!
//! Ten classes: five shapes (disk, square, triangle, ring, cross) times two stripe orientations
//! of the texture inside the shape (near-horizontal, near-vertical). Everything else is a
//! nuisance drawn per image: position, size, rotation, colours (foreground and background are
//! random, so colour carries no label), stripe period and phase, a faint distractor grating in
//! the background, a smooth illumination gradient and pixel noise. Telling a ring from a disk
//! or a cross from a square under that clutter takes fine features, which is what low-bit
//! quantization damages first: the search has something to find.
//!
//! Image `i` of a split depends only on `(seed, split, i)`, so any subset can be generated
//! alone, in parallel, in any order.
use crate::rng::Rng;
use crate::Dataset;
use rayon::prelude::*;
use std::f64::consts::PI;

pub const SIDE: usize = 32;
pub const NUM_CLASSES: usize = 10;
/// Normalization applied after rendering to [0, 1]: `(x - MEAN) / STD`.
pub const MEAN: f32 = 0.5;
pub const STD: f32 = 0.25;

/// The four disjoint splits of the embedded dataset (the vocabulary's type; its names are
/// `mpq_vocab::Split`'s).
pub use mpq_vocab::SynthSplit as Split;

/// The split's part of every image's seed.
fn split_id(split: Split) -> u64 {
    match split {
        Split::Train => 1,
        Split::Calibration => 2,
        Split::Search => 3,
        Split::Test => 4,
    }
}

/// Generator settings. The defaults are the embedded suite's; changing any of them changes
/// every image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SynthConfig {
    pub seed: u64,
    /// Standard deviation of the per-pixel Gaussian noise, in [0, 1] units.
    pub noise: f64,
    /// Amplitude of the background distractor grating.
    pub distractor: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            noise: 0.10,
            distractor: 0.12,
        }
    }
}

/// Generate `count` images of `split`, starting at index `start`.
pub fn generate(cfg: &SynthConfig, split: Split, start: usize, count: usize) -> Dataset {
    let il = 3 * SIDE * SIDE;
    let mut images = vec![0f32; count * il];
    let mut labels = vec![0u32; count];
    images
        .par_chunks_mut(il)
        .zip(labels.par_iter_mut())
        .enumerate()
        .for_each(|(k, (img, label))| {
            *label = render(cfg, split, (start + k) as u64, img);
        });
    Dataset {
        images,
        labels,
        shape: [3, SIDE, SIDE],
        num_classes: NUM_CLASSES,
    }
}

/// Signed distance (in pixels, positive inside) of a point from a shape of "radius" `s`.
fn shape_sdf(shape: usize, x: f64, y: f64, s: f64) -> f64 {
    match shape {
        0 => s - (x * x + y * y).sqrt(),
        1 => 0.85 * s - x.abs().max(y.abs()),
        2 => {
            // Equilateral triangle pointing up: inside three half-planes.
            let mut d = f64::INFINITY;
            for k in 0..3 {
                let a = -PI / 2.0 + k as f64 * 2.0 * PI / 3.0;
                d = d.min(0.55 * s - (x * a.cos() + y * a.sin()));
            }
            d
        }
        3 => {
            let r = (x * x + y * y).sqrt();
            (s - r).min(r - 0.5 * s)
        }
        _ => {
            let w = 0.33 * s;
            let bar1 = (s - x.abs()).min(w - y.abs());
            let bar2 = (w - x.abs()).min(s - y.abs());
            bar1.max(bar2)
        }
    }
}

fn random_color(r: &mut Rng) -> [f64; 3] {
    [r.uniform(), r.uniform(), r.uniform()]
}

/// Render image `index` of `split` into `out` (`[3, 32, 32]`, normalized); returns its label.
fn render(cfg: &SynthConfig, split: Split, index: u64, out: &mut [f32]) -> u32 {
    let mut r = Rng::for_item(&[cfg.seed, split_id(split), index]);
    let label = (index % NUM_CLASSES as u64) as u32;
    let shape = label as usize / 2;
    let vertical = label % 2 == 1;

    let bg = random_color(&mut r);
    // Foreground differs from the background by at least 0.35 in one channel.
    let fg = loop {
        let c = random_color(&mut r);
        if (0..3).any(|k| (c[k] - bg[k]).abs() > 0.35) {
            break c;
        }
    };
    let (cx, cy) = (r.range(11.0, 21.0), r.range(11.0, 21.0));
    let size = r.range(7.0, 10.5);
    let rot = r.range(-0.35, 0.35);
    let stripe_angle = if vertical { PI / 2.0 } else { 0.0 } + r.range(-0.3, 0.3);
    let period = r.range(3.2, 5.0);
    let phase = r.range(0.0, 2.0 * PI);
    let d_angle = r.range(0.0, PI);
    let d_period = r.range(3.0, 8.0);
    let d_phase = r.range(0.0, 2.0 * PI);
    let (gx, gy) = (r.range(-0.012, 0.012), r.range(-0.012, 0.012));

    let (cr, sr) = (rot.cos(), rot.sin());
    let (ca, sa) = (stripe_angle.cos(), stripe_angle.sin());
    let (cd, sd) = (d_angle.cos(), d_angle.sin());
    let plane = SIDE * SIDE;
    for py in 0..SIDE {
        for px in 0..SIDE {
            let (x, y) = (px as f64 + 0.5, py as f64 + 0.5);
            let (dx, dy) = (x - cx, y - cy);
            let (u, v) = (cr * dx + sr * dy, -sr * dx + cr * dy);
            let mask = (0.5 + shape_sdf(shape, u, v, size)).clamp(0.0, 1.0);
            // Stripes vary across the stripe direction's normal.
            let t = (2.0 * PI * (-sa * x + ca * y) / period + phase).sin();
            let stripe = 0.55 + 0.45 * (t * 3.0).tanh();
            let dist = cfg.distractor * (2.0 * PI * (cd * x + sd * y) / d_period + d_phase).sin();
            let light = 1.0 + gx * (x - 16.0) + gy * (y - 16.0);
            for c in 0..3 {
                let fgv = fg[c] * stripe;
                let bgv = bg[c] + dist;
                let noise = cfg.noise * r.normal();
                let v = ((mask * fgv + (1.0 - mask) * bgv) * light + noise).clamp(0.0, 1.0);
                out[c * plane + py * SIDE + px] = (v as f32 - MEAN) / STD;
            }
        }
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_random_access_and_balanced() {
        let cfg = SynthConfig::default();
        let a = generate(&cfg, Split::Search, 0, 40);
        let b = generate(&cfg, Split::Search, 30, 10);
        assert_eq!(&a.images[30 * 3072..], &b.images[..]);
        assert_eq!(&a.labels[30..], &b.labels[..]);
        for c in 0..NUM_CLASSES as u32 {
            assert_eq!(a.labels.iter().filter(|&&l| l == c).count(), 4);
        }
        let other = generate(&SynthConfig { seed: 1, ..cfg }, Split::Search, 0, 40);
        assert_ne!(a.images, other.images);
        let test = generate(&cfg, Split::Test, 0, 40);
        assert_ne!(a.images, test.images, "splits differ");
    }

    #[test]
    fn values_are_normalized_and_images_vary() {
        let d = generate(&SynthConfig::default(), Split::Train, 0, 20);
        let lo = (0.0 - MEAN) / STD;
        let hi = (1.0 - MEAN) / STD;
        assert!(d.images.iter().all(|&v| v >= lo && v <= hi));
        let mean = d.images.iter().map(|&v| v as f64).sum::<f64>() / d.images.len() as f64;
        assert!(mean.abs() < 1.0);
        assert_ne!(d.images[..3072], d.images[3072..6144]);
    }
}
