"""LISA ReasonSeg folders: ``<root>/<split>/<stem>.jpg`` beside ``<stem>.json``.

A folder that holds the pairs itself is one split named after the folder. Each JSON gives
``text`` (every phrasing; the first is the query), ``is_sentence`` (long or short query),
``shapes`` (labelled polygons) and, optionally, ``reasoning_type``. Polygons are rasterised at the
image's own resolution exactly as LISA's loader does (see :mod:`reasonseg_x.data.polygons`); the
ignore region is kept as its own mask instead of being merged into the target.

Only the image header is read (for the size); pixels are decoded when someone opens the image,
and a corrupt file then raises an error naming it.
"""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from reasonseg_x import masks as rle
from reasonseg_x.data import polygons
from reasonseg_x.data.images import probe_image
from reasonseg_x.data.record import GroundTruth, ImageRef, Sample
from reasonseg_x.data.source import Source, check_unique_ids
from reasonseg_x.errors import InvalidInputError, SourceNotFoundError, UnknownLabelError
from reasonseg_x.json_input import loads_user_json, special_file_kind
from reasonseg_x.taxonomy import reasoning_types

__all__ = ["LisaSource", "LisaAnnotation", "read_annotation", "decode_json_bytes", "is_lisa_folder",
           "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SPLIT_ORDER = ("train", "val", "validation", "test")
#: EXIF orientations that swap width and height (OpenCV's imread and labelme both apply them)
_TRANSPOSED = {5, 6, 7, 8}


def decode_json_bytes(raw: bytes, where: str) -> Any:
    """Parse annotation JSON as UTF-8, else cp1252 (the reference's fallback), else fail naming the file."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        try:
            return loads_user_json(text, where)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", where) from None
    raise InvalidInputError("annotation is neither UTF-8 nor cp1252 text", where)


@dataclass(frozen=True)
class LisaAnnotation:
    """One parsed and validated LISA JSON file (polygons not yet rasterised)."""

    queries: tuple[str, ...]
    is_sentence: bool | None
    polygons: tuple[polygons.Polygon, ...]
    reasoning_type: str | None
    flags: int
    labels: tuple[str, ...]
    declared_size: tuple[int, int] | None  # (height, width) if the JSON states it


def read_annotation(path: Path, *, open_taxonomy: bool = False) -> LisaAnnotation:
    """Read and validate one annotation file; every problem raises InvalidInputError naming it."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read annotation: {exc.strerror or exc}", where) from None
    data = decode_json_bytes(raw, where)
    if not isinstance(data, dict):
        raise InvalidInputError(f"annotation must be a JSON object, got {type(data).__name__}", where)

    text = data.get("text")
    if isinstance(text, str):
        text = [text]
    if not isinstance(text, list) or not text or not all(isinstance(t, str) for t in text):
        raise InvalidInputError("'text' must be a non-empty list of query strings", where)
    queries = tuple(t.strip() for t in text)
    if not queries[0]:
        raise InvalidInputError("the first query in 'text' is empty", where)

    is_sentence = data.get("is_sentence")
    if is_sentence is not None and not isinstance(is_sentence, bool):
        if is_sentence in (0, 1):
            is_sentence = bool(is_sentence)
        else:
            raise InvalidInputError(f"'is_sentence' must be true or false, got {is_sentence!r}", where)

    shapes = data.get("shapes")
    if not isinstance(shapes, list):
        raise InvalidInputError("'shapes' must be a list of {label, points} objects", where)
    polys: list[polygons.Polygon] = []
    labels: list[str] = []
    flags = 0
    for k, shape in enumerate(shapes):
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            raise InvalidInputError(f"shape {k} must be an object with a string 'label'", where)
        label = shape["label"]
        if label.lower() == "flag":  # deprecated annotations: the reference skips them
            flags += 1
            continue
        points = shape.get("points")
        if not isinstance(points, list):
            raise InvalidInputError(f"shape {k} ({label!r}) has no 'points' list", where)
        if len(points) < 3:
            raise InvalidInputError(
                f"shape {k} ({label!r}) has {len(points)} point(s); a polygon needs at least 3", where)
        try:
            vertices = polygons.to_int_vertices(points)
        except ValueError as exc:
            raise InvalidInputError(f"shape {k} ({label!r}): {exc}", where) from None
        value = polygons.IGNORE_VALUE if "ignore" in label.lower() else polygons.TARGET_VALUE
        polys.append(polygons.Polygon(vertices, value, label, k))
        labels.append(label)

    rtype = data.get("reasoning_type")
    if rtype is not None:
        try:
            rtype = reasoning_types(open=open_taxonomy).resolve(str(rtype))
        except UnknownLabelError as exc:
            raise UnknownLabelError(exc.reason, where) from None

    declared = None
    h, w = data.get("imageHeight"), data.get("imageWidth")
    if isinstance(h, int) and isinstance(w, int) and not isinstance(h, bool) and not isinstance(w, bool):
        declared = (h, w)
    return LisaAnnotation(queries, is_sentence, tuple(polys), rtype, flags, tuple(labels), declared)


def _image_size(path: Path) -> tuple[int, int, bool]:
    """(height, width, transposed) from the header; EXIF rotation applied as OpenCV's imread does.

    A corrupt or truncated file raises an error naming it (see :mod:`reasonseg_x.data.images`).
    """
    probe = probe_image(path, str(path))
    if probe.orientation in _TRANSPOSED:
        return probe.width, probe.height, True
    return probe.height, probe.width, False


def _oriented_png(path: Path) -> bytes:
    """The image with its EXIF orientation applied, as PNG (only for rotated files)."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            fixed = ImageOps.exif_transpose(img).convert("RGB")
    except OSError as exc:
        raise InvalidInputError(f"corrupt or unreadable image: {exc}", str(path)) from None
    buf = io.BytesIO()
    fixed.save(buf, format="PNG")
    return buf.getvalue()


def _split_rank(folder: Path) -> tuple[int, str]:
    """Publication order: train, val, test, then other split folders alphabetically."""
    name = folder.name
    return (_SPLIT_ORDER.index(name) if name in _SPLIT_ORDER else len(_SPLIT_ORDER), name)


def _has_pairs(folder: Path) -> bool:
    """Whether ``folder`` is a split: at least one ``<stem>.json`` beside an image of the same stem.

    LISA's release also has ``explanatory/`` (JSON only, no images), which is not a split.
    """
    files = [p for p in folder.iterdir() if p.is_file()]
    stems = {p.stem for p in files if p.suffix.lower() in IMAGE_SUFFIXES}
    return any(p.suffix.lower() == ".json" and p.stem in stems for p in files)


def is_lisa_folder(path: str | Path) -> bool:
    """True when ``path`` holds ``<stem>.json`` + image pairs itself or in its sub-folders (splits)."""
    root = Path(path)
    if not root.is_dir():
        return False
    if _has_pairs(root):
        return True
    return any(sub.is_dir() and _has_pairs(sub) for sub in root.iterdir())


class LisaSource(Source):
    """A LISA-format folder as a source; sample id = file stem."""

    id_rule = "file stem"
    ground_truth_checks_images = True

    def __init__(self, path: str | Path, *, skip_invalid: bool = False, open_taxonomy: bool = False,
                 source: str | None = None) -> None:
        super().__init__(skip_invalid=skip_invalid)
        self.root = Path(path)
        self.spec = str(path)
        self.open_taxonomy = open_taxonomy
        self.source = source
        if not self.root.is_dir():
            raise SourceNotFoundError(f"LISA folder not found: {self.root}")
        if _has_pairs(self.root):
            self._split_dirs = {self.root.name: self.root}
        else:
            subs = sorted((p for p in self.root.iterdir() if p.is_dir() and _has_pairs(p)), key=_split_rank)
            self._split_dirs = {p.name: p for p in subs}
        if not self._split_dirs:
            raise InvalidInputError("no LISA annotation + image pairs (<stem>.json beside <stem>.jpg) found here or "
                                    "in its sub-folders", str(self.root))

    def splits(self) -> list[str]:
        return list(self._split_dirs)

    def files(self, split: str | None = None) -> list[Path]:
        """The annotation and image files of ``split`` (what its samples are read from), sorted."""
        folder = self._split_dirs[self.resolve_split(split)]
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.suffix.lower() in (".json", *IMAGE_SUFFIXES))

    # --- pairing -------------------------------------------------------------------------------

    def _pairs(self, split: str) -> Iterator[tuple[str, Path, Path | None, str | None]]:
        """(stem, json, image or None, problem or None) for each annotation, sorted by stem."""
        folder = self._split_dirs[split]
        files: list[Path] = []
        special: dict[Path, str] = {}
        for p in sorted(folder.iterdir()):
            try:
                mode = p.stat().st_mode
            except OSError:  # a dangling link: no file
                continue
            kind = special_file_kind(mode)
            if kind is not None:
                special[p] = kind
            if kind is not None or stat.S_ISREG(mode):
                files.append(p)
        images: dict[str, list[Path]] = {}
        annotations: dict[str, Path] = {}
        for p in files:
            suffix = p.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                images.setdefault(p.stem, []).append(p)
            elif suffix == ".json":
                annotations[p.stem] = p
        for stem in sorted(set(images) - set(annotations)):
            yield stem, images[stem][0], None, "image has no annotation file (<stem>.json)"
        for stem in sorted(annotations):
            found = images.get(stem, [])
            odd = next((p for p in (annotations[stem], *found) if p in special), None)
            if odd is not None:  # a FIFO would block the reader, a device never end: refused unopened
                yield stem, annotations[stem], None, (f"{odd.name} is {special[odd]}, not a regular file; save the "
                                                      "content to a file first")
            elif not found:
                yield stem, annotations[stem], None, "annotation has no image (<stem>.jpg)"
            elif len(found) > 1:
                names = ", ".join(p.name for p in found)
                yield stem, annotations[stem], None, f"several images share the stem {stem!r}: {names}"
            else:
                yield stem, annotations[stem], found[0], None

    def _records(self, split: str | None) -> Iterator[tuple[str, Path, Path, LisaAnnotation, int, int, bool, dict]]:
        split = self.resolve_split(split)
        seen: dict[str, str] = {}
        for stem, json_path, image_path, problem in self._pairs(split):
            if problem is not None or image_path is None:
                self.reject(problem or "unpaired file", str(json_path))
                continue
            try:
                ann = read_annotation(json_path, open_taxonomy=self.open_taxonomy)
                height, width, transposed = _image_size(image_path)
                if ann.declared_size is not None and ann.declared_size != (height, width):
                    raise InvalidInputError(
                        f"annotation declares image size {list(ann.declared_size)} (h, w) but "
                        f"{image_path.name} is {[height, width]}", str(json_path))
                check_unique_ids(seen, stem, str(json_path))
            except InvalidInputError as exc:
                if not self.skip_invalid:
                    raise  # keep the precise error class (UnknownLabelError, ...)
                self.reject(exc.reason, exc.where or str(json_path))
                continue
            canvas = polygons.rasterize(ann.polygons, height, width)
            masks = {"target": rle.encode(canvas == polygons.TARGET_VALUE)}
            ignore = canvas == polygons.IGNORE_VALUE
            masks["ignore"] = rle.encode(ignore) if ignore.any() else None
            yield stem, json_path, image_path, ann, height, width, transposed, masks

    # --- Source API ----------------------------------------------------------------------------

    def _groups(self, ann: LisaAnnotation) -> dict[str, str]:
        groups = {"reasoning_type": ann.reasoning_type,
                  "query_kind": None if ann.is_sentence is None else ("long" if ann.is_sentence else "short"),
                  "source": self.source}
        return {k: v for k, v in groups.items() if v is not None}

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        split = self.resolve_split(split)
        for stem, json_path, image_path, ann, height, width, transposed, masks in self._records(split):
            if transposed:
                image = ImageRef(loader=partial(_oriented_png, image_path), path=str(image_path), where=str(image_path))
            else:
                image = ImageRef(path=str(image_path), where=str(image_path))
            groups = self._groups(ann)
            yield Sample(
                id=stem, image=image, query=ann.queries[0], height=height, width=width,
                target=masks["target"], ignore=masks["ignore"], queries=ann.queries,
                query_kind=groups.get("query_kind"), reasoning_type=groups.get("reasoning_type"),
                source=self.source, split=split,
                meta={"image_file": image_path.name, "annotation_file": json_path.name,
                      "labels": list(ann.labels), "flag_shapes": ann.flags},
            )

    def ground_truth(self, split: str | None = None) -> Iterator[GroundTruth]:
        for stem, _json, _image, ann, height, width, _t, masks in self._records(split):
            yield GroundTruth(stem, height, width, masks["target"], masks["ignore"], self._groups(ann))

    def num_samples(self, split: str | None = None) -> int:
        if self.skip_invalid:
            return super().num_samples(split)
        split = self.resolve_split(split)
        return sum(1 for p in self._split_dirs[split].iterdir() if p.is_file() and p.suffix.lower() == ".json")
