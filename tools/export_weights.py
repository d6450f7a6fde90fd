"""Export a reference model's state dict (torchvision's resnet18, resnet50, mobilenet_v2;
timm's legacy_xception as "xception") to a safetensors file, float32, names and tensors as the
library has them (`num_batches_tracked` included; mpq ignores it). Dev-only: needs torch,
torchvision, timm and safetensors.

    python tools/export_weights.py --arch resnet50 --pretrained --out weights/resnet50.safetensors
    python tools/export_weights.py --arch xception --random-bn --seed 1 --out /tmp/x.safetensors

Without --pretrained the library's random initialisation is exported (seeded by --seed);
--random-bn also draws the batch-norm parameters and running statistics at random, so that
folding them into the convolutions is exercised (the library initialises them to 1, 0, 0, 1).
"""
import argparse
import os

import torch
from safetensors.torch import save_file

from _models import ARCHS, build


def randomize_bn(model, gen):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
                m.running_mean.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", required=True, choices=ARCHS)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pretrained", action="store_true", help="the library's ImageNet weights")
    ap.add_argument(
        "--tv-weights",
        default="DEFAULT",
        help="torchvision weights name with --pretrained, e.g. IMAGENET1K_V1 (default: DEFAULT)",
    )
    ap.add_argument("--random-bn", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = build(a.arch, pretrained=a.pretrained, weights=a.tv_weights)
    if a.random_bn:
        randomize_bn(model, torch.Generator().manual_seed(a.seed + 1))
    sd = {}
    for k, v in model.state_dict().items():
        v = v.detach().contiguous()
        sd[k] = v.float() if v.is_floating_point() else v
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    save_file(sd, tmp)
    os.replace(tmp, a.out)
    print(f"{a.arch}: {len(sd)} tensors -> {a.out}")


if __name__ == "__main__":
    main()
