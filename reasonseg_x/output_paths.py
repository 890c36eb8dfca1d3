"""Output paths of commands (leaderboard, viewer): made, or refused with the path named.

``--out``, ``--db`` and ``--workdir`` may point below a file or at a folder where a file is
expected; the OS would answer with a traceback (``NotADirectoryError``), so every output path is
checked (and its folder made) here first.
"""

from __future__ import annotations

import os
from pathlib import Path

from reasonseg_x.atomic import writing
from reasonseg_x.errors import InvalidInputError

__all__ = ["check_creatable", "prepare_folder", "prepare_file", "claim_folder"]


def check_creatable(path: str | os.PathLike[str], option: str) -> None:
    """Refuse, without creating anything, a ``path`` below a file (``afile/bundle``)."""
    for parent in Path(path).absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InvalidInputError(f"{option} lies below {parent}, which is a file, not a folder", str(path))
            return


def prepare_folder(path: str | os.PathLike[str], option: str) -> Path:
    """Create the folder ``path`` (and its parents) unless it exists; ``option`` names it in errors."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{option} must be a folder, but this is a file", str(folder))
    check_creatable(folder, option)
    try:
        with writing(folder):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"{option}: cannot create the folder ({exc.strerror or exc})", str(folder)) from None
    return folder


def prepare_file(path: str | os.PathLike[str], option: str) -> Path:
    """Make the parent folder of the file ``path``; refuse a ``path`` that is a folder."""
    file = Path(path)
    if file.is_dir():
        raise InvalidInputError(f"{option} must be a file, but this is a folder", str(file))
    check_creatable(file, option)
    prepare_folder(file.parent, f"the folder of {option}")
    return file


def claim_folder(path: str | os.PathLike[str], option: str, *, marker: str, owner: str, other: str,
                 overwrite: bool = False) -> Path:
    """Make the output folder ``path`` of a command that fills it whole (``show --out``) and mark it as
    written for ``owner`` (a digest of what it shows) in the file ``marker``.

    A folder written for the same owner is written again; one that holds anything else (another
    run's output, unrelated files) is refused unless ``overwrite``, as every command refuses to
    replace what it did not write; ``other`` names the former in the error."""
    import json

    from reasonseg_x.atomic import write_json_atomic

    folder = prepare_folder(path, option)
    try:
        recorded = json.loads((folder / marker).read_text(encoding="utf-8")).get("owner")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if recorded != owner and not overwrite and any(folder.iterdir()):
        what = other if (folder / marker).exists() else "other files"
        raise InvalidInputError(f"{option} already holds {what}; pass --overwrite to replace it, or choose another "
                                "folder", str(folder))
    write_json_atomic(folder / marker, {"owner": owner})  # a refusal to write is worded by atomic.writing
    return folder
