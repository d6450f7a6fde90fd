"""Forward throughput of `mpq bench forward` and PyTorch eager side by side, one architecture
after the other (each mpq measurement right before PyTorch's, under the same load), with the
ratios and how far each runs from the machine's FP32 peak. Dev-only: needs torch,
torchvision and timm.

    python tools/bench_vs_pytorch.py --mpq target/debug/mpq --arch resnet18 --arch resnet50 \\
        --arch mobilenet_v2 --arch xception --batch 32 --threads 2

The peak reference is measured, not assumed: PyTorch's (MKL's) FP32 matrix product of two
4096 x 4096 matrices on the same threads, the best this machine's FMA units reach in
practice. GFLOP/s count 2 per multiply-accumulate of the convolutions and linear layers.
"""
import argparse
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _models import ARCHS, SIZES  # noqa: E402
from bench_pytorch import macs_per_image, seconds_per_batch  # noqa: E402


def sgemm_gflops(n=4096, reps=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def mpq_row(mpq, arch, batch, size, reps, threads):
    out = subprocess.run(
        [mpq, "bench", "forward", "--arch", arch, "--batch", str(batch), "--size", str(size),
         "--reps", str(reps), "--threads", str(threads)],
        check=True, capture_output=True, text=True).stdout
    row = [line for line in out.splitlines() if line.startswith(f"| {arch} ")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    return float(cells[3]), float(cells[4]), row  # FP32 folded, W8A8 img/s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mpq", default="target/debug/mpq")
    ap.add_argument("--arch", action="append", choices=ARCHS)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    archs = a.arch or ARCHS
    torch.set_num_threads(a.threads)
    peak = sgemm_gflops()
    print(f"torch {torch.__version__}, {a.threads} threads; FP32 sgemm 4096^3: {peak:.0f} GFLOP/s")
    rows, profiles = [], []
    for arch in archs:
        size = SIZES[arch]
        fp32, w8a8, prow = mpq_row(a.mpq, arch, a.batch, size, a.reps, a.threads)
        torch_ips = a.batch / seconds_per_batch(arch, a.batch, size, a.reps)
        gflop = 2 * macs_per_image(arch, size) / 1e9
        rows.append(
            f"| {arch} | {size} | {torch_ips:.1f} | {fp32:.1f} | {w8a8:.1f} | "
            f"**{w8a8 / torch_ips:.2f}x** | {fp32 / torch_ips:.2f}x | {gflop:.2f} | "
            f"{torch_ips * gflop:.0f} ({100 * torch_ips * gflop / peak:.0f}%) | "
            f"{w8a8 * gflop:.0f} ({100 * w8a8 * gflop / peak:.0f}%) |")
        profiles.append(prow)
    print(f"\nbatch {a.batch}, mean of {a.reps} passes after a warm-up\n")
    print("| arch | input | PyTorch FP32 (img/s) | mpq FP32 folded (img/s) | mpq W8A8 (img/s) "
          "| mpq W8A8 / PyTorch | mpq FP32 / PyTorch | GFLOP / image | PyTorch GFLOP/s (of sgemm) "
          "| mpq W8A8 GFLOP/s (of sgemm) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nmpq bench forward rows (where the W8A8 time goes):\n")
    print("| arch | batch | size | FP32 folded (img/s) | W8A8 (img/s) | W8A8 s/batch | conv kxk "
          "| conv 1x1 | depthwise | linear | fake-quant | other |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(profiles))


if __name__ == "__main__":
    main()
