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

__all__ = ["check_creatable", "prepare_folder", "prepare_file"]


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
