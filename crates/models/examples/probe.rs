fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arch = mpq_models::Arch::by_name(&args[1]).unwrap();
    let mut cfg = mpq_models::train::TrainConfig::default();
    cfg.epochs = args[2].parse().unwrap();
    cfg.images_per_epoch = args[3].parse().unwrap();
    let t = std::time::Instant::now();
    let w = mpq_models::train::train(&arch, &cfg, &mut |l| {
        println!("{l} [{:.0}s]", t.elapsed().as_secs_f64())
    })
    .unwrap();
    mpq_models::weights::save_weights(
        &w,
        std::path::Path::new(&format!("/tmp/{}.safetensors", args[1])),
    )
    .unwrap();
}
