"""Check an encoded image without decoding its pixels: readable header, size, not cut short.

Why: loaders read only the header (for the size) so that scoring never decodes pixels, but a
truncated JPEG or PNG has an intact header and would pass unnoticed until a model opens it. A
complete JPEG ends with the EOI marker and a complete PNG with its IEND chunk; only when that
marker is missing (or the format has none) is the image decoded to tell.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from reasonseg_x.errors import InvalidInputError

__all__ = ["probe_image", "check_image", "ImageProbe"]

_TAIL_BYTES = 64


@dataclass(frozen=True)
class ImageProbe:
    """What the header says: ``width``, ``height`` and the EXIF ``orientation`` (1 when none)."""

    width: int
    height: int
    orientation: int = 1


def _complete_by_marker(fmt: str | None, tail: bytes) -> bool:
    tail = tail.rstrip(b"\x00\r\n\t ")
    if fmt == "JPEG":
        return tail.endswith(b"\xff\xd9")
    if fmt == "PNG":
        return b"IEND" in tail
    return False


def _orientation(img) -> int:  # noqa: ANN001 - a PIL image, header read only
    """EXIF orientation from the header; 1 when absent or broken (OpenCV ignores a broken block too).

    A PNG whose EXIF chunk is not ahead of the pixels would need a full decode to find it
    (Pillow's ``getexif`` loads the image), so such a PNG counts as unrotated.
    """
    if img.format == "PNG" and "exif" not in img.info:
        return 1
    try:
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001
        return 1


def probe_image(source: bytes | str | Path, where: str) -> ImageProbe:
    """Header facts of an encoded image (bytes or a file path).

    Raises :class:`InvalidInputError` naming ``where`` for an unreadable, corrupt or truncated image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            raw = bytes(source)
            handle = io.BytesIO(raw)
            tail = raw[-_TAIL_BYTES:]
        else:
            handle = open(source, "rb")  # noqa: SIM115 - closed below
            handle.seek(0, io.SEEK_END)
            handle.seek(max(handle.tell() - _TAIL_BYTES, 0))
            tail = handle.read()
            handle.seek(0)
        with handle, Image.open(handle) as img:
            width, height = img.size
            orientation = _orientation(img)
            if not _complete_by_marker(img.format, tail):
                img.load()
    except FileNotFoundError:
        raise InvalidInputError("image file not found", where) from None
    except Image.DecompressionBombError as exc:
        raise InvalidInputError(f"image too large to open safely: {exc}", where) from None
    except UnidentifiedImageError:
        raise InvalidInputError("corrupt or unreadable image: not an image format Pillow can read", where) from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = "truncated image" if "truncated" in str(exc) else "corrupt or unreadable image"
        raise InvalidInputError(f"{reason}: {exc}", where) from None
    return ImageProbe(width, height, orientation)


def check_image(raw: bytes, height: int, width: int, where: str) -> None:
    """Raise :class:`InvalidInputError` unless ``raw`` is a complete image of ``height`` x ``width``."""
    probe = probe_image(raw, where)
    if (probe.height, probe.width) != (height, width):
        raise InvalidInputError(f"image is {probe.height}x{probe.width} (h x w) but the row says {height}x{width}",
                                where)
