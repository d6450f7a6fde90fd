"""Write crates/models/testdata/mobilenet-tiny.pth: the embedded mobilenet-tiny weights saved
with torch.save as a plain state dict (zip format), and mobilenet-tiny-checkpoint.pth, the same
dict nested under "state_dict" as training checkpoints hold it. The models crate's tests load
them and compare with the safetensors file. Dev-only; needs torch and safetensors.

    python tools/pth_fixture.py
"""
from collections import OrderedDict

import torch
from safetensors.torch import load_file

SRC = "experiments/embedded/weights/mobilenet-tiny.safetensors"
OUT = "crates/models/testdata/mobilenet-tiny"


def main():
    sd = OrderedDict(sorted(load_file(SRC).items()))
    torch.save(sd, OUT + ".pth")
    torch.save({"epoch": 3, "state_dict": sd}, OUT + "-checkpoint.pth")
    print(f"{len(sd)} tensors -> {OUT}.pth, {OUT}-checkpoint.pth")


if __name__ == "__main__":
    main()
