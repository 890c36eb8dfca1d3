"""Defences for untrusted submission bundles: safe archive extraction and bounded JSON.

A leaderboard host scores files written by strangers. Everything here assumes the input is hostile:
archive members may point outside the target folder (``../x``, ``/etc/x``), be links or devices,
declare one size and stream another, or decompress a few KB into GBs; JSON may nest a million
levels deep or carry a 10 MB number. Every check fails with :class:`UnsafeBundleError` naming the
file and member, and nothing is ever written outside the target folder. No file of a bundle is
executed, imported or unpickled: only allow-listed text files are extracted at all.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import re
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO, Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.json_input import check_json_depth

__all__ = [
    "Limits",
    "DEFAULT_LIMITS",
    "UnsafeBundleError",
    "JSONSyntaxError",
    "ALLOWED_SUFFIXES",
    "archive_kind",
    "safe_extract",
    "check_bundle_dir",
    "safe_json_loads",
    "read_bounded",
    "text_problem",
    "name_problem",
]


class UnsafeBundleError(InvalidInputError):
    """A bundle (archive, folder or JSON inside it) that breaks a safety rule."""


class JSONSyntaxError(UnsafeBundleError):
    """Text that is not JSON at all (as opposed to JSON over a limit)."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds applied to one untrusted bundle.

    The defaults fit the ReasonSeg-X test split (773 predictions of ~1-2 KB RLE plus answer text)
    with two orders of magnitude to spare, and stay far below what would hurt a small host.
    """

    max_archive_bytes: int = 96 * 2**20
    max_members: int = 32
    max_member_bytes: int = 64 * 2**20
    max_total_bytes: int = 96 * 2**20
    #: extracted bytes / archive bytes, for the whole archive and each zip member (zeros reach ~1000;
    #: predictions JSONL compresses 3-20x). Archives under 1 MiB extracted are never refused for it.
    max_compression_ratio: float = 200.0
    max_path_depth: int = 4
    max_name_length: int = 255
    max_json_bytes: int = 1 * 2**20
    max_line_bytes: int = 8 * 2**20
    max_json_depth: int = 32
    max_string_length: int = 4 * 2**20
    max_number_digits: int = 40


DEFAULT_LIMITS = Limits()

#: The only file kinds a bundle may carry: plain text the host parses itself (never code, never pickles).
ALLOWED_SUFFIXES = (".json", ".jsonl", ".md", ".txt")

_CHUNK = 1 << 16
#: what a truncated or corrupt archive raises while being read
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


# --- text shown on the board ---------------------------------------------------------------

#: lone UTF-16 surrogates (not storable as UTF-8) and the bidi embedding / override / isolate controls
_BIDI = re.compile("[\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
#: letters drawn blank or nearly so that Unicode files as ordinary letters or marks (Hangul fillers,
#: the braille blank, the combining grapheme joiner, variation selectors)
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f") | frozenset(map(chr, range(0xFE00, 0xFE10)))
#: scripts whose letters pass for one another (Latin "o", Cyrillic "о", Greek "ο")
_LOOKALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def _invisible(char: str) -> bool:
    category = unicodedata.category(char)
    return (category in ("Cf", "Co", "Cn", "Zl", "Zp") or (category == "Zs" and char != " ")
            or char in _BLANK_LETTERS or 0xE0100 <= ord(char) <= 0xE01EF)


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed')}"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored or shown as written, or None: lone surrogates, bidirectional
    overrides (they reorder what follows) and invisible characters (zero-width space and joiners,
    word joiner, byte-order mark, soft hyphen, format and private-use characters, blanks other than
    the space), which make ``Ora\u200bcle`` show as "Oracle"."""
    if _BIDI.search(value):
        return "contains lone surrogates or bidirectional-override characters (they break storage or disguise a name)"
    for position, char in enumerate(value):
        if _invisible(char):
            return (f"contains an invisible character ({_describe(char)}, position {position}): it would show "
                    f"as {''.join(c for c in value if not _invisible(c))!r}")
    return None


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name on the board, or None: :func:`text_problem`, then lookalikes:
    a name must be written in plain characters (equal to its NFKC form: no full-width, ligature or
    superscript letters) and must not mix Latin, Cyrillic and Greek letters (``Оracle`` with a
    Cyrillic "О"). A name wholly in one script that resembles another is not detected."""
    problem = text_problem(value)
    if problem:
        return problem
    plain = unicodedata.normalize("NFKC", value)
    if plain != value:
        odd = next(c for c in value if unicodedata.normalize("NFKC", c) != c)
        return f"contains a lookalike character ({_describe(odd)}): write it as {plain!r}"
    scripts: dict[str, str] = {}
    for char in value:
        if char.isalpha():
            script = unicodedata.name(char, "").split(" ")[0]
            if script in _LOOKALIKE_SCRIPTS:
                scripts.setdefault(script, char)
    if len(scripts) > 1:
        mixed = ", ".join(f"{script.title()} {char!r}" for script, char in scripts.items())
        return f"mixes letters of scripts that look alike ({mixed}): write it in one script"
    return None


# --- archives --------------------------------------------------------------------------------


def archive_kind(path: str | os.PathLike[str]) -> str | None:
    """``"zip"``, ``"tar"``, ``"tar.gz"``, ``"tar.bz2"``, ``"tar.xz"`` by magic bytes, else ``None``."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if head.startswith(b"BZh"):
        return "tar.bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "tar.xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


class _BoundedReader(io.RawIOBase):
    """A read-only stream that raises before more than ``limit`` bytes have been read through it.

    Wrapped around the decompressor so that no tar header trick (a huge pax header, padding,
    skipped members) makes the host decompress more than the bundle's total budget.
    """

    def __init__(self, inner: IO[bytes], limit: int, where: str) -> None:
        self._inner, self._limit, self._where, self.count = inner, limit, where, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        if self.count + want > self._limit:
            want = self._limit - self.count + 1  # one byte over proves the stream is too long
        if want <= 0:
            raise UnsafeBundleError(f"archive decompresses to more than {self._limit} bytes (archive bomb?)",
                                    self._where)
        data = self._inner.read(want)
        self.count += len(data)
        if self.count > self._limit:
            raise UnsafeBundleError(f"archive decompresses to more than {self._limit} bytes (archive bomb?)",
                                    self._where)
        buffer[: len(data)] = data
        return len(data)


def _check_member_name(name: str, limits: Limits, where: str) -> PurePosixPath:
    """Return the member's relative path, or raise for anything that could escape the target."""
    if not name or "\x00" in name or len(name) > limits.max_name_length * limits.max_path_depth:
        raise UnsafeBundleError(f"member name {name[:80]!r} is empty, too long or contains NUL", where)
    if "\\" in name:
        raise UnsafeBundleError(f"member {name!r} uses backslashes (Windows path tricks are refused)", where)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeBundleError(f"member {name!r} has an absolute path", where)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeBundleError(f"member {name!r} climbs out of the bundle with '..'", where)
    if not parts:
        raise UnsafeBundleError(f"member name {name!r} names no file", where)
    if len(parts) > limits.max_path_depth:
        raise UnsafeBundleError(f"member {name!r} is nested deeper than {limits.max_path_depth} folders", where)
    if any(len(p) > limits.max_name_length for p in parts):
        raise UnsafeBundleError(f"member {name[:80]!r} has a path component longer than {limits.max_name_length}",
                                where)
    return PurePosixPath(*parts)


def _names_the_root(name: str) -> bool:
    """``.``, ``./`` or ``/``-free equivalents: the archive's own top folder (``tar -C dir .`` writes it)."""
    return bool(name) and "\\" not in name and "\x00" not in name and not name.startswith("/") \
        and all(p in ("", ".") for p in name.split("/"))


def _check_suffix(rel: PurePosixPath, where: str) -> None:
    if rel.suffix.lower() not in ALLOWED_SUFFIXES:
        raise UnsafeBundleError(
            f"member {str(rel)!r} is not an allowed file type ({', '.join(ALLOWED_SUFFIXES)}); "
            "bundles carry predictions and metadata only, never code, pickles or weights", where)


class _Writer:
    """Creates files and folders strictly below ``root``; refuses to follow or replace anything."""

    def __init__(self, root: Path, limits: Limits, where: str) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.limits = limits
        self.where = where
        self.total = 0
        self.files: list[Path] = []

    def _inside(self, path: Path) -> None:
        real = os.path.realpath(path)
        if real != self.real_root and not real.startswith(self.real_root + os.sep):
            raise UnsafeBundleError(f"member would be written outside the target folder: {path}", self.where)

    def mkdir(self, rel: PurePosixPath) -> Path:
        current = self.root
        for part in rel.parts:
            current = current / part
            if current.is_symlink():
                raise UnsafeBundleError(f"folder {str(rel)!r} goes through a link", self.where)
            if not current.exists():
                current.mkdir(mode=0o700)
            elif not current.is_dir():
                raise UnsafeBundleError(f"member {str(rel)!r} is both a file and a folder", self.where)
            self._inside(current)
        return current

    def write(self, rel: PurePosixPath, stream: IO[bytes], declared: int) -> Path:
        parent = self.mkdir(rel.parent) if rel.parent.parts else self.root
        target = parent / rel.name
        self._inside(target)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(target, flags, 0o600)
        except FileExistsError:
            raise UnsafeBundleError(f"member {str(rel)!r} appears twice in the archive", self.where) from None
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > declared or written > self.limits.max_member_bytes:
                        raise UnsafeBundleError(
                            f"member {str(rel)!r} streams more bytes than declared ({declared}) or allowed "
                            f"({self.limits.max_member_bytes})", self.where)
                    self.total += len(chunk)
                    if self.total > self.limits.max_total_bytes:
                        raise UnsafeBundleError(
                            f"archive contents exceed {self.limits.max_total_bytes} bytes in total (archive bomb?)",
                            self.where)
                    out.write(chunk)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        self.files.append(target)
        return target


def _check_declared(rel: PurePosixPath, size: int, running_total: int, limits: Limits, where: str) -> None:
    if size < 0 or size > limits.max_member_bytes:
        raise UnsafeBundleError(f"member {str(rel)!r} declares {size} bytes; the limit is {limits.max_member_bytes}",
                                where)
    if running_total + size > limits.max_total_bytes:
        raise UnsafeBundleError(f"archive members declare more than {limits.max_total_bytes} bytes in total "
                                "(archive bomb?)", where)


def _open_decompressed(path: Path, kind: str) -> IO[bytes]:
    if kind == "tar.gz":
        return gzip.open(path, "rb")
    if kind == "tar.bz2":
        return bz2.open(path, "rb")
    if kind == "tar.xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def _extract_tar(path: Path, kind: str, writer: _Writer, limits: Limits, where: str) -> None:
    # Headers and padding count against the budget too: allow one 512-byte header block plus one
    # block of padding per member on top of the data, and the two end-of-archive blocks.
    budget = limits.max_total_bytes + (limits.max_members + 2) * 1536 + 20 * 512
    with _open_decompressed(path, kind) as raw:
        bounded = io.BufferedReader(_BoundedReader(raw, budget, where), buffer_size=_CHUNK)
        try:
            archive = tarfile.open(fileobj=bounded, mode="r|")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise UnsafeBundleError(f"not a readable tar archive: {exc}", where) from None
        count = declared_total = 0
        try:
            for member in _iter_tar(archive, where):
                count += 1
                if count > limits.max_members:
                    raise UnsafeBundleError(f"archive has more than {limits.max_members} members", where)
                if member.isdir() and _names_the_root(member.name):
                    continue
                rel = _check_member_name(member.name, limits, where)
                if member.isdir():
                    writer.mkdir(rel)
                    continue
                if member.issym() or member.islnk():
                    raise UnsafeBundleError(f"member {member.name!r} is a link (to {member.linkname!r}); "
                                            "links are refused", where)
                if not member.isreg():
                    raise UnsafeBundleError(f"member {member.name!r} is a device, fifo or other special file", where)
                _check_suffix(rel, where)
                _check_declared(rel, member.size, declared_total, limits, where)
                declared_total += member.size
                stream = archive.extractfile(member)
                if stream is None:  # pragma: no cover - isreg() members always have data
                    raise UnsafeBundleError(f"member {member.name!r} has no data", where)
                writer.write(rel, stream, member.size)
        except _CORRUPT as exc:
            raise UnsafeBundleError(f"corrupt archive: {exc}", where) from None
        finally:
            archive.close()


def _iter_tar(archive: tarfile.TarFile, where: str) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = archive.next()
        except tarfile.ReadError as exc:
            raise UnsafeBundleError(f"corrupt tar header: {exc}", where) from None
        if member is None:
            return
        yield member


def _extract_zip(path: Path, writer: _Writer, limits: Limits, where: str) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafeBundleError(f"not a readable zip archive: {exc}", where) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_members:
            raise UnsafeBundleError(f"archive has {len(infos)} members; the limit is {limits.max_members}", where)
        declared_total = 0
        for info in infos:
            if info.is_dir() and _names_the_root(info.filename):
                continue
            rel = _check_member_name(info.filename, limits, where)
            # Unix modes live in the high 16 bits when the archive was made on Unix (create_system 3)
            mode = (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0
            if info.is_dir():
                writer.mkdir(rel)
                continue
            if stat.S_ISLNK(mode):
                raise UnsafeBundleError(f"member {info.filename!r} is a link; links are refused", where)
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                raise UnsafeBundleError(f"member {info.filename!r} is a device, fifo or other special file", where)
            if info.flag_bits & 0x1:
                raise UnsafeBundleError(f"member {info.filename!r} is encrypted", where)
            _check_suffix(rel, where)
            _check_declared(rel, info.file_size, declared_total, limits, where)
            declared_total += info.file_size
            if info.file_size > 1 << 20 and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1):
                raise UnsafeBundleError(
                    f"member {info.filename!r} compresses {info.file_size} bytes into {info.compress_size} "
                    f"(ratio over {limits.max_compression_ratio:g}: archive bomb?)", where)
            try:
                with archive.open(info) as stream:
                    writer.write(rel, stream, info.file_size)
            except (zipfile.BadZipFile, *_CORRUPT) as exc:
                raise UnsafeBundleError(f"corrupt member {info.filename!r}: {exc}", where) from None


def safe_extract(archive: str | os.PathLike[str], target: str | os.PathLike[str],
                 limits: Limits = DEFAULT_LIMITS) -> list[Path]:
    """Extract an untrusted tar (optionally gz/bz2/xz) or zip archive into the new folder ``target``.

    ``target`` must not exist or be empty. Refuses absolute paths, ``..``, links, devices, duplicate
    names, disallowed file types, too many members, and members or totals over the limits, both as
    declared in headers and as actually streamed, and archives that would expand more than
    ``limits.max_compression_ratio`` times. On refusal the partial extraction is removed.
    Returns the extracted files.
    """
    path = Path(archive)
    where = str(path)
    if not path.is_file():
        raise UnsafeBundleError("bundle archive not found or not a regular file", where)
    if path.stat().st_size > limits.max_archive_bytes:
        raise UnsafeBundleError(f"archive is {path.stat().st_size} bytes; the limit is {limits.max_archive_bytes}",
                                where)
    kind = archive_kind(path)
    if kind is None:
        raise UnsafeBundleError("not a tar, tar.gz, tar.bz2, tar.xz or zip archive", where)
    # the whole archive may not expand by more than the ratio limit: a 1 MB archive yields <= 200 MB
    size = path.stat().st_size
    ratio_cap = max(int(limits.max_compression_ratio * size), 1 << 20)
    if ratio_cap < limits.max_total_bytes:
        limits = replace(limits, max_total_bytes=ratio_cap, max_member_bytes=min(limits.max_member_bytes, ratio_cap))
    root = Path(target)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise UnsafeBundleError(f"extraction folder {root} is not empty", where)
    writer = _Writer(root, limits, where)
    try:
        if kind == "zip":
            _extract_zip(path, writer, limits, where)
        else:
            _extract_tar(path, kind, writer, limits, where)
    except BaseException:
        _remove_tree(root)
        raise
    return writer.files


def _remove_tree(root: Path) -> None:
    """Empty ``root`` without following links (only what the writer created can be in it)."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False, followlinks=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                os.unlink(full)
            else:
                os.rmdir(full)


def check_bundle_dir(folder: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> list[Path]:
    """Apply the archive rules to a bundle given as a folder: regular allow-listed files only, no links."""
    root = Path(folder)
    where = str(root)
    if root.is_symlink() or not root.is_dir():
        raise UnsafeBundleError("bundle folder not found (or is a link)", where)
    files: list[Path] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            rel = full.relative_to(root)
            _check_member_name(rel.as_posix(), limits, where)
            info = full.lstat()
            if stat.S_ISLNK(info.st_mode):
                raise UnsafeBundleError(f"{rel.as_posix()!r} is a link; links are refused", where)
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise UnsafeBundleError(f"{rel.as_posix()!r} is a device, fifo or other special file", where)
            _check_suffix(PurePosixPath(rel.as_posix()), where)
            _check_declared(PurePosixPath(rel.as_posix()), info.st_size, total, limits, where)
            total += info.st_size
            files.append(full)
            if len(files) > limits.max_members:
                raise UnsafeBundleError(f"bundle folder has more than {limits.max_members} files", where)
    return files


# --- JSON ------------------------------------------------------------------------------------

def _prescan(text: str, limits: Limits, where: str | None) -> None:
    """Bound nesting depth and string length *before* the recursive parser sees the text."""
    check_json_depth(text, where, max_depth=limits.max_json_depth, max_string_length=limits.max_string_length,
                     error=UnsafeBundleError)


def safe_json_loads(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS, max_bytes: int | None = None,
                    where: str | None = None) -> Any:
    """``json.loads`` for untrusted text: size, depth, string length and number length bounded first.

    NaN/Infinity and numbers with more than ``limits.max_number_digits`` characters are refused
    (Python would otherwise spend quadratic time on a million-digit integer).
    """
    cap = limits.max_json_bytes if max_bytes is None else max_bytes
    if len(data) > cap:
        raise UnsafeBundleError(f"JSON document of {len(data)} bytes exceeds the limit of {cap}", where)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONSyntaxError(f"JSON is not UTF-8: {exc}", where) from None
    else:
        text = data
    _prescan(text, limits, where)

    def number(kind: type) -> Any:
        def parse(token: str) -> Any:
            if len(token) > limits.max_number_digits:
                raise UnsafeBundleError(f"JSON number of {len(token)} characters exceeds the limit of "
                                        f"{limits.max_number_digits}", where)
            value = kind(token)
            if kind is float and value in (float("inf"), float("-inf")):
                raise UnsafeBundleError(f"JSON number {token[:20]} overflows", where)
            return value
        return parse

    def constant(token: str) -> Any:
        raise UnsafeBundleError(f"JSON constant {token} is not allowed", where)

    try:
        return json.loads(text, parse_int=number(int), parse_float=number(float), parse_constant=constant)
    except UnsafeBundleError:
        raise
    except (ValueError, RecursionError) as exc:
        raise JSONSyntaxError(f"invalid JSON: {exc}", where) from None


def read_bounded(path: str | os.PathLike[str], max_bytes: int, where: str | None = None) -> bytes:
    """Read a whole file, refusing (without reading it all) one larger than ``max_bytes``."""
    p = Path(path)
    info = p.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        raise UnsafeBundleError("not a regular file", where or str(p))
    with p.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnsafeBundleError(f"file exceeds the limit of {max_bytes} bytes", where or str(p))
    return data
