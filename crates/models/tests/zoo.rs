//! The paper's networks built from random weights in the reference libraries' tensor names:
//! written to a safetensors file, loaded back through `load_weights`, run at a reduced input
//! size (the networks are fully convolutional up to the global pooling, so 32x32 exercises
//! every layer cheaply). Layer counts and order are checked in `arch.rs`'s unit tests.
use candle_core::{Device, Tensor};
use mpq_data::Rng;
use mpq_models::qmodel::Precision;
use mpq_models::train::Params;
use mpq_models::weights::save_weights;
use mpq_models::{load_weights, Arch, ArchName, QuantModel};
use mpq_quant::BitPair;
use std::collections::HashMap;

/// He-initialised weights with non-trivial batch-norm parameters and statistics, so that
/// folding changes the weights.
fn random_weights(arch: &Arch, seed: u64) -> HashMap<String, Tensor> {
    let mut t = Params::init(arch, seed, &Device::Cpu).unwrap().tensors();
    let mut r = Rng::new(seed + 1);
    for l in &arch.layers {
        let Some(bn) = &l.bn else { continue };
        for (field, lo, hi) in [
            ("weight", 0.5, 1.5),
            ("bias", -0.2, 0.2),
            ("running_mean", -0.2, 0.2),
            ("running_var", 0.5, 1.5),
        ] {
            let x: Vec<f32> = (0..l.out_ch).map(|_| r.range(lo, hi) as f32).collect();
            let v = Tensor::from_vec(x, l.out_ch, &Device::Cpu).unwrap();
            t.insert(format!("{bn}.{field}"), v);
        }
    }
    t
}

fn images(n: usize, side: usize, seed: u64) -> Tensor {
    let mut r = Rng::new(seed);
    let v: Vec<f32> = (0..n * 3 * side * side)
        .map(|_| r.normal() as f32)
        .collect();
    Tensor::from_vec(v, (n, 3, side, side), &Device::Cpu).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn paper_networks_load_reference_names_and_give_1000_logits() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ArchName::ALL.iter().copied().filter(|a| !a.is_embedded()) {
        let arch = Arch::new(name);
        let path = tmp.path().join(format!("{name}.safetensors"));
        let mut w = random_weights(&arch, 7);
        // What torchvision's state dicts also hold; ignored by the loader.
        for l in &arch.layers {
            if let Some(bn) = &l.bn {
                w.insert(
                    format!("{bn}.num_batches_tracked"),
                    Tensor::new(0i64, &Device::Cpu).unwrap(),
                );
            }
        }
        save_weights(&w, &path).unwrap();
        let loaded = load_weights(&path, &arch, &Device::Cpu).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut m = QuantModel::new(arch.clone(), loaded, &Device::Cpu).unwrap();
        let x = images(2, 32, 3);
        let a = m.logits(&x, Precision::Fp32).unwrap();
        assert_eq!(a.dims(), &[2, 1000], "{name}");
        let b = m.logits(&x, Precision::Fp32Folded).unwrap();
        let scale = max_abs(&a);
        assert!(scale.is_finite() && scale > 0.0, "{name}: {scale}");
        let d = max_abs(&(&a - &b).unwrap());
        assert!(
            d <= 1e-4 * scale.max(1.0),
            "{name}: folding changed the logits by {d} (scale {scale})"
        );
        m.prepare(
            &[BitPair::W8A8],
            &[mpq_data::Batch {
                images: x.clone(),
                labels: vec![0, 1],
            }],
        )
        .unwrap();
        let q = m.logits(&x, Precision::Quantized).unwrap();
        assert_eq!(q.dims(), &[2, 1000], "{name}");
        assert!(
            max_abs(&(&q - &b).unwrap()) > 0.0,
            "{name}: W8A8 differs from FP32"
        );
    }
}

#[test]
fn a_missing_or_misshaped_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = Arch::new(ArchName::Resnet18);
    let w = random_weights(&arch, 1);

    let mut missing = w.clone();
    missing.remove("layer3.1.bn2.running_var");
    let path = tmp.path().join("missing.safetensors");
    save_weights(&missing, &path).unwrap();
    let e = load_weights(&path, &arch, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing.safetensors") && e.contains("\"layer3.1.bn2.running_var\" is missing"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1);

    let mut bad = w;
    bad.insert(
        "layer2.0.downsample.0.weight".into(),
        Tensor::zeros((128, 32, 1, 1), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let path = tmp.path().join("shape.safetensors");
    save_weights(&bad, &path).unwrap();
    let e = load_weights(&path, &arch, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("shape.safetensors") && e.contains("\"layer2.0.downsample.0.weight\" has shape [128, 32, 1, 1], arch resnet18 needs [128, 64, 1, 1]"),
        "{e}"
    );
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// `testdata/*.pth` are the embedded mobilenet-tiny weights saved by `torch.save`
/// (`tools/pth_fixture.py`): a plain state dict, and one nested under `state_dict`.
#[test]
fn pth_state_dicts_load_like_safetensors() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let arch = Arch::new(ArchName::MobilenetTiny);
    let st = root.join("../../experiments/embedded/weights/mobilenet-tiny.safetensors");
    let want = load_weights(&st, &arch, &Device::Cpu).unwrap();
    for f in ["mobilenet-tiny.pth", "mobilenet-tiny-checkpoint.pth"] {
        let got = load_weights(&root.join("testdata").join(f), &arch, &Device::Cpu).unwrap();
        assert_eq!(got.len(), want.len(), "{f}");
        for (k, v) in &want {
            assert_eq!(flat(v), flat(&got[k]), "{f}: {k}");
        }
    }
    // The same checks as for safetensors: a tensor another arch needs is named.
    let other = Arch::new(ArchName::ResnetTiny);
    let e = load_weights(
        &root.join("testdata/mobilenet-tiny.pth"),
        &other,
        &Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("mobilenet-tiny.pth: tensor \"conv1.weight\" is missing"),
        "{e}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.pth");
    std::fs::write(&bad, b"not a zip archive").unwrap();
    let e = load_weights(&bad, &arch, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.pth: not a readable PyTorch state dict"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1);
}
