"""Decode one image file into an RGB uint8 array of a fixed square size.

Real image collections (ImageNet included) contain odd files: greyscale,
CMYK and palette JPEGs, PNGs with an alpha channel or 16 bits per sample,
1x1 pixel images, extreme aspect ratios, and files that are not images at
all or are cut short. Everything that Pillow can decode is turned into the
same thing, an ``(size, size, 3)`` uint8 array; everything else raises
:class:`UnreadableImage`, which the caller counts and skips.

Conversion rules (documented because they change pixel values):

* ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: Pillow's own
  conversion to ``RGB``.
* Anything with transparency (``RGBA``, ``LA``, ``PA``, or ``P`` with a
  transparent index) is alpha-composited **on white**. Transparent pixels of
  web images and logos are usually meant to be shown on a white page, and
  dropping alpha instead would expose whatever colour happens to be stored
  under the transparent pixels (often black).
* 16-bit greyscale (``I;16``, ``I;16B``, ``I;16L``) and 32-bit integer
  (``I``) images are assumed to use the 16-bit range 0..65535 and divided by
  257 (so 65535 -> 255). ``I`` images whose values all fit in 0..255 are
  taken as already 8-bit. Float images (``F``) with values in [0, 1] are
  scaled by 255, others are clipped to 0..255.
* EXIF orientation is ignored (as in torchvision's ImageNet loaders).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

# Pillow raises many exception types for bad files (OSError for truncated
# data, UnidentifiedImageError for non-images, ValueError / SyntaxError from
# some plugins, DecompressionBombError for absurdly large images). They are
# all reported through this one type so callers can skip "anything bad".
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class UnreadableImage(Exception):
    """A file that could not be decoded; ``str(err)`` gives the reason."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow image mode to 8-bit RGB (rules in the module doc)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        # Only palette images with a transparent entry need compositing.
        if "transparency" in img.info:
            return _to_rgb(img.convert("RGBA"))
        return img.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        grey = np.asarray(img).astype(np.float64)
        if mode == "F":
            grey = grey * 255.0 if grey.size and grey.max() <= 1.0 else grey
        elif mode.startswith("I;16") or (grey.size and grey.max() > 255):
            grey = grey / 257.0
        grey8 = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return Image.fromarray(grey8, mode="L").convert("RGB")
    return img.convert("RGB")


def open_rgb(path: str | os.PathLike, min_side: int | None = None) -> Image.Image:
    """Open ``path`` fully decoded as an ``RGB`` Pillow image.

    ``min_side``: if given, JPEGs are decoded with ``Image.draft`` at the
    smallest DCT scale (1/2, 1/4 or 1/8) whose shorter side is still
    >= ``min_side``. Decoding a 500x375 ImageNet JPEG at 1/2 scale roughly
    halves decode time, and the image is downscaled afterwards anyway.

    Raises :class:`UnreadableImage` for anything Pillow cannot decode.
    """
    try:
        with Image.open(path) as img:
            if min_side is not None and img.format == "JPEG":
                img.draft(None, (min_side, min_side))
            img.load()  # force the full decode now so truncation errors surface here
            return _to_rgb(img)
    except _DECODE_ERRORS as err:
        raise UnreadableImage(f"{type(err).__name__}: {err}") from err


def resize_center_crop(img: Image.Image, size: int) -> np.ndarray:
    """Scale the shorter side to ``size`` and take the central square.

    Returns an ``(size, size, 3)`` uint8 array.

    Resizing the whole image and then cropping would, for a 2000x10 image,
    build a 51200x256 intermediate. Instead the central square of the
    *source* (side = its shorter side) is resampled straight to
    ``size x size`` with Pillow's ``box`` argument. This is the same
    geometry up to sub-pixel rounding of the crop offset. Pillow's BILINEAR
    filter widens its support when downscaling, i.e. it is antialiased.
    """
    w, h = img.size
    side = min(w, h)
    left = (w - side) / 2.0
    top = (h - side) / 2.0
    box = (left, top, left + side, top + side)
    out = img.resize((size, size), Image.Resampling.BILINEAR, box=box)
    return np.asarray(out, dtype=np.uint8).reshape(size, size, 3)


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """Decode ``path`` into an ``(size, size, 3)`` uint8 array (shorter side
    to ``size``, centre crop). Raises :class:`UnreadableImage` on bad files."""
    img = open_rgb(path, min_side=size)
    try:
        return resize_center_crop(img, size)
    except _DECODE_ERRORS as err:  # e.g. a 0-pixel image slipping through
        raise UnreadableImage(f"{type(err).__name__}: {err}") from err
