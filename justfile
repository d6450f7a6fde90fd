# Recipes for mpq. Everything here is also a plain cargo command (see README.md).

# Run every embedded manifest (the main job).
run-embedded:
    cargo run -- run experiments/embedded

# Run one manifest, e.g. `just run experiments/embedded/resnet-tiny-w4a8-greedy.toml`.
run manifest *args:
    cargo run -- run {{manifest}} {{args}}

# Check manifests without running them.
validate path="experiments":
    cargo run -- validate {{path}}

# The test suite (what CI runs).
test:
    cargo test

# Retrain an embedded model (resnet-tiny or mobilenet-tiny).
train arch:
    cargo run -- train --arch {{arch}}

# Summarise results/ into reports/summary.md.
report:
    cargo run -- report

# SQL over every run's tables, e.g. just query "SELECT * FROM runs".
query sql *args:
    cargo run -- query "{{sql}}" {{args}}

# Benchmarks recorded in docs/benchmarks.md.
bench:
    cargo run -- bench depthwise

lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
