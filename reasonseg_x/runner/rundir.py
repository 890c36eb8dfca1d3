"""The default run folder: ``runs/<model>-<data>[-<split>][-<args hash>]`` under the current folder.

The same command always names the same folder, so rerunning it resumes; a different model, data,
split or argument set names a different folder, so a new user never meets the "different run"
refusal just because they left ``--out`` out.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePath
from typing import Any

__all__ = ["DEFAULT_RUNS_DIR", "default_run_dir"]

DEFAULT_RUNS_DIR = Path("runs")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def _slug(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-.") or "run"


def _model_part(model: str, path_arg_value: str | None) -> str:
    head, sep, tail = model.partition(":")
    if path_arg_value is not None:  # predictions:PATH -> predictions-<folder or file stem>
        path = PurePath(path_arg_value.rstrip("/"))
        stem = path.parent.name if path.name == "predictions.jsonl" and path.parent.name else path.stem
        return f"{head}-{stem}" if stem else head
    return tail.rsplit(".", 1)[-1] if sep else head  # pkg.module:Factory -> Factory


def _data_part(data: str) -> str:
    text = data.strip().rstrip("/")
    if "/" in text or text.startswith("."):  # a folder, a file or a Hub id: its last component
        text = PurePath(text).name or text
    return text.replace(":", "")  # synth:24 -> synth24


def default_run_dir(model: str, args: dict[str, Any], data: str, split: str | None = None, *,
                    path_arg: str | None = None, root: Path = DEFAULT_RUNS_DIR) -> Path:
    """The folder a run goes to without ``--out``; ``args`` are the bound (typed) model arguments.

    ``path_arg`` names the argument carried in the model name (``predictions:PATH``): it is
    spelled in the folder name instead of hashed.
    """
    carried = args.get(path_arg) if path_arg else None
    rest = {k: v for k, v in args.items() if k != path_arg}
    parts = [_model_part(model, None if carried is None else str(carried)), _data_part(data)]
    if split:
        parts.append(split)
    if rest:
        digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:8]
        parts.append(digest)
    return root / _slug("-".join(_slug(p) for p in parts))
