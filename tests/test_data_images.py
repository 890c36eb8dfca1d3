"""The image check every loader uses: header, size and completeness, without decoding good files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from reasonseg_x.data.images import check_image, probe_image
from reasonseg_x.errors import InvalidInputError


def _encoded(fmt: str, height: int = 20, width: int = 30) -> bytes:
    pixels = (np.random.default_rng(height * width).random((height, width, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_complete_images_are_sized_without_decoding(fmt, monkeypatch):
    raw = _encoded(fmt)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("a complete image was decoded"))
    probe = probe_image(raw, "x")
    assert (probe.height, probe.width, probe.orientation) == (20, 30, 1)
    check_image(raw, 20, 30, "x")


def test_wrong_size_and_garbage_name_the_row():
    with pytest.raises(InvalidInputError, match=r"^f\.parquet:row 3: image is 20x30 \(h x w\) but the row says 21x30"):
        check_image(_encoded("PNG"), 21, 30, "f.parquet:row 3")
    with pytest.raises(InvalidInputError, match=r"^a\.jpg: corrupt or unreadable image"):
        probe_image(b"GIF89a nonsense", "a.jpg")


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(fmt=st.sampled_from(["PNG", "JPEG"]), keep=st.floats(0.0, 0.9999))
def test_a_cut_image_is_refused_or_decodes_to_the_same_pixels(fmt, keep):
    raw = _encoded(fmt)
    cut = raw[: int(len(raw) * keep)]
    try:
        probe_image(cut, "cut")
    except InvalidInputError as exc:
        assert exc.where == "cut"
        return
    # accepted: only bytes the decoder does not need (e.g. the end marker) were missing
    with Image.open(io.BytesIO(cut)) as img, Image.open(io.BytesIO(raw)) as whole:
        assert np.array_equal(np.asarray(img.convert("RGB")), np.asarray(whole.convert("RGB")))
