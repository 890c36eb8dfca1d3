"""Recognise the on-disk layouts a local source can have, and list each split's data files.

Layouts: a Hub-style parquet folder (``data/<split>-0000K-of-0000N.parquet``, optionally with a
README whose YAML ``configs`` name the files), a plain parquet or arrow file, a ``save_to_disk``
folder (one ``Dataset``: ``state.json`` + ``data-*.arrow``; or a ``DatasetDict``:
``dataset_dict.json`` + one such folder per split), our compact export (parquet carrying the
``reasonseg_x`` schema metadata) and a LISA folder (``<split>/*.jpg`` + ``*.json``).
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.json_input import loads_user_json

__all__ = ["Layout", "detect_layout", "split_name_of", "read_card_configs", "DEFAULT_SINGLE_SPLIT"]

#: what a folder or file without split information is called: the published eval repos keep
#: their rows in ``test`` and the reference loaders look there first
DEFAULT_SINGLE_SPLIT = "test"

_SHARD_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_.]+?)(?:[-_]\d{5}-of-\d{5})(?:[-_].*)?$")
_SPLIT_WORDS = ("train", "validation", "valid", "val", "dev", "test")
_DATA_SUFFIXES = (".parquet", ".arrow")


@dataclass
class Layout:
    """What a local path holds: ``kind`` and the data files of each split, in order."""

    kind: str  # "hf-parquet" | "hf-arrow" | "compact" | "lisa"
    root: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    #: True when split names were invented (a lone file or a ``Dataset`` folder)
    implicit_split: bool = False


def split_name_of(path: Path) -> str | None:
    """Split name from a shard file name (``test-00000-of-00002.parquet``), a split word, or a folder."""
    stem = path.name
    for suffix in _DATA_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    match = _SHARD_NAME.match(stem)
    if match and match.group("split") != "data":  # save_to_disk names its shards data-0000K-of-0000N
        return match.group("split")
    if stem in _SPLIT_WORDS or re.fullmatch(r"(train|val|validation|test)[A-Za-z0-9_]*", stem):
        return stem
    parent = path.parent.name  # the Hub's converted layout: <config>/<split>/0000.parquet
    if re.fullmatch(r"\d+", stem) and parent and parent not in ("data", ""):
        return parent
    return None


def read_card_configs(root: Path) -> dict[str, list[str]] | None:
    """The ``data_files`` of the default config in ``README.md``'s YAML header, as split -> patterns."""
    readme = root / "README.md"
    if not readme.is_file():
        return None
    import yaml

    text = readme.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    try:
        header = yaml.safe_load(text[3:end])
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"dataset card YAML header does not parse: {exc}", str(readme)) from None
    configs = header.get("configs") if isinstance(header, dict) else None
    if not isinstance(configs, list) or not configs:
        return None
    chosen = next((c for c in configs if isinstance(c, dict) and (c.get("default") or c.get("config_name") == "default")),
                  configs[0])
    data_files = chosen.get("data_files") if isinstance(chosen, dict) else None
    if isinstance(data_files, str):
        return {"train": [data_files]}
    if isinstance(data_files, dict):
        return {str(k): [v] if isinstance(v, str) else [str(p) for p in v] for k, v in data_files.items()}
    out: dict[str, list[str]] = {}
    if isinstance(data_files, list):
        for item in data_files:
            if isinstance(item, dict) and "split" in item and "path" in item:
                paths = item["path"]
                out.setdefault(str(item["split"]), []).extend([paths] if isinstance(paths, str) else [str(p) for p in paths])
    return out or None


def _arrow_files_of_dataset_folder(folder: Path) -> list[Path]:
    state = folder / "state.json"
    if state.is_file():
        try:
            names = [f["filename"] for f in loads_user_json(state.read_text(encoding="utf-8"), None)["_data_files"]]
            return [folder / n for n in names]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"not a save_to_disk state file: {exc}", str(state)) from None
    return sorted(folder.glob("*.arrow"))


def _group_by_split(files: list[Path]) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    for f in sorted(files):
        groups.setdefault(split_name_of(f) or DEFAULT_SINGLE_SPLIT, []).append(f)
    return groups


def _is_compact_parquet(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - an unreadable file is reported by its loader
        return False
    return b"reasonseg_x" in meta


def detect_layout(path: str | Path) -> Layout | None:
    """Recognise ``path`` (a file or folder); ``None`` when it is none of the known layouts."""
    root = Path(path)
    if root.is_file():
        if root.suffix == ".parquet":
            kind = "compact" if _is_compact_parquet(root) else "hf-parquet"
            split = split_name_of(root)
            return Layout(kind, root.parent, {split or DEFAULT_SINGLE_SPLIT: [root]}, implicit_split=split is None)
        if root.suffix == ".arrow":
            return Layout("hf-arrow", root.parent, {split_name_of(root) or DEFAULT_SINGLE_SPLIT: [root]},
                          implicit_split=split_name_of(root) is None)
        return None
    if not root.is_dir():
        return None
    dict_json = root / "dataset_dict.json"
    if dict_json.is_file():
        try:
            names = [str(s) for s in loads_user_json(dict_json.read_text(encoding="utf-8"), None)["splits"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"not a save_to_disk dataset_dict.json: {exc}", str(dict_json)) from None
        return Layout("hf-arrow", root, {n: _arrow_files_of_dataset_folder(root / n) for n in names})
    if (root / "state.json").is_file() or ((root / "dataset_info.json").is_file() and any(root.glob("*.arrow"))):
        return Layout("hf-arrow", root, {DEFAULT_SINGLE_SPLIT: _arrow_files_of_dataset_folder(root)}, implicit_split=True)
    configs = read_card_configs(root)
    if configs:
        files: dict[str, list[Path]] = {}
        for split, patterns in configs.items():
            found: list[Path] = []
            for pattern in patterns:
                found.extend(Path(p) for p in sorted(glob.glob(str(root / pattern), recursive=True)))
            found = [f for f in found if f.suffix in _DATA_SUFFIXES]
            if found:
                files[split] = found
        if files:
            return _parquet_layout(root, files, implicit=False)
    for candidates in (sorted((root / "data").glob("*.parquet")) if (root / "data").is_dir() else [],
                       sorted(root.glob("*.parquet")),
                       sorted(root.glob("*/*/*.parquet")),
                       sorted(root.glob("*/*.parquet"))):
        if candidates:
            groups = _group_by_split(candidates)
            implicit = all(split_name_of(f) is None for f in candidates)
            return _parquet_layout(root, groups, implicit=implicit)
    from reasonseg_x.data.lisa import is_lisa_folder

    if is_lisa_folder(root):
        return Layout("lisa", root)
    return None


def _parquet_layout(root: Path, files: dict[str, list[Path]], *, implicit: bool) -> Layout:
    first = next(iter(files.values()))[0]
    kind = "compact" if first.suffix == ".parquet" and _is_compact_parquet(first) else (
        "hf-arrow" if first.suffix == ".arrow" else "hf-parquet")
    return Layout(kind, root, files, implicit_split=implicit)
