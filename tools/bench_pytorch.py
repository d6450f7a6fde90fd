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
        size = a.size or SIZES[arch]
        dt = seconds_per_batch(arch, a.batch, size, a.reps)
        print(f"| {arch} | {a.batch} | {size} | {a.batch / dt:.1f} | {dt:.2f} |")


def seconds_per_batch(arch, batch, size, reps):
    """Mean seconds of one forward pass of a random batch (after one warm-up pass)."""
    torch.manual_seed(0)
    model = build(arch)
    x = torch.randn(batch, 3, size, size)
    with torch.inference_mode():
        model(x)
        t = time.perf_counter()
        for _ in range(reps):
            model(x)
        return (time.perf_counter() - t) / reps


def macs_per_image(arch, size):
    """Multiply-accumulates of one image's forward pass (convolutions and linear layers)."""
    model = build(arch)
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total[0] += out[0].numel() * k
        elif isinstance(m, torch.nn.Linear):
            total[0] += m.in_features * m.out_features

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return total[0]

if __name__ == "__main__":
    main()
