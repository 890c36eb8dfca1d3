"""Attacks on the host: hostile archives and JSON are refused, nothing lands outside the target."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from _leaderboard_helpers import file_member, tar_bytes, tree_listing, zip_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonseg_x.leaderboard.safety import (
    JSONSyntaxError,
    Limits,
    UnsafeBundleError,
    archive_kind,
    check_bundle_dir,
    safe_extract,
    safe_json_loads,
)

SMALL = Limits(max_member_bytes=64 * 1024, max_total_bytes=128 * 1024, max_members=8, max_archive_bytes=1 << 20)


def _extract_refused(tmp_path: Path, archive: bytes, match: str, *, limits: Limits = SMALL,
                     suffix: str = ".tar.gz") -> None:
    """Extract into tmp/box/target; assert refusal and that tmp/box holds only the archive afterwards."""
    box = tmp_path / "box"
    box.mkdir()
    src = box / f"bundle{suffix}"
    src.write_bytes(archive)
    before = tree_listing(tmp_path)
    with pytest.raises(UnsafeBundleError, match=match):
        safe_extract(src, box / "target", limits)
    after = [p for p in tree_listing(tmp_path) if p != "box/target"]
    assert after == before, "something was written outside (or left inside) the target"
    assert not (box / "target").exists() or not any((box / "target").iterdir())


# --- path tricks ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil.json", "a/../../evil.json", "./../evil.json"])
def test_tar_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    archive = tar_bytes([file_member("submission.json", b"{}"), file_member(name, b"{}")])
    _extract_refused(tmp_path, archive, "climbs out")
    assert not (tmp_path / "evil.json").exists()


def test_tar_absolute_path_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "abs.json"
    archive = tar_bytes([file_member(str(target), b"{}")])
    _extract_refused(tmp_path, archive, "absolute path")
    assert not target.exists()


@pytest.mark.parametrize("name", ["..\\evil.json", "C:/evil.json", "a\x00b.json"])
def test_windows_and_nul_names_are_refused(tmp_path: Path, name: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"{}")
    # zipfile itself cuts a name at NUL ('a'), which is then refused as a file type
    _extract_refused(tmp_path, buf.getvalue(), "backslash|absolute|NUL|not an allowed", suffix=".zip")


def test_zip_path_traversal_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("submission.json", b"{}")
        zf.writestr("../../evil.json", b"{}")
    _extract_refused(tmp_path, buf.getvalue(), "climbs out", suffix=".zip")


# --- links and special files -----------------------------------------------------------------


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_tar_links_are_refused(tmp_path: Path, kind: bytes) -> None:
    link = tarfile.TarInfo("predictions.jsonl")
    link.type, link.linkname = kind, "/etc/passwd"
    archive = tar_bytes([file_member("submission.json", b"{}"), (link, None)])
    _extract_refused(tmp_path, archive, "link")


def test_link_then_write_through_it_is_refused(tmp_path: Path) -> None:
    """The classic two-step: a symlink to outside, then a file written 'inside' the link."""
    link = tarfile.TarInfo("sub")
    link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
    archive = tar_bytes([(link, None), file_member("sub/evil.json", b"{}")])
    _extract_refused(tmp_path, archive, "link")
    assert not (tmp_path / "evil.json").exists()


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tar_devices_and_fifos_are_refused(tmp_path: Path, kind: bytes) -> None:
    dev = tarfile.TarInfo("dev.json")
    dev.type, dev.devmajor, dev.devminor = kind, 1, 3
    _extract_refused(tmp_path, tar_bytes([(dev, None)]), "device")


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link.json")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    _extract_refused(tmp_path, buf.getvalue(), "link", suffix=".zip")


def test_duplicate_member_is_refused(tmp_path: Path) -> None:
    archive = tar_bytes([file_member("submission.json", b"{}"), file_member("submission.json", b"[]")])
    _extract_refused(tmp_path, archive, "appears twice")


def test_folder_bundle_with_symlink_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "submission.json").write_text("{}")
    (bundle / "predictions.jsonl").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeBundleError, match="link"):
        check_bundle_dir(bundle)


# --- code, pickles and other file types ------------------------------------------------------


class _Trap:
    """Unpickling this creates a marker folder: proof that a pickle was loaded."""

    marker = ""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("name", ["model.pkl", "weights.pt", "hook.py", "run.sh", "data.npy", "predictions"])
def test_disallowed_file_types_are_refused(tmp_path: Path, name: str) -> None:
    import pickle

    trap = _Trap()
    trap.marker = str(tmp_path / "PICKLE_WAS_LOADED")
    archive = tar_bytes([file_member("submission.json", b"{}"), file_member(name, pickle.dumps(trap))])
    _extract_refused(tmp_path, archive, "not an allowed file type")
    assert not (tmp_path / "PICKLE_WAS_LOADED").exists()


def test_folder_bundle_with_pickle_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "submission.json").write_text("{}")
    (bundle / "extra.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(UnsafeBundleError, match="not an allowed file type"):
        check_bundle_dir(bundle)


# --- bombs and sizes -------------------------------------------------------------------------


def test_too_many_members_is_refused(tmp_path: Path) -> None:
    archive = tar_bytes([file_member(f"f{i}.txt", b"x") for i in range(SMALL.max_members + 1)])
    _extract_refused(tmp_path, archive, "more than 8 members")


def test_zip_with_too_many_members_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(SMALL.max_members + 1):
            zf.writestr(f"f{i}.txt", b"x")
    _extract_refused(tmp_path, buf.getvalue(), "members", suffix=".zip")


def test_huge_declared_size_is_refused_before_reading(tmp_path: Path) -> None:
    """A header declaring 16 GiB (no data follows): refused on the declaration alone."""
    info = tarfile.TarInfo("predictions.jsonl")
    info.size = 16 * 2**30
    raw = info.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 4096
    _extract_refused(tmp_path, gzip.compress(raw), "declares")


def test_highly_compressed_tar_member_is_refused(tmp_path: Path) -> None:
    """4 MiB of zeros gzip to ~4 KB: the declared size is over the member limit."""
    archive = tar_bytes([file_member("predictions.jsonl", b"\0" * (4 << 20))])
    assert len(archive) < 64 * 1024
    _extract_refused(tmp_path, archive, "declares")


def test_tar_expanding_beyond_the_ratio_is_refused(tmp_path: Path) -> None:
    """Within the size limits, but 4 MiB out of a ~4 KB archive: refused by the expansion ratio."""
    archive = tar_bytes([file_member("predictions.jsonl", b"\0" * (4 << 20))])
    limits = Limits(max_member_bytes=16 << 20, max_total_bytes=16 << 20)
    _extract_refused(tmp_path, archive, "declares", limits=limits)


def test_total_size_over_limit_is_refused(tmp_path: Path) -> None:
    chunk = b"0" * (60 * 1024)
    archive = tar_bytes([file_member(f"f{i}.txt", chunk) for i in range(3)])
    _extract_refused(tmp_path, archive, "in total|decompresses to more than")


def test_zip_compression_ratio_bomb_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("predictions.jsonl", b"\0" * (2 << 20))
    limits = Limits(max_member_bytes=8 << 20, max_total_bytes=8 << 20)
    _extract_refused(tmp_path, buf.getvalue(), "ratio", limits=limits, suffix=".zip")


def test_zip_lying_about_its_size_is_refused(tmp_path: Path) -> None:
    """The central directory declares 10 bytes; the member streams 50 KB: caught while streaming."""
    buf = io.BytesIO()
    payload = b"A" * 50_000
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("predictions.jsonl", payload)
    data = bytearray(buf.getvalue())
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = (10).to_bytes(4, "little")  # uncompressed size in the central directory
    _extract_refused(tmp_path, bytes(data), "corrupt|more bytes", suffix=".zip")


def test_pax_header_bomb_is_bounded(tmp_path: Path) -> None:
    """A 1 MB pax header (tarfile would read it whole into memory): the decompression budget stops it."""
    info = tarfile.TarInfo("submission.json")
    info.pax_headers = {"comment": "x" * (1 << 20)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        info.size = 2
        archive.addfile(info, io.BytesIO(b"{}"))
    _extract_refused(tmp_path, buf.getvalue(), "decompresses to more than")


def test_archive_file_over_limit_is_refused(tmp_path: Path) -> None:
    limits = Limits(max_archive_bytes=1000)
    archive = tar_bytes([file_member("a.txt", bytes(range(256)) * 20)], compression="")
    _extract_refused(tmp_path, archive, "the limit is 1000", limits=limits, suffix=".tar")


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    _extract_refused(tmp_path, b"print('hi')\n" * 10, "not a tar")


def test_truncated_archive_is_refused(tmp_path: Path) -> None:
    good = tar_bytes([file_member("submission.json", bytes(range(256)) * 100)])
    _extract_refused(tmp_path, good[: len(good) // 2], "corrupt|not a readable")


def test_nested_too_deep_is_refused(tmp_path: Path) -> None:
    archive = tar_bytes([file_member("/".join(["d"] * 10) + "/x.json", b"{}")])
    _extract_refused(tmp_path, archive, "nested deeper")


def test_good_archives_extract(tmp_path: Path) -> None:
    for kind, mode in (("tar.gz", "w:gz"), ("tar.bz2", "w:bz2"), ("tar.xz", "w:xz"), ("tar", "w")):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=mode) as archive:
            for name, data in (("sub/submission.json", b"{}"), ("sub/predictions.jsonl", b"")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        src = tmp_path / f"b.{kind}"
        src.write_bytes(buf.getvalue())
        assert archive_kind(src) == kind
        files = safe_extract(src, tmp_path / f"out-{kind}", SMALL)
        assert sorted(p.name for p in files) == ["predictions.jsonl", "submission.json"]
    (tmp_path / "b.zip").write_bytes(zip_bytes([("submission.json", b"{}")], zipfile.ZIP_DEFLATED))
    assert [p.name for p in safe_extract(tmp_path / "b.zip", tmp_path / "out-zip", SMALL)] == ["submission.json"]


def test_archives_made_with_dot_extract(tmp_path: Path) -> None:
    """`tar -czf b.tgz -C bundle .` writes a './' folder entry and './'-prefixed names: accepted."""
    top = tarfile.TarInfo(".")
    top.type = tarfile.DIRTYPE
    archive = tar_bytes([(top, None), file_member("./submission.json", b"{}"), file_member("./p.jsonl", b"")])
    (tmp_path / "dot.tgz").write_bytes(archive)
    files = safe_extract(tmp_path / "dot.tgz", tmp_path / "out", SMALL)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in files) == ["p.jsonl", "submission.json"]
    (tmp_path / "dot.zip").write_bytes(zip_bytes([(zipfile.ZipInfo("./"), b""), ("./submission.json", b"{}")]))
    assert [p.name for p in safe_extract(tmp_path / "dot.zip", tmp_path / "out-zip", SMALL)] == ["submission.json"]


def test_dot_folder_entry_does_not_open_a_way_out(tmp_path: Path) -> None:
    top = tarfile.TarInfo("./")
    top.type = tarfile.DIRTYPE
    _extract_refused(tmp_path, tar_bytes([(top, None), file_member("./../evil.json", b"{}")]), "climbs out")


def test_target_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "keep.txt").write_text("mine")
    (tmp_path / "a.tar.gz").write_bytes(tar_bytes([file_member("x.json", b"{}")]))
    with pytest.raises(UnsafeBundleError, match="not empty"):
        safe_extract(tmp_path / "a.tar.gz", tmp_path / "t")
    assert (tmp_path / "t" / "keep.txt").read_text() == "mine"


# --- JSON ------------------------------------------------------------------------------------


def test_deeply_nested_json_is_refused_before_parsing() -> None:
    deep = "[" * 200_000 + "]" * 200_000
    with pytest.raises(UnsafeBundleError, match="nested deeper"):
        safe_json_loads(deep, max_bytes=10**6)
    brackets_in_strings = json.dumps({"a": "[" * 1000})
    assert safe_json_loads(brackets_in_strings) == {"a": "[" * 1000}


def test_huge_numbers_and_strings_are_refused() -> None:
    with pytest.raises(UnsafeBundleError, match="number of"):
        safe_json_loads('{"n": ' + "9" * 100_000 + "}")
    with pytest.raises(UnsafeBundleError, match="number of"):
        safe_json_loads('{"x": 1.' + "5" * 1000 + "}")
    with pytest.raises(UnsafeBundleError, match="overflows"):
        safe_json_loads('{"x": 1e999}')
    with pytest.raises(UnsafeBundleError, match="not allowed"):
        safe_json_loads('{"x": NaN}')
    with pytest.raises(UnsafeBundleError, match="JSON string"):
        safe_json_loads(json.dumps({"s": "x" * 5000}), limits=Limits(max_string_length=4096))
    with pytest.raises(UnsafeBundleError, match="exceeds the limit"):
        safe_json_loads(b"[" + b"1," * 600_000 + b"1]")
    with pytest.raises(JSONSyntaxError):
        safe_json_loads(b'{"a": ')
    with pytest.raises(JSONSyntaxError, match="UTF-8"):
        safe_json_loads(b'"\xff"')


_json = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False,
                     allow_infinity=False) | st.text(max_size=20),
                     lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                          max_size=4), max_leaves=20)


@settings(max_examples=80, deadline=None)
@given(_json)
def test_safe_json_agrees_with_json_on_ordinary_documents(doc: object) -> None:
    text = json.dumps(doc)
    assert safe_json_loads(text) == json.loads(text)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_safe_json_never_crashes_on_garbage(text: str) -> None:
    try:
        safe_json_loads(text)
    except UnsafeBundleError:
        pass


# --- properties ------------------------------------------------------------------------------

_name_parts = st.sampled_from(["a", "b.json", ".", "..", "", "/", "\\", "C:", "x\x00", "~", "..."])


@settings(max_examples=150, deadline=None)
@given(st.lists(_name_parts, min_size=1, max_size=8).map("/".join))
def test_accepted_member_names_always_stay_inside(name: str) -> None:
    """Whatever a member is called, an accepted name resolves below the target folder."""
    import os

    from reasonseg_x.leaderboard.safety import _check_member_name

    root = "/srv/extract/target"
    try:
        rel = _check_member_name(name, Limits(max_path_depth=8), "t")
    except UnsafeBundleError:
        return
    full = os.path.normpath(os.path.join(root, str(rel)))
    assert full.startswith(root + "/") and ".." not in rel.parts


def test_leaderboard_imports_stay_light() -> None:
    """The host and CLI modules import no torch, pandas, datasets or huggingface_hub at import time."""
    import subprocess
    import sys

    code = ("import sys, reasonseg_x.cli.leaderboard, reasonseg_x.leaderboard.host, reasonseg_x.leaderboard.site, "
            "reasonseg_x.leaderboard.push; print(sorted(m for m in ('torch', 'pandas', 'datasets', "
            "'huggingface_hub', 'matplotlib', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
