# Recipes for mpq. Everything here is also a plain cargo command (see README.md).

# Bring every suite up to date (run what is missing or stale, resume what was interrupted),
# then regenerate reports/. Suites whose data is missing (paper/ without ImageNet) are skipped.
reproduce *args:
    cargo run -- reproduce {{args}}

# Where each run stands (up to date, stale, queued, running step k of N, failed, ...).
status *args:
    cargo run -- status {{args}}

# Run every embedded manifest, whatever is already there.
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
    cargo run -- train --arch {{arch}} --threads 1

# Regenerate reports/ from the up-to-date results, running nothing.
report *args:
    cargo run -- report {{args}}

# SQL over every run's tables, e.g. just query "SELECT * FROM runs".
query sql *args:
    cargo run -- query "{{sql}}" {{args}}

# Benchmarks recorded in docs/benchmarks.md.
bench:
    cargo run -- bench depthwise
    cargo run -- bench search

lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# Forward throughput against PyTorch eager, side by side in one run, with ratios and the share
# of the FP32 peak (dev-only: needs a Python with torch, torchvision and timm, see tools/README.md).
bench-vs-pytorch python="python3" *args:
    cargo build
    {{python}} tools/bench_vs_pytorch.py --mpq target/debug/mpq {{args}}

# Greedy W4A8 on ResNet18 (random weights, 64 images of 64x64): a plain PyTorch loop against
# `mpq run` on the same inputs (dev-only, as bench-vs-pytorch).
greedy-vs-pytorch python="python3" *args:
    cargo build
    {{python}} tools/greedy_pytorch.py --mpq target/debug/mpq {{args}}
