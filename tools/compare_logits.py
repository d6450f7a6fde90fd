"""Compare this project's logits with PyTorch's on the same weights and inputs.

Loads the weights file into the reference model (strictly: every name and shape must match),
draws a seeded random batch, runs the model in PyTorch (eval mode, float32) and through
`mpq logits` (batch-norm as stored, and folded), and prints the largest absolute logit
difference, the same relative to the largest logit, and whether the top-1 classes agree.
Exits non-zero when the relative difference exceeds --tol. Dev-only: needs torch,
torchvision, timm and safetensors, and a built mpq binary.

    cargo build --release
    python tools/export_weights.py --arch resnet18 --random-bn --out /tmp/r18.safetensors
    python tools/compare_logits.py --arch resnet18 --weights /tmp/r18.safetensors --mpq target/release/mpq
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

from _models import ARCHS, SIZES, build


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", required=True, choices=ARCHS)
    ap.add_argument("--weights", required=True, help="safetensors state dict in the library's names")
    ap.add_argument("--mpq", default="target/debug/mpq", help="the mpq binary")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=None, help="input side (default: the arch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-4, help="largest relative difference accepted")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = build(a.arch)
    model.load_state_dict(load_file(a.weights), strict=True)
    size = a.size or SIZES[a.arch]
    x = torch.randn(a.batch, 3, size, size, generator=torch.Generator().manual_seed(a.seed))
    with torch.inference_mode():
        ref = model(x).float()
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "input.safetensors")
        save_file({"images": x.contiguous()}, inp)
        for folded in [False, True]:
            out = os.path.join(tmp, "logits.safetensors")
            cmd = [a.mpq, "logits", "--arch", a.arch, "--weights", a.weights, "--input", inp, "--out", out]
            if folded:
                cmd.append("--folded")
            subprocess.run(cmd, check=True)
            got = load_file(out)["logits"]
            diff = (got - ref).abs().max().item()
            rel = diff / ref.abs().max().item()
            agree = (got.argmax(1) == ref.argmax(1)).float().mean().item()
            worst = max(worst, rel)
            print(
                f"{a.arch} {'folded' if folded else 'as stored'}: batch {a.batch}x{size}, "
                f"max |logit| {ref.abs().max().item():.4g}, max abs diff {diff:.3g}, "
                f"relative {rel:.3g}, top-1 agreement {agree:.0%}"
            )
    sys.exit(0 if worst <= a.tol else 1)


if __name__ == "__main__":
    main()
