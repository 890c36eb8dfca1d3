"""The sample record every source yields and every other layer consumes."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.masks import RLE

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["ImageRef", "GroundTruth", "Sample", "GROUP_KEYS"]

#: Groupings a sample can carry; the evaluator breaks results down by each one present.
GROUP_KEYS = ("reasoning_type", "query_kind", "source")


@dataclass(frozen=True)
class ImageRef:
    """A lazily decoded image: encoded bytes, a file path, or a loader callable.

    Decoding is deferred because scoring never needs pixels and a split's images are large.
    ``where`` names the file/row for error messages.
    """

    data: bytes | None = None
    path: str | None = None
    loader: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)
    where: str = ""

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.loader is not None:
            return self.loader()
        if self.path is not None:
            return Path(self.path).read_bytes()
        raise InvalidInputError("sample has no image", self.where or None)

    def open(self) -> Image.Image:
        """Decode to an RGB PIL image; a corrupt or truncated file raises InvalidInputError."""
        from PIL import Image, UnidentifiedImageError

        try:
            raw = self.read_bytes()
            with Image.open(io.BytesIO(raw)) as img:
                img.load()
                return img.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InvalidInputError(f"corrupt or unreadable image: {exc}", self.where or self.path) from None


@dataclass(frozen=True)
class GroundTruth:
    """What scoring needs of a sample: id, size, target and ignore masks, groups. No pixels."""

    id: str
    height: int
    width: int
    target: RLE
    ignore: RLE | None = None
    groups: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """One benchmark sample.

    ``target`` is the union of all target instances; ``ignore`` the region the LISA convention
    excludes (``None`` when the source has none; the HF copies merged it into the target).
    ``query`` is the text evaluation uses (the first of ``queries``).
    """

    id: str
    image: ImageRef
    query: str
    height: int
    width: int
    target: RLE
    ignore: RLE | None = None
    queries: tuple[str, ...] = ()
    query_kind: str | None = None
    reasoning_type: str | None = None
    source: str | None = None
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def groups(self) -> dict[str, str]:
        """The groupings this sample has a label for (reasoning type, query kind, source)."""
        return {k: v for k in GROUP_KEYS if (v := getattr(self, k)) is not None}

    def ground_truth(self) -> GroundTruth:
        return GroundTruth(self.id, self.height, self.width, self.target, self.ignore, self.groups)
