"""Write crates/data/testdata/pillow_resize.txt: Pillow's resize of a fixed 13x9 RGB gradient
to a few sizes with the bilinear and bicubic filters. The data crate's tests check that its
resize reproduces these bytes exactly. Dev-only; needs Pillow.

    python tools/pillow_resize_fixture.py > crates/data/testdata/pillow_resize.txt
"""
import PIL
from PIL import Image


def gradient(w, h):
    """The image `preprocess::tests::pillow_gradient` builds: pixel (x, y) =
    ((37x + 11y) mod 256, 13xy mod 256, (255 - 9x - 5y) mod 256)."""
    b = bytearray()
    for y in range(h):
        for x in range(w):
            b += bytes([(x * 37 + y * 11) % 256, (x * y * 13) % 256, (255 - x * 9 - y * 5) % 256])
    return Image.frombytes("RGB", (w, h), bytes(b))


def main():
    print(f"# Pillow {PIL.__version__}: gradient(13, 9).resize((w, h), filter); filter w h bytes...")
    img = gradient(13, 9)
    for f, name in [(Image.BILINEAR, "bilinear"), (Image.BICUBIC, "bicubic")]:
        # Both passes (h first), both up, one axis only, and vertical first (the height shrinks
        # by more than twice as many pixels as the width: (20, 7), (40, 3), (12, 5)).
        for size in [(5, 4), (20, 7), (13, 4), (4, 9), (31, 23), (40, 3), (12, 5), (11, 8)]:
            r = img.resize(size, f)
            print(name, size[0], size[1], " ".join(str(v) for v in r.tobytes()))


if __name__ == "__main__":
    main()
