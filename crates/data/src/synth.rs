//! The embedded dataset: 32x32 RGB images generated deterministically from a seed, so that the
//! whole pipeline (training, calibration, search) runs anywhere with nothing downloaded.
//!
//! Twenty classes: five shapes (disk, square, triangle, ring, cross) times four bins of the
//! orientation of a stripe texture inside the shape (0-45, 45-90, 90-135 and 135-180 degrees). The
//! stripe angle is drawn uniformly inside its bin, so the classes touch: an image whose stripes
//! lie near a bin edge is told from its neighbour class only by a precise measurement of the
//! angle, and the fraction of such images is fixed by the generator. Accuracy then degrades
//! smoothly with the noise a quantized network adds to that measurement, as on ImageNet's
//! fine-grained classes, instead of staying flat until the features break (the earlier dataset,
//! two well-separated orientations, lost only 2 to 5 points at W4A4). Everything else is a
//! nuisance drawn per image: position, size, rotation, colours (foreground and background are
//! random, so colour carries no label), stripe period and phase, a faint distractor grating in
//! the background, a smooth illumination gradient and pixel noise.
//!
//! Image `i` of a split depends only on `(seed, split, i)`, so any subset can be generated
//! alone, in parallel, in any order.
use crate::rng::Rng;
use crate::Dataset;
use rayon::prelude::*;
use std::f64::consts::PI;

pub const SIDE: usize = 32;
/// Shapes (disk, square, triangle, ring, cross).
pub const SHAPES: usize = 5;
/// Orientation bins of the stripes over 180 degrees.
pub const ORIENTATION_BINS: usize = 4;
/// Label = shape * ORIENTATION_BINS + orientation bin.
pub const NUM_CLASSES: usize = SHAPES * ORIENTATION_BINS;
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
    /// Peak-to-peak brightness of the stripes, added to the foreground colour.
    pub stripe_contrast: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            noise: 0.10,
            distractor: 0.12,
            stripe_contrast: 0.5,
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

/// What one image shows: everything drawn from its generator before the pixel noise.
struct Scene {
    label: u32,
    shape: usize,
    bg: [f64; 3],
    fg: [f64; 3],
    center: (f64, f64),
    size: f64,
    rot: f64,
    /// Radians in [0, pi): inside bin `label % ORIENTATION_BINS` of width pi / bins.
    stripe_angle: f64,
    period: f64,
    phase: f64,
    /// Distractor grating: angle, period, phase.
    distractor: (f64, f64, f64),
    /// Illumination gradient per pixel along x and y.
    light: (f64, f64),
}

impl Scene {
    /// Draw the scene of image `index` (label `index % NUM_CLASSES`) from `r`.
    fn draw(index: u64, r: &mut Rng) -> Scene {
        let label = (index % NUM_CLASSES as u64) as u32;
        let bin = label as usize % ORIENTATION_BINS;
        let bg = random_color(r);
        // Foreground differs from the background by at least 0.35 in one channel.
        let fg = loop {
            let c = random_color(r);
            if (0..3).any(|k| (c[k] - bg[k]).abs() > 0.35) {
                break c;
            }
        };
        let center = (r.range(11.0, 21.0), r.range(11.0, 21.0));
        let size = r.range(7.0, 10.5);
        let rot = r.range(-0.35, 0.35);
        // Uniform inside the label's bin: neighbouring classes meet at the bin edges.
        let stripe_angle = (bin as f64 + r.uniform()) * PI / ORIENTATION_BINS as f64;
        let period = r.range(3.2, 5.0);
        let phase = r.range(0.0, 2.0 * PI);
        let distractor = (r.range(0.0, PI), r.range(3.0, 8.0), r.range(0.0, 2.0 * PI));
        let light = (r.range(-0.012, 0.012), r.range(-0.012, 0.012));
        Scene {
            label,
            shape: label as usize / ORIENTATION_BINS,
            bg,
            fg,
            center,
            size,
            rot,
            stripe_angle,
            period,
            phase,
            distractor,
            light,
        }
    }
}

/// Render image `index` of `split` into `out` (`[3, 32, 32]`, normalized); returns its label.
fn render(cfg: &SynthConfig, split: Split, index: u64, out: &mut [f32]) -> u32 {
    let mut r = Rng::for_item(&[cfg.seed, split_id(split), index]);
    let sc = Scene::draw(index, &mut r);
    let (cr, sr) = (sc.rot.cos(), sc.rot.sin());
    let (ca, sa) = (sc.stripe_angle.cos(), sc.stripe_angle.sin());
    let (d_angle, d_period, d_phase) = sc.distractor;
    let (cd, sd) = (d_angle.cos(), d_angle.sin());
    let (gx, gy) = sc.light;
    let plane = SIDE * SIDE;
    let mid = SIDE as f64 / 2.0;
    for py in 0..SIDE {
        for px in 0..SIDE {
            let (x, y) = (px as f64 + 0.5, py as f64 + 0.5);
            let (dx, dy) = (x - sc.center.0, y - sc.center.1);
            let (u, v) = (cr * dx + sr * dy, -sr * dx + cr * dy);
            let mask = (0.5 + shape_sdf(sc.shape, u, v, sc.size)).clamp(0.0, 1.0);
            // Stripes vary across the stripe direction's normal; the same brightness offset in
            // every channel, whatever the foreground colour.
            let t = (2.0 * PI * (-sa * x + ca * y) / sc.period + sc.phase).sin();
            let stripe = 0.5 * cfg.stripe_contrast * (t * 3.0).tanh();
            let dist = cfg.distractor * (2.0 * PI * (cd * x + sd * y) / d_period + d_phase).sin();
            let light = 1.0 + gx * (x - mid) + gy * (y - mid);
            for c in 0..3 {
                let fgv = sc.fg[c] + stripe;
                let bgv = sc.bg[c] + dist;
                let noise = cfg.noise * r.normal();
                let v = ((mask * fgv + (1.0 - mask) * bgv) * light + noise).clamp(0.0, 1.0);
                out[c * plane + py * SIDE + px] = (v as f32 - MEAN) / STD;
            }
        }
    }
    sc.label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_random_access_and_balanced() {
        let cfg = SynthConfig::default();
        let a = generate(&cfg, Split::Search, 0, 60);
        let b = generate(&cfg, Split::Search, 30, 30);
        assert_eq!(&a.images[30 * 3072..], &b.images[..]);
        assert_eq!(&a.labels[30..], &b.labels[..]);
        assert_eq!(a.num_classes, 20);
        for c in 0..NUM_CLASSES as u32 {
            assert_eq!(a.labels.iter().filter(|&&l| l == c).count(), 3);
        }
        let other = generate(&SynthConfig { seed: 1, ..cfg }, Split::Search, 0, 60);
        assert_ne!(a.images, other.images);
        let test = generate(&cfg, Split::Test, 0, 60);
        assert_ne!(a.images, test.images, "splits differ");
    }

    /// The classes touch: each label's stripe angles fill its whole bin, edges included, and
    /// never leave it.
    #[test]
    fn orientation_bins_are_filled_up_to_their_edges() {
        let width = PI / ORIENTATION_BINS as f64;
        let mut lo = [f64::INFINITY; ORIENTATION_BINS];
        let mut hi = [f64::NEG_INFINITY; ORIENTATION_BINS];
        for i in 0..3000u64 {
            let sc = Scene::draw(i, &mut Rng::for_item(&[0, 4, i]));
            assert_eq!(sc.label as u64, i % NUM_CLASSES as u64);
            assert_eq!(sc.shape, sc.label as usize / ORIENTATION_BINS);
            let bin = sc.label as usize % ORIENTATION_BINS;
            let k = (sc.stripe_angle / width).floor() as usize;
            assert_eq!(
                k, bin,
                "image {i}: angle {} outside bin {bin}",
                sc.stripe_angle
            );
            lo[bin] = lo[bin].min(sc.stripe_angle - bin as f64 * width);
            hi[bin] = hi[bin].max(sc.stripe_angle - bin as f64 * width);
        }
        for b in 0..ORIENTATION_BINS {
            assert!(
                lo[b] < 0.02 * width && hi[b] > 0.98 * width,
                "bin {b}: {} {}",
                lo[b],
                hi[b]
            );
        }
    }

    /// Rendered stripes have the drawn orientation: with noise and distractor off, the
    /// brightness gradient inside the shape points along the stripes' normal (structure tensor,
    /// doubled angle), within 8 degrees for at least 90% of the disks and squares.
    #[test]
    fn stripes_are_rendered_at_the_drawn_angle() {
        let cfg = SynthConfig {
            noise: 0.0,
            distractor: 0.0,
            ..SynthConfig::default()
        };
        let (mut close, mut n) = (0, 0);
        for i in 0..150u64 {
            let sc = Scene::draw(i, &mut Rng::for_item(&[0, 1, i]));
            // Disks and squares: a 7x7 window around the centre (gradients reach 4 pixels out)
            // lies inside the shape, away from its edges.
            if sc.shape > 1 {
                continue;
            }
            n += 1;
            let mut img = vec![0f32; 3 * SIDE * SIDE];
            render(&cfg, Split::Train, i, &mut img);
            let lum = |x: usize, y: usize| -> f64 {
                (0..3)
                    .map(|c| img[c * SIDE * SIDE + y * SIDE + x] as f64)
                    .sum()
            };
            let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
            let (cx, cy) = (sc.center.0 as usize, sc.center.1 as usize);
            for y in cy - 3..=cy + 3 {
                for x in cx - 3..=cx + 3 {
                    let gx = lum(x + 1, y) - lum(x - 1, y);
                    let gy = lum(x, y + 1) - lum(x, y - 1);
                    sxx += gx * gx;
                    syy += gy * gy;
                    sxy += gx * gy;
                }
            }
            // Dominant gradient direction, then the stripes run perpendicular to it.
            let grad = 0.5 * (2.0 * sxy).atan2(sxx - syy);
            let stripes = (grad + PI / 2.0).rem_euclid(PI);
            let err = (stripes - sc.stripe_angle).rem_euclid(PI);
            if err.min(PI - err) < 8f64.to_radians() {
                close += 1;
            }
        }
        assert!(
            n >= 50 && close * 10 >= n * 9,
            "{close} of {n} within 8 degrees"
        );
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
