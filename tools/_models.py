"""The reference implementations of this project's architectures (shared by the tools)."""

ARCHS = ["resnet18", "resnet50", "mobilenet_v2", "xception"]
# Default input side of each architecture.
SIZES = {"resnet18": 224, "resnet50": 224, "mobilenet_v2": 224, "xception": 299}


def build(arch, pretrained=False, weights="DEFAULT"):
    """torchvision's model, or timm's legacy_xception for "xception", in eval mode. With
    `pretrained`, torchvision's weights enum member `weights` (e.g. "IMAGENET1K_V1")."""
    if arch == "xception":
        import timm

        model = timm.create_model("legacy_xception", pretrained=pretrained)
    elif arch in ARCHS:
        import torchvision

        model = getattr(torchvision.models, arch)(weights=weights if pretrained else None)
    else:
        raise SystemExit(f"--arch: unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    return model.eval()
