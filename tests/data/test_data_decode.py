import os

import numpy as np
import pytest
from data_helpers import make_odd_files, save
from PIL import Image

from minitorch_alex.data import UnreadableImage, load_image, open_rgb, resize_center_crop

S = 32


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    return str(folder), make_odd_files(folder)


def test_good_odd_files_become_rgb_uint8_of_the_right_colour(odd):
    folder, info = odd
    for name, colour in info["good"].items():
        out = load_image(os.path.join(folder, name), S)
        assert out.shape == (S, S, 3) and out.dtype == np.uint8, name
        if colour is not None:
            assert np.array_equal(out, np.broadcast_to(np.array(colour, np.uint8), out.shape)), (name, out[0, 0])


def test_cmyk_red_stays_red(odd):
    folder, _ = odd
    out = load_image(os.path.join(folder, "cmyk.jpg"), S).astype(int)
    assert out[..., 0].min() > 230 and out[..., 1:].max() < 25


def test_very_wide_image_keeps_its_centre(odd):
    folder, _ = odd
    out = load_image(os.path.join(folder, "wide.png"), S)
    # Centre square of a 2000x10 image is columns 995..1004: red = column % 256 = 227..236.
    assert out[..., 0].min() >= 227 and out[..., 0].max() <= 236
    assert out[..., 0].max() > out[..., 0].min()  # still a gradient, not a constant


@pytest.mark.parametrize("name", ["truncated.jpg", "empty.jpg", "text.jpg"])
def test_bad_files_raise_unreadable(odd, name):
    folder, _ = odd
    with pytest.raises(UnreadableImage):
        load_image(os.path.join(folder, name), S)


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 50, 60, 70] + [0, 0, 0] * 254)
    img.info["transparency"] = 1
    path = save(img, str(tmp_path / "p.png"), transparency=1)
    assert tuple(load_image(path, 8)[0, 0]) == (255, 255, 255)


def test_half_transparent_black_becomes_mid_grey(tmp_path):
    path = save(Image.new("RGBA", (8, 8), (0, 0, 0, 128)), str(tmp_path / "half.png"))
    value = load_image(path, 8)[0, 0]
    assert np.all(np.abs(value.astype(int) - 127) <= 1)


def test_resize_center_crop_matches_resize_then_crop():
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (60, 100, 3), dtype=np.uint8))
    ours = resize_center_crop(img, 30).astype(int)
    # Reference: shorter side 60 -> 30 (scale 1/2, width 50), then the middle 30 columns.
    ref = np.asarray(img.resize((50, 30), Image.Resampling.BILINEAR)).astype(int)[:, 10:40]
    assert np.abs(ours - ref).max() <= 1
    wrong_offset = np.asarray(img.resize((50, 30), Image.Resampling.BILINEAR)).astype(int)[:, 11:41]
    assert np.abs(ours - wrong_offset).mean() > 10  # the comparison can tell a 1-pixel shift


def test_draft_is_used_for_large_jpegs(tmp_path):
    rng = np.random.default_rng(2)
    path = save(Image.fromarray(rng.integers(0, 256, (400, 512, 3), dtype=np.uint8)), str(tmp_path / "big.jpg"),
                "JPEG")
    img = open_rgb(path, min_side=64)
    # 400/64 >= 4 so the DCT can decode at 1/4 scale; shorter side still >= 64.
    assert img.size == (128, 100)
    assert open_rgb(path).size == (512, 400)
