"""The greedy mixed-precision search as a user would write it in plain PyTorch, timed against
`mpq run` on the same inputs. Dev-only: needs torch, torchvision and safetensors.

    python tools/greedy_pytorch.py --mpq target/debug/mpq

Inputs (written to --workdir): torchvision's resnet18 with its random initialisation and
random batch-norm parameters and statistics (as export_weights.py --random-bn), --images
random images of --size x --size with the FP32 model's own top-1 as labels (so FP32 top-1 is
100% and quantization has something to lose), as a prepared tensor file; and the manifest
`mpq run` reads: the same weights and images, calibration and search on the same images,
--pair, greedy with beta 0 (every step adds the layer whose addition keeps the highest top-1,
ties to the smallest layer index), one batch.

The PyTorch side is the naive loop: batch-norm folded, weights quantized per channel (min-max,
power-of-two steps), each layer's input calibrated on the FP32 folded model (the MSE over the
exponents e0-10..e0, spec section 2) and fake-quantized by a forward pre-hook; then for every
step and every remaining layer, the quantized weights are swapped in and the whole forward pass
re-run: N(N+1)/2 evaluations. Timed from the loaded model to the last step; `mpq run` is timed
as a whole process (loading included). Both run with --threads threads.
"""
import argparse
import math
import os
import shutil
import subprocess
import sys
import time

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _models import build  # noqa: E402
from export_weights import randomize_bn  # noqa: E402

PAIRS = {"W8A8": (8, 8), "W6A6": (6, 6), "W4A8": (4, 8), "W4A4": (4, 4)}


def ceil_log2_exact(x):
    e = math.ceil(math.log2(x))
    while 2.0 ** (e - 1) >= x:
        e -= 1
    while 2.0**e < x:
        e += 1
    return e


def fake_quant(x, lo, e, bits):
    """round_half_even(clamp(x, lo, hi) / d) * d in float32 (torch.round is half to even)."""
    d = 2.0**e
    hi = torch.tensor(lo, dtype=torch.float32) + torch.tensor(d, dtype=torch.float32) * (2**bits - 1)
    return torch.round(x.clamp(lo, hi.item()) / d) * d


def quantize_weight(w, bits):
    """Per output channel min-max, power-of-two step; a constant channel is left as is."""
    out = w.clone()
    flat = out.view(out.shape[0], -1)
    for c in range(flat.shape[0]):
        mn, mx = flat[c].min().item(), flat[c].max().item()
        if mx > mn:
            e = ceil_log2_exact((mx - mn) / (2**bits - 1))
            flat[c] = fake_quant(flat[c], mn, e, bits)
    return out


def calibrate(x, bits):
    """(lo, e) minimising the MSE over e in [e0 - 10, e0], ties to the larger e."""
    lo, hi = x.min().item(), x.max().item()
    if not hi > lo:
        return None
    e0 = ceil_log2_exact((hi - lo) / (2**bits - 1))
    x64 = x.double()
    best, best_err = e0, None
    for e in range(e0, e0 - 11, -1):
        err = ((fake_quant(x, lo, e, bits).double() - x64) ** 2).mean().item()
        if best_err is None or err < best_err:
            best, best_err = e, err
    return lo, best


def fold_bn(model):
    """Fold every BatchNorm2d into the convolution before it (torchvision's helper)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    def walk(m):
        names = list(m._modules)
        for i, name in enumerate(names):
            child = m._modules[name]
            if isinstance(child, torch.nn.BatchNorm2d) and i > 0:
                prev = m._modules[names[i - 1]]
                if isinstance(prev, torch.nn.Conv2d):
                    m._modules[names[i - 1]] = fuse_conv_bn_eval(prev, child)
                    m._modules[name] = torch.nn.Identity()
            else:
                walk(child)

    walk(model)
    return model


def write_inputs(a):
    os.makedirs(a.workdir, exist_ok=True)
    torch.manual_seed(a.seed)
    model = build("resnet18")
    randomize_bn(model, torch.Generator().manual_seed(a.seed + 1))
    weights = os.path.join(a.workdir, "resnet18.safetensors")
    save_file({k: v.detach().float().contiguous() if v.is_floating_point() else v
               for k, v in model.state_dict().items()}, weights)
    g = torch.Generator().manual_seed(a.seed + 2)
    images = torch.randn(a.images, 3, a.size, a.size, generator=g)
    with torch.inference_mode():
        labels = model(images).argmax(1).long()
    data = os.path.join(a.workdir, "images.safetensors")
    save_file({"images": images.contiguous(), "labels": labels.contiguous()}, data)
    manifest = os.path.join(a.workdir, "greedy.toml")
    with open(manifest, "w") as f:
        f.write(f"""[experiment]
name = "greedy-vs-pytorch"
[model]
arch = "resnet18"
weights = "{weights}"
[data]
dataset = "tensors"
path = "{data}"
calib_split = "all"
search_split = "all"
calib_images = {a.images}
search_images = {a.images}
resize = {a.size}
crop = {a.size}
[quant]
pair = "{a.pair}"
[search]
strategy = "greedy"
beta = 0.0
[runtime]
batch_size = {a.images}
threads = {a.threads}
results_dir = "{os.path.join(a.workdir, 'results')}"
""")
    return model, images, labels, manifest


def pytorch_greedy(model, images, labels, pair):
    wb, ab = PAIRS[pair]
    high_w, high_a = 8, 8
    model = fold_bn(model.eval())
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    n = len(layers)
    # Calibration: every layer's input on the FP32 folded model.
    seen = {}
    hooks = [m.register_forward_pre_hook(lambda m, inp, i=i: seen.__setitem__(i, inp[0].detach()))
             for i, m in enumerate(layers)]
    with torch.inference_mode():
        fp32_top1 = (model(images).argmax(1) == labels).float().mean().item()
    for h in hooks:
        h.remove()
    grids = {(i, b): calibrate(seen[i], b) for i in range(n) for b in {ab, high_a}}
    del seen
    wq = {(i, b): quantize_weight(m.weight.detach(), b) for i, m in enumerate(layers) for b in {wb, high_w}}
    low = [False] * n

    def pre_hook(i):
        def hook(m, inp):
            g = grids[(i, ab if low[i] else high_a)]
            if g is None:
                return None
            return (fake_quant(inp[0], g[0], g[1], ab if low[i] else high_a),)
        return hook

    for i, m in enumerate(layers):
        m.register_forward_pre_hook(pre_hook(i))

    def accuracy(config):
        for i, m in enumerate(layers):
            low[i] = config[i]
            m.weight.data = wq[(i, wb if low[i] else high_w)]
        with torch.inference_mode():
            return (model(images).argmax(1) == labels).float().mean().item()

    steps, evals = [], 0
    chosen = [False] * n
    for _ in range(n):
        best, best_acc = None, -1.0
        for j in range(n):
            if chosen[j]:
                continue
            cfg = list(chosen)
            cfg[j] = True
            acc = accuracy(cfg)
            evals += 1
            if acc > best_acc:
                best, best_acc = j, acc
        chosen[best] = True
        steps.append((best, best_acc))
    return fp32_top1, steps, evals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mpq", default="target/debug/mpq", help="the mpq binary ('' to skip it)")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--pair", default="W4A8", choices=sorted(PAIRS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="/tmp/mpq-greedy-vs-pytorch")
    ap.add_argument("--skip-pytorch", action="store_true", help="only write the inputs and run mpq")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, images, labels, manifest = write_inputs(a)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; inputs in {a.workdir}")

    t_torch = float("nan")
    if not a.skip_pytorch:
        t = time.perf_counter()
        fp32, steps, evals = pytorch_greedy(model, images, labels, a.pair)
        t_torch = time.perf_counter() - t
        print(f"PyTorch greedy: {evals} evaluations, {t_torch:.1f} s (FP32 top-1 {fp32:.3f})")
        print("PyTorch order: ", " ".join(str(j) for j, _ in steps))
        print("PyTorch top-1: ", " ".join(f"{acc:.3f}" for _, acc in steps))
    if not a.mpq:
        return
    shutil.rmtree(os.path.join(a.workdir, "results"), ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([a.mpq, "run", manifest, "--quiet"], check=True)
    t_mpq = time.perf_counter() - t
    q = subprocess.run(
        [a.mpq, "query", "SELECT step, layer_index, top1 FROM steps ORDER BY step",
         "--results", os.path.join(a.workdir, "results"), "--format", "csv"],
        capture_output=True, text=True)
    rows = [r.split(",") for r in q.stdout.strip().splitlines()[1:]] if q.returncode == 0 else []
    rows = [r for r in rows if r[1] not in ("", "null")]
    if rows:
        print("mpq order:     ", " ".join(r[1] for r in rows))
        print("mpq top-1:     ", " ".join(f"{float(r[2]):.3f}" for r in rows))
    else:
        print("(could not read mpq's steps:", q.stderr.strip()[:200], ")")
    print(f"| pair | images | size | PyTorch greedy (s) | mpq run (s) | mpq / PyTorch |")
    print(f"|---|---|---|---|---|---|")
    print(f"| {a.pair} | {a.images} | {a.size} | {t_torch:.1f} | {t_mpq:.1f} | {t_mpq / t_torch:.2f} |")


if __name__ == "__main__":
    main()
