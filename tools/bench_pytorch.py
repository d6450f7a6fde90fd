"""PyTorch's eager CPU forward throughput for the architectures `mpq bench forward` measures:
random initialisation, eval mode, inference mode, float32, a random batch; one warm-up pass,
then the mean of --reps passes. Prints a Markdown row per architecture. Dev-only: needs torch,
torchvision and timm.

    python tools/bench_pytorch.py --arch resnet18 --arch mobilenet_v2 --batch 32 --threads 2
"""
import argparse
import time

import torch

from _models import ARCHS, SIZES, build


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", action="append", required=True, choices=ARCHS)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=None, help="input side (default: the arch's)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| arch | batch | size | PyTorch FP32 (img/s) | s/batch |\n|---|---|---|---|---|")
    for arch in a.arch:
        torch.manual_seed(0)
        model = build(arch)
        size = a.size or SIZES[arch]
        x = torch.randn(a.batch, 3, size, size)
        with torch.inference_mode():
            model(x)
            t = time.perf_counter()
            for _ in range(a.reps):
                model(x)
            dt = (time.perf_counter() - t) / a.reps
        print(f"| {arch} | {a.batch} | {size} | {a.batch / dt:.1f} | {dt:.2f} |")


if __name__ == "__main__":
    main()
