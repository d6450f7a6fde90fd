use candle_core::{Device, Tensor};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arch = mpq_models::Arch::by_name(&args[1]).unwrap();
    let p = mpq_models::train::Params::init(&arch, 0, &Device::Cpu).unwrap();
    let m = mpq_models::QuantModel::new(arch.clone(), p.tensors(), &Device::Cpu).unwrap();
    let d = mpq_data::synth::generate(&Default::default(), mpq_data::Split::Search, 0, 256);
    let b = d.batches(256, &Device::Cpu).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..3 {
        m.accuracy(&b, mpq_models::qmodel::Precision::Fp32Folded)
            .unwrap();
    }
    println!(
        "fp32 folded fwd: {:.1} img/s",
        768.0 / t.elapsed().as_secs_f64()
    );
    let mut m = m;
    let pair = mpq_quant::BitPair::new(4, 8).unwrap();
    m.prepare(&[pair, mpq_quant::BitPair::W8A8], &b).unwrap();
    m.set_config(&vec![pair; arch.layers.len()]);
    let t = std::time::Instant::now();
    for _ in 0..3 {
        m.accuracy(&b, mpq_models::qmodel::Precision::Quantized)
            .unwrap();
    }
    println!("quant fwd: {:.1} img/s", 768.0 / t.elapsed().as_secs_f64());
    let _ = Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu);
}
