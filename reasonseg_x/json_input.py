"""Reading what users hand us: JSON with a nesting bound, and only regular files.

Python's JSON parser recurses once per nesting level, so a file nested 200,000 levels deep ends in
an unnamed ``RecursionError`` (and code walking a parsed object recurses too). Every JSON a user
supplies (LISA annotations, predictions lines, run.json, manifests, metrics) is parsed through
:func:`loads_user_json`, which counts brackets *before* parsing and refuses, naming the file,
anything nested deeper than :data:`MAX_JSON_DEPTH`. Real inputs are a handful of levels deep.

A path given for reading may also be a FIFO without a writer (``open`` blocks forever), a device
that never ends (``/dev/zero``, ``/dev/urandom``) or a socket: :func:`require_regular_file` refuses
anything that is not a regular file before it is opened.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from reasonseg_x.errors import InvalidInputError

__all__ = ["MAX_JSON_DEPTH", "JSONTooDeepError", "check_json_depth", "loads_user_json", "require_regular_file",
           "require_file_or_folder", "special_file_kind"]

#: deepest nesting accepted in a user's JSON (LISA annotations: 4, run.json: 5, predictions: ~6)
MAX_JSON_DEPTH = 100

#: a JSON string (unrolled-loop form: linear time) or one bracket
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class JSONTooDeepError(InvalidInputError):
    """JSON nested deeper than the bound: refused before the recursive parser sees it."""


def check_json_depth(text: str, where: str | None, *, max_depth: int = MAX_JSON_DEPTH,
                     max_string_length: int | None = None,
                     error: type[InvalidInputError] = JSONTooDeepError) -> None:
    """Refuse ``text`` nested deeper than ``max_depth`` (brackets inside strings do not count).

    With ``max_string_length`` a longer JSON string is refused as well (one pass for both bounds).
    Linear time; free for text with fewer opening brackets than ``max_depth``.
    """
    if max_string_length is None and text.count("[") + text.count("{") <= max_depth:
        return
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token[0] == '"':
            if max_string_length is not None and len(token) - 2 > max_string_length:
                raise error(f"JSON string of {len(token) - 2} characters exceeds the limit of {max_string_length}",
                            where)
        elif token in "[{":
            depth += 1
            if depth > max_depth:
                raise error(f"JSON nested deeper than {max_depth} levels; no real file nests this deep "
                            "(a corrupt or hostile file?)", where)
        else:
            depth -= 1


def loads_user_json(text: str | bytes, where: str | None, *, max_depth: int = MAX_JSON_DEPTH, **loads: Any) -> Any:
    """``json.loads`` with the nesting bound; ``where`` names the file (and line) in errors.

    Syntax errors still raise ``ValueError`` (``json.JSONDecodeError``) for the caller to word;
    only the depth is this function's business.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    check_json_depth(text, where, max_depth=max_depth)
    try:
        return json.loads(text, **loads)
    except RecursionError:  # a lower recursion limit than the bound assumes
        raise JSONTooDeepError("JSON nested too deeply to parse", where) from None


def special_file_kind(mode: int) -> str | None:
    """What a non-regular, non-folder file is (``"a FIFO"``...), or None for a regular file or folder."""
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else "a special file"


def require_file_or_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` if it is a regular file or a folder (links followed); a special file is refused, unopened.

    A missing path passes: the caller says "not found" in its own words.
    """
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except OSError:
        return p
    kind = special_file_kind(mode)
    if kind is not None:
        raise InvalidInputError(f"{what} is {kind}, not a regular file: a pipe or device may never end (or block "
                                "forever); save the content to a file first", str(p))
    return p


def require_regular_file(path: str | os.PathLike[str], what: str) -> Path:
    """Like :func:`require_file_or_folder`, and a folder is refused too."""
    p = require_file_or_folder(path, what)
    if p.is_dir():
        raise InvalidInputError(f"{what} must be a file, but this is a folder", str(p))
    return p
