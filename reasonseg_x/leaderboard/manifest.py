"""A split's manifest: the sample ids, image sizes and ground-truth fingerprint, without masks.

Authors of a submission need to know which ids to predict and at which size, and the host needs
to know the bundle was made for the same data; neither needs the private masks. A manifest is
computed from any source and written as JSON, so it can be published beside a hidden test split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x.atomic import write_json_atomic
from reasonseg_x.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.data.source import Source

__all__ = ["Manifest", "MANIFEST_FORMAT", "manifest_from_source", "read_manifest", "write_manifest"]

MANIFEST_FORMAT = "reasonseg-x-manifest"
_MAX_MANIFEST_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Manifest:
    """Ids in split order with their ``(height, width)``; ``fingerprint`` identifies the ground truth."""

    data: str
    split: str
    fingerprint: str
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: reasoning type (and other group labels) per id, where the source has them; public metadata
    groups: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return list(self.sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    def to_json(self) -> dict[str, Any]:
        samples = []
        for sid, (h, w) in self.sizes.items():
            row: dict[str, Any] = {"id": sid, "height": h, "width": w}
            if self.groups.get(sid):
                row["groups"] = dict(self.groups[sid])
            samples.append(row)
        return {"format": MANIFEST_FORMAT, "version": 1, "data": self.data, "split": self.split,
                "fingerprint": self.fingerprint, "n": len(self.sizes), "samples": samples}

    @classmethod
    def from_json(cls, obj: Any, *, where: str = "<manifest>") -> Manifest:
        """Parse and type-check a manifest object (it may come from an untrusted download)."""
        if not isinstance(obj, dict) or obj.get("format") != MANIFEST_FORMAT:
            raise InvalidInputError(f"not a reasonseg-x manifest (expected \"format\": \"{MANIFEST_FORMAT}\")", where)
        for key in ("data", "split", "fingerprint"):
            if not isinstance(obj.get(key), str):
                raise InvalidInputError(f"manifest field {key!r} must be a string", where)
        samples = obj.get("samples")
        if not isinstance(samples, list):
            raise InvalidInputError("manifest field 'samples' must be a list", where)
        sizes: dict[str, tuple[int, int]] = {}
        groups: dict[str, dict[str, str]] = {}
        for i, row in enumerate(samples):
            at = f"{where}: samples[{i}]"
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise InvalidInputError("each sample needs a string 'id'", at)
            h, w = row.get("height"), row.get("width")
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (h, w)):
                raise InvalidInputError(f"sample {row['id']!r} needs positive integer height and width", at)
            if row["id"] in sizes:
                raise InvalidInputError(f"duplicate id {row['id']!r}", at)
            sizes[row["id"]] = (h, w)
            g = row.get("groups")
            if g is not None:
                if not isinstance(g, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in g.items()):
                    raise InvalidInputError(f"sample {row['id']!r}: 'groups' must map strings to strings", at)
                groups[row["id"]] = dict(g)
        if isinstance(obj.get("n"), int) and obj["n"] != len(sizes):
            raise InvalidInputError(f"manifest says n={obj['n']} but lists {len(sizes)} samples", where)
        return cls(data=obj["data"], split=obj["split"], fingerprint=obj["fingerprint"], sizes=sizes, groups=groups)


def manifest_from_source(source: Source, split: str | None = None) -> Manifest:
    """Compute the manifest of ``split`` from a source's ground truth (one pass, no pixels)."""
    name = source.resolve_split(split)
    sizes: dict[str, tuple[int, int]] = {}
    groups: dict[str, dict[str, str]] = {}
    for gt in source.ground_truth(name):
        if gt.id in sizes:
            raise InvalidInputError(f"duplicate sample id {gt.id!r} in split {name!r}", source.spec or None)
        sizes[gt.id] = (int(gt.height), int(gt.width))
        if gt.groups:
            groups[gt.id] = dict(gt.groups)
    return Manifest(data=source.spec, split=name, fingerprint=source.fingerprint(name), sizes=sizes, groups=groups)


def write_manifest(manifest: Manifest, path: str | os.PathLike[str]) -> Path:
    """Write the manifest as JSON (atomically: a temp file renamed into place)."""
    from reasonseg_x.output_paths import prepare_file

    out = prepare_file(path, "the manifest (--out)")
    write_json_atomic(out, manifest.to_json(), indent=1)
    return out


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a manifest file with bounded JSON parsing."""
    from reasonseg_x.leaderboard.safety import Limits, read_bounded, safe_json_loads

    where = str(path)
    if Path(path).is_dir():
        found = sorted(p.name for p in Path(path).glob("*.json"))[:3]
        hint = f" (it holds {', '.join(found)})" if found else ""
        raise InvalidInputError(f"is a folder; --manifest wants the manifest JSON file that `reasonseg-x leaderboard "
                                f"manifest` writes{hint}", where)
    if not Path(path).is_file():
        raise InvalidInputError("manifest file not found", where)
    data = read_bounded(path, _MAX_MANIFEST_BYTES, where)
    obj = safe_json_loads(data, limits=Limits(max_json_depth=8), max_bytes=_MAX_MANIFEST_BYTES, where=where)
    return Manifest.from_json(obj, where=where)
