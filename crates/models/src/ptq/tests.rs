//! Tests of the post-training methods (issue 13's "each able to fail" list) on the committed
//! embedded models and data, and of their plumbing into `QuantModel`.
use super::*;
use crate::arch::Arch;
use crate::kernels::Isa;
use crate::prefix::PrefixEvaluator;
use crate::qmodel::{Kernels, Precision};
use crate::test_util::{images, max_diff, random_model};
use crate::ArchName;
use candle_core::Device;
use mpq_data::synth::{generate, Split, SynthConfig};
use mpq_quant::clip::mmse_rows;
use mpq_quant::uniform::row_extremes;
use mpq_quant::{Grid, InputQuant, Uniform};
use std::path::PathBuf;

const W4A4: BitPair = BitPair { w: 4, a: 4 };

/// An embedded model with its committed trained weights.
pub(crate) fn embedded(arch: ArchName) -> QuantModel {
    let a = Arch::new(arch);
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/embedded/weights")
        .join(format!("{arch}.safetensors"));
    let w = crate::load_weights(&p, &a, &Device::Cpu).unwrap();
    QuantModel::new(a, w, &Device::Cpu).unwrap()
}

/// `n` images of an embedded split, in batches of `batch`.
pub(crate) fn split(s: Split, n: usize, batch: usize) -> Vec<Batch> {
    generate(&SynthConfig::default(), s, 0, n)
        .batches(batch, &Device::Cpu)
        .unwrap()
}

fn channel_means(t: &Tensor, rows: usize) -> Vec<f64> {
    let v = host(t).unwrap();
    v.chunks(v.len() / rows)
        .map(|r| r.iter().map(|&x| x as f64).sum::<f64>() / r.len() as f64)
        .collect()
}

/// Issue 13: MMSE's per-channel error is at most min-max's on every channel (the float
/// min-max grid of the same bits), on every layer of both embedded models at 2, 3, 4 and 8
/// bits. The spec's power-of-two min-max grid is not among MMSE's candidates (its step is
/// coarser, its levels sit elsewhere): it is lower on some channels (measured: 174 of 5820 at
/// 2-4 bits, and many 9-weight depthwise channels at 8 bits, where MMSE is the float min-max
/// grid and alignment is luck), but never on a whole layer at 2-4 bits.
#[test]
fn mmse_channel_error_is_at_most_min_max_on_every_channel() {
    for arch in ArchName::embedded() {
        let m = embedded(arch);
        for i in 0..m.n_layers() {
            let w = host(m.folded_layer(i).0).unwrap();
            let rows = m.arch.layers[i].out_ch;
            let n = w.len() / rows;
            for bits in [2u8, 3, 4, 8] {
                let grids = mmse_rows(&w, rows, bits, 100);
                let (mut layer_mmse, mut layer_spec) = (0.0, 0.0);
                for (c, ((row, g), (mn, mx))) in w
                    .chunks(n)
                    .zip(&grids)
                    .zip(row_extremes(&w, rows))
                    .enumerate()
                {
                    let Some(g) = g else { continue };
                    let e = g.error_sum(row, 2.0);
                    let float = Uniform::from_range(mn, mx, bits)
                        .unwrap()
                        .error_sum(row, 2.0);
                    let spec = Uniform::from_pow2(&Grid::min_max(mn, mx, bits).unwrap())
                        .error_sum(row, 2.0);
                    assert!(e <= float, "{arch} layer {i} channel {c} {bits} bits");
                    layer_mmse += e;
                    layer_spec += spec;
                }
                assert!(
                    bits == 8 || layer_mmse <= layer_spec,
                    "{arch} layer {i} {bits} bits: {layer_mmse} > spec {layer_spec}"
                );
            }
        }
    }
}

#[test]
fn activations_follow_the_graph() {
    let m = random_model(ArchName::ResnetTiny);
    let act = followed_by_activation(&m);
    let name = |i: usize| m.arch.layers[i].name.as_str();
    for (i, a) in act.iter().enumerate() {
        let want = name(i) == "conv1" || name(i).ends_with(".conv1");
        assert_eq!(*a, want, "{}", name(i));
    }
    let m = random_model(ArchName::MobilenetTiny);
    let act = followed_by_activation(&m);
    // Inverted residuals: expand and depthwise are followed by ReLU6, the projection is not.
    for (i, l) in m.arch.layers.iter().enumerate() {
        if l.kind == crate::arch::LayerKind::Depthwise {
            assert!(act[i] && !act[i + 1], "{}", l.name);
        }
    }
}

/// Issue 13: after bias correction each channel's mean of the quantized weights equals the
/// float one to 1e-6, for ACIQ (which applies it by default) and for any method with the
/// switch on.
#[test]
fn bias_correction_restores_channel_means_with_any_method() {
    let m = embedded(ArchName::MobilenetTiny);
    let calib = split(Split::Calibration, 32, 32);
    let config = vec![W4A4; m.n_layers()];
    for method in [MethodName::Aciq, MethodName::Mmse, MethodName::Rtn] {
        let mut cfg = PtqConfig::common(method);
        cfg.bias_correction = Some(BiasCorrection::Mean);
        let mut q = embedded(ArchName::MobilenetTiny);
        apply(&mut q, &cfg, std::slice::from_ref(&config), &calib).unwrap();
        let mut moved = false;
        for i in 0..m.n_layers() {
            let rows = m.arch.layers[i].out_ch;
            let want = channel_means(m.folded_layer(i).0, rows);
            let got = channel_means(&q.method_layer_of(i, W4A4).unwrap().weight, rows);
            for (c, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-6,
                    "{method:?} layer {i} channel {c}: {a} vs {b}"
                );
            }
            let w = host(m.folded_layer(i).0).unwrap();
            let plain = mpq_quant::quantize_weights_per_channel(&w, rows, 4);
            let t = Tensor::from_vec(plain, m.folded_layer(i).0.shape(), &Device::Cpu).unwrap();
            moved |= channel_means(&t, rows)
                .iter()
                .zip(&want)
                .any(|(a, b)| (a - b).abs() > 1e-5);
        }
        assert!(moved, "quantization alone moves some channel mean");
    }
}

#[test]
fn aciq_per_channel_inputs_allocate_bits_within_the_budget() {
    // The trained stem's channels have similar spreads (within the factor 2^0.75 inside which
    // allocation stays uniform); channel 0 is made 8x wider (its batch-norm scale and shift),
    // so the next layer's input has one wide channel, which must get more bits.
    let a = Arch::new(ArchName::ResnetTiny);
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/embedded/weights/resnet-tiny.safetensors");
    let mut w = crate::load_weights(&p, &a, &Device::Cpu).unwrap();
    for name in ["bn1.weight", "bn1.bias"] {
        let mut v = w[name].to_vec1::<f32>().unwrap();
        v[0] *= 8.0;
        let n = v.len();
        w.insert(name.into(), Tensor::from_vec(v, n, &Device::Cpu).unwrap());
    }
    let mut m = QuantModel::new(a, w, &Device::Cpu).unwrap();
    let calib = split(Split::Calibration, 32, 32);
    let mut cfg = PtqConfig::published(MethodName::Aciq);
    assert!(cfg.aciq.per_channel_inputs && cfg.first_last_high);
    cfg.first_last_high = false;
    let config = vec![W4A4; m.n_layers()];
    apply(&mut m, &cfg, std::slice::from_ref(&config), &calib).unwrap();
    let mut per_channel = 0;
    let mut allocated = false;
    for i in 0..m.n_layers() {
        if let Some(InputQuant::PerChannel(gs)) = &m.method_layer_of(i, W4A4).unwrap().input {
            per_channel += 1;
            // Sum of log2(levels) over channels is the bit budget.
            let bits: u32 = gs.iter().map(|g| g.levels().ilog2()).sum();
            assert!(bits <= 4 * gs.len() as u32, "layer {i}: {bits} bits");
            if i == 1 {
                allocated = gs[0].levels() > 16;
            }
        }
    }
    // Every convolution's input; the classifier's input is a vector (one grid).
    assert_eq!(per_channel, m.n_layers() - 1);
    assert!(allocated, "the wide channel got more than 4 bits");
    let x = &calib[0].images;
    m.set_config(&config);
    let y = m.logits(x, Precision::Quantized).unwrap();
    assert_eq!(y.dims(), [32, m.arch.num_classes]);
}

/// A method's layers plug into the model: configurations switch by index, the prefix evaluator
/// gives the counts of full forward passes, and other pairs keep the spec's quantizer.
#[test]
fn installed_layers_switch_and_keep_prefix_reuse_exact() {
    let mut m = random_model(ArchName::MobilenetTiny);
    let calib = images(32);
    let n = m.n_layers();
    m.prepare(&[BitPair::W8A8, W4A4], &calib).unwrap();
    let x = &calib[0].images;
    m.set_config(&vec![W4A4; n]);
    let spec = m.logits(x, Precision::Quantized).unwrap();
    let cfg = PtqConfig::common(MethodName::Mmse);
    let report = apply(&mut m, &cfg, &[vec![W4A4; n]], &calib).unwrap();
    assert_eq!(report.method, MethodName::Mmse);
    assert!(report.forward_passes > 0 && report.wall_s > 0.0);
    let mmse = m.logits(x, Precision::Quantized).unwrap();
    assert!(
        max_diff(&spec, &mmse) > 0.0,
        "MMSE computes with its own layers"
    );
    // W8A8 still is the spec's quantizer; mixing pairs works and prefix reuse is exact.
    let batches = images(48);
    let mut e = PrefixEvaluator::new(&m, &batches, W4A4, BitPair::W8A8, usize::MAX).unwrap();
    for set in [vec![], vec![3], vec![3, 7], (0..n).collect::<Vec<_>>()] {
        let mut low = vec![false; n];
        set.iter().for_each(|&i| low[i] = true);
        let config: Vec<BitPair> = low
            .iter()
            .map(|&l| if l { W4A4 } else { BitPair::W8A8 })
            .collect();
        let mut correct = 0;
        for b in &batches {
            correct +=
                crate::qmodel::correct_in(&m.logits_with(&b.images, &config).unwrap(), &b.labels)
                    .unwrap();
        }
        let want = crate::qmodel::top1(correct, 48);
        assert_eq!(e.accuracy(&low).unwrap(), want, "{set:?}");
        e.commit(&low);
    }
    m.uninstall_all();
    m.set_config(&vec![W4A4; n]);
    assert_eq!(
        max_diff(&spec, &m.logits(x, Precision::Quantized).unwrap()),
        0.0
    );
}

/// Predictions and top-1 of `m`'s current configuration over `batches`, with each kernel
/// implementation (the model is left on the CPU kernels).
fn predictions_by_kernels(m: &mut QuantModel, batches: &[Batch]) -> [(Vec<u32>, f64); 2] {
    let mut out = vec![];
    for k in [Kernels::Cpu(Isa::detect()), Kernels::Candle] {
        m.set_kernels(k).unwrap();
        let mut pred = vec![];
        for b in batches {
            let y = m.logits(&b.images, Precision::Quantized).unwrap();
            pred.extend(
                y.argmax(candle_core::D::Minus1)
                    .unwrap()
                    .to_vec1::<u32>()
                    .unwrap(),
            );
        }
        let acc = m.accuracy(batches, Precision::Quantized).unwrap();
        out.push((pred, acc));
    }
    m.set_kernels(Kernels::Cpu(Isa::detect())).unwrap();
    [out[0].clone(), out[1].clone()]
}

/// `QuantModel::install` keeps the CPU kernels (the default on the CPU, which pack each layer's
/// weights and fuse its input quantization) in step with the installed layers: after each
/// install, over an earlier method's layers too, the CPU kernels and the candle path predict
/// the same, their predictions move away from the previous layers' and their accuracy from\n/// the spec's quantizer's. Covers a
/// fused float-step input grid (MMSE), per-channel input grids (ACIQ as published), and a
/// method installed while candle runs, packed when the CPU kernels are chosen again.
#[test]
fn installed_layers_predict_the_same_on_the_cpu_kernels_and_candle() {
    let mut m = embedded(ArchName::ResnetTiny);
    assert_eq!(m.kernels(), Kernels::Cpu(Isa::detect()), "the CPU default");
    let calib = split(Split::Calibration, 32, 32);
    let held_out = split(Split::Test, 256, 64);
    let n = m.n_layers();
    m.prepare(&[W4A4], &calib).unwrap();
    let config = vec![W4A4; n];
    m.set_config(&config);
    let mut prev = predictions_by_kernels(&mut m, &held_out);
    let spec_acc = prev[0].1;
    let mut aciq = PtqConfig::published(MethodName::Aciq);
    aciq.first_last_high = false;
    let mut rtn = PtqConfig::common(MethodName::Rtn);
    rtn.bias_correction = Some(BiasCorrection::Mean);
    for (cfg, under_candle) in [
        (PtqConfig::common(MethodName::Mmse), false),
        (aciq, false),
        (rtn, true),
    ] {
        if under_candle {
            m.set_kernels(Kernels::Candle).unwrap();
        }
        apply(&mut m, &cfg, std::slice::from_ref(&config), &calib).unwrap();
        m.set_kernels(Kernels::Cpu(Isa::detect())).unwrap();
        let now = predictions_by_kernels(&mut m, &held_out);
        let [(cpu, cpu_acc), (candle, candle_acc)] = &now;
        let agree = cpu.iter().zip(candle).filter(|(a, b)| a == b).count();
        println!(
            "{}: CPU kernels {cpu_acc:.4}, candle {candle_acc:.4}, agree {agree}/{}, spec {spec_acc:.4}",
            cfg.method,
            cpu.len(),
        );
        // At most one image where a rounding difference crosses a decision (measured: none).
        assert!(agree + 1 >= cpu.len(), "{}: {agree}", cfg.method);
        assert!((cpu_acc - candle_acc).abs() <= 0.01, "{}", cfg.method);
        assert_ne!(
            cpu, &prev[0].0,
            "{}: the CPU kernels use the new layers",
            cfg.method
        );
        assert_ne!(
            *cpu_acc, spec_acc,
            "{}: accuracy moved from the spec's",
            cfg.method
        );
        prev = now;
    }
}

/// Issue 13: AdaRound ends with under 1% of its soft rounding values outside {0, 1}, and its
/// hardened rounding reconstructs each layer's output better than round-to-nearest on the same
/// grid, on held-out images, for at least 95% of the layers.
#[test]
fn adaround_ends_hard_and_beats_nearest_on_held_out_images() {
    for arch in ArchName::embedded() {
        let mut m = embedded(arch);
        let calib = split(Split::Calibration, 128, 128);
        let held_out = split(Split::Test, 128, 64);
        let mut cfg = PtqConfig::common(MethodName::AdaRound);
        // Fewer and smaller steps than the defaults, to keep the test short.
        cfg.adaround.iterations = 500;
        cfg.adaround.learning_rate = 0.05;
        let config = vec![W4A4; m.n_layers()];
        let (layers, trace, _) = adaround::run(&mut m, &cfg, &config, &calib).unwrap();
        for t in &trace.layers {
            eprintln!(
                "{arch} layer {}: {:.2}s, {} of {} soft, error nearest {:.5} learned {:.5}",
                t.layer, t.seconds, t.soft, t.elements, t.nearest_error, t.learned_error
            );
        }
        let soft: usize = trace.layers.iter().map(|t| t.soft).sum();
        let total: usize = trace.layers.iter().map(|t| t.elements).sum();
        assert!(
            (soft as f64) < 0.01 * total as f64,
            "{arch}: {soft} of {total} soft"
        );
        let errs = adaround::reconstruction_errors(&m, &layers, &trace.nearest, &held_out).unwrap();
        let better = errs.iter().filter(|(a, b)| a < b).count();
        assert!(
            better as f64 >= 0.95 * errs.len() as f64,
            "{arch}: better on {better} of {} layers: {errs:?}",
            errs.len()
        );
    }
}

/// Issue 13: LAPQ never increases its calibration loss, and the loss it tracks (with cached
/// stage inputs) is the loss of a full forward pass.
#[test]
fn lapq_never_increases_its_calibration_loss() {
    let m = embedded(ArchName::ResnetTiny);
    let calib = split(Split::Calibration, 64, 64);
    let mut cfg = PtqConfig::common(MethodName::Lapq);
    cfg.lapq.norms = vec![2.0, 3.0, 4.0];
    cfg.lapq.max_evaluations = 60;
    cfg.lapq.search_points = 30;
    let config = vec![W4A4; m.n_layers()];
    let (layers, trace, report) = lapq::run(&m, &cfg, &config, &calib).unwrap();
    assert_eq!(trace.sweep.len(), 3);
    assert!((2.0..=4.0).contains(&trace.p_star));
    assert!(trace.evaluations <= 60 && report.iterations == trace.evaluations);
    for w in trace.losses.windows(2) {
        assert!(w[1] < w[0], "loss went {} -> {}", w[0], w[1]);
    }
    assert!(
        trace.losses.len() > 1,
        "the joint search found a better point"
    );
    let full = lapq::calibration_loss(&m, &layers, &calib).unwrap();
    let last = *trace.losses.last().unwrap();
    assert!(
        (full - last).abs() <= 1e-6 * full.max(1.0),
        "{full} vs {last}"
    );
}

#[test]
fn settings_deserialize_from_a_quant_section_and_name_bad_keys() {
    let cfg: PtqConfig = toml::from_str(
        r#"
        method = "adaround"
        bias_correction = "mean-and-variance"
        [adaround]
        iterations = 50
        grid = "spec"
        [lapq]
        weights = "per-tensor"
        "#,
    )
    .unwrap();
    assert_eq!(cfg.method, MethodName::AdaRound);
    assert_eq!(cfg.bias_correction(), BiasCorrection::MeanAndVariance);
    assert_eq!(cfg.adaround.iterations, 50);
    assert_eq!(cfg.adaround.grid, AdaRoundGrid::Spec);
    assert_eq!(
        cfg.adaround.batch_size, 32,
        "unset keys keep their defaults"
    );
    assert_eq!(cfg.lapq.weights, Granularity::PerTensor);
    assert!(toml::from_str::<PtqConfig>("method = \"gptq\"").is_err());
    assert!(toml::from_str::<PtqConfig>("[adaround]\niteration = 5").is_err());
    let mut bad = PtqConfig::common(MethodName::AdaRound);
    bad.adaround.iterations = 0;
    assert_eq!(
        bad.validate().unwrap_err(),
        "quant.adaround.iterations: must be at least 1"
    );
    bad = PtqConfig::common(MethodName::Lapq);
    bad.lapq.norms = vec![2.0];
    assert!(bad.validate().unwrap_err().starts_with("quant.lapq.norms:"));
    // Defaults: the common protocol; bias correction where the method's paper applies it.
    assert_eq!(PtqConfig::default().method, MethodName::Rtn);
    assert_eq!(
        PtqConfig::common(MethodName::Aciq).bias_correction(),
        BiasCorrection::Mean
    );
    assert_eq!(
        PtqConfig::common(MethodName::AdaRound).bias_correction(),
        BiasCorrection::Off
    );
    let c = PtqConfig::published(MethodName::Lapq).configuration(5, W4A4, BitPair::W8A8);
    assert_eq!(c, [BitPair::W8A8, W4A4, W4A4, W4A4, BitPair::W8A8]);
    let c = PtqConfig::common(MethodName::Lapq).configuration(3, W4A4, BitPair::W8A8);
    assert_eq!(c, [W4A4; 3]);
    for m in MethodName::ALL.iter().copied() {
        let s = toml::to_string(&PtqConfig::common(m)).unwrap();
        assert!(s.contains(&format!("method = \"{}\"", m.as_str())), "{s}");
    }
}

/// Top-1 correctness of every image of `batches` under the model's current configuration.
fn correct_vector(m: &QuantModel, batches: &[Batch], precision: Precision) -> Vec<bool> {
    let mut v = vec![];
    for b in batches {
        let pred = m
            .logits(&b.images, precision)
            .unwrap()
            .argmax(candle_core::D::Minus1)
            .unwrap()
            .to_vec1::<u32>()
            .unwrap();
        v.extend(pred.iter().zip(&b.labels).map(|(p, l)| p == l));
    }
    v
}

/// Wilson score interval (95%) of `k` successes out of `n`.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    let (k, n, z) = (k as f64, n as f64, 1.959_964);
    let p = k / n;
    let d = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / d;
    let h = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
    (c - h, c + h)
}

/// Exact two-sided McNemar test of paired correctness vectors: (only a right, only b right, p).
fn mcnemar(a: &[bool], b: &[bool]) -> (usize, usize, f64) {
    let only_a = a.iter().zip(b).filter(|(x, y)| **x && !**y).count();
    let only_b = a.iter().zip(b).filter(|(x, y)| !**x && **y).count();
    let n = only_a + only_b;
    let k = only_a.min(only_b);
    // P(X <= k), X ~ Bin(n, 1/2), summed in log space.
    let mut log_c = 0f64; // log C(n, 0)
    let mut tail = 0f64;
    for i in 0..=k {
        if i > 0 {
            log_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (log_c - n as f64 * std::f64::consts::LN_2).exp();
    }
    (only_a, only_b, (2.0 * tail).min(1.0))
}

/// Issue 13's measurement: on both embedded models, every layer at W4A4 and at W4A8, the
/// held-out top-1 (2000 test-split images, Wilson 95% interval, exact McNemar against the
/// spec's round-to-nearest) of each method with its wall time and work. Run explicitly:
/// `cargo test -p mpq-models ptq_embedded -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement (minutes): run explicitly"]
fn ptq_embedded() {
    let calib = split(Split::Calibration, 256, 256);
    let held_out = split(Split::Test, 2000, 250);
    let pct = |x: f64| 100.0 * x;
    println!(
        "| model | pair | method | top-1 % | 95% CI | vs RTN (pt) | only RTN / only method | McNemar p | wall s | wall / calib forward | fwd passes | iterations |"
    );
    println!("|---|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|");
    for arch in ArchName::embedded() {
        let fp_model = embedded(arch);
        let fp = correct_vector(&fp_model, &held_out, Precision::Fp32);
        let fk = fp.iter().filter(|x| **x).count();
        let (lo, hi) = wilson(fk, fp.len());
        println!(
            "| {arch} | FP32 | - | {:.2} | [{:.2}, {:.2}] | | | | | | | |",
            pct(fk as f64 / fp.len() as f64),
            pct(lo),
            pct(hi)
        );
        for pair in [W4A4, BitPair { w: 4, a: 8 }] {
            let mut m = embedded(arch);
            let n = m.n_layers();
            let config = vec![pair; n];
            let t0 = std::time::Instant::now();
            m.prepare(&[BitPair::W8A8, pair], &calib).unwrap();
            let rtn_s = t0.elapsed().as_secs_f64();
            m.set_config(&config);
            let rtn = correct_vector(&m, &held_out, Precision::Quantized);
            #[allow(clippy::type_complexity)]
            let mut rows: Vec<(String, Vec<bool>, f64, u64, u64, Vec<String>)> =
                vec![("rtn (spec)".into(), rtn.clone(), rtn_s, 2, 0, vec![])];
            let mut variants: Vec<(String, PtqConfig)> = MethodName::ALL[1..]
                .iter()
                .map(|&mm| (mm.as_str().to_string(), PtqConfig::common(mm)))
                .collect();
            let mut spec_grid = PtqConfig::common(MethodName::AdaRound);
            spec_grid.adaround.grid = AdaRoundGrid::Spec;
            variants.push(("adaround, spec grid".into(), spec_grid));
            variants.push((
                "aciq, published protocol".into(),
                PtqConfig::published(MethodName::Aciq),
            ));
            // The unit of cost: one quantized forward pass over the calibration images, timed
            // in the same process (the machine is shared: read ratios).
            let calib_forward = |m: &QuantModel| {
                let t = std::time::Instant::now();
                m.accuracy(&calib, Precision::Quantized).unwrap();
                t.elapsed().as_secs_f64()
            };
            let mut unit = calib_forward(&m);
            for (name, cfg) in variants {
                unit = unit.min(calib_forward(&m));
                m.uninstall_all();
                let cfgs = [cfg.configuration(n, pair, BitPair::W8A8)];
                let r = apply(&mut m, &cfg, &cfgs, &calib).unwrap();
                m.set_config(&cfgs[0]);
                let c = correct_vector(&m, &held_out, Precision::Quantized);
                rows.push((name, c, r.wall_s, r.forward_passes, r.iterations, r.notes));
            }
            println!("<!-- {arch} {pair}: one calibration forward pass {unit:.3} s -->");
            for (name, c, wall, fwd, it, notes) in rows {
                let k = c.iter().filter(|x| **x).count();
                let (lo, hi) = wilson(k, c.len());
                let (only_rtn, only_m, p) = mcnemar(&rtn, &c);
                let rk = rtn.iter().filter(|x| **x).count();
                println!(
                    "| {arch} | {pair} | {name} | {:.2} | [{:.2}, {:.2}] | {:+.2} | {only_rtn} / {only_m} | {p:.3} | {wall:.1} | {:.0} | {fwd} | {it} |",
                    pct(k as f64 / c.len() as f64),
                    pct(lo),
                    pct(hi),
                    pct((k as f64 - rk as f64) / c.len() as f64),
                    wall / unit,
                );
                for note in notes {
                    println!("<!-- {arch} {pair} {name}: {note} -->");
                }
            }
        }
    }
}
