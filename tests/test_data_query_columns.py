"""Query text that is missing or unreadable is an error naming the file and column, never a silent
``""`` query or the Python repr of bytes (``"b'caf\\xe9...'"``); under ``--skip-invalid`` a counted row."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import _datahf_helpers as h
from reasonseg_x.cli import app
from reasonseg_x.data.compact import write_compact
from reasonseg_x.data.resolve import open_local
from reasonseg_x.data.source import query_texts
from reasonseg_x.errors import InvalidInputError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONSEG_X_CACHE", str(tmp_path / "cache"))


def _hub_with_text(tmp_path, text_column):
    """A published-schema folder whose ``text`` column is replaced (None: dropped)."""
    hub = h.write_hub_folder(tmp_path / "hub", {"test": h.make_rows(4)})
    path = hub / "data" / "test-00000-of-00001.parquet"
    table = pq.read_table(path)
    index = table.schema.get_field_index("text")
    table = table.remove_column(index) if text_column is None else table.set_column(index, "text", text_column)
    pq.write_table(table, path)
    return hub, path


def test_helper_decodes_utf8_bytes_and_refuses_the_rest():
    assert query_texts(b"caf\xc3\xa9", "text", "f:row 0") == ("café",)
    assert query_texts(["a", b"b", None], "text", "f:row 0") == ("a", "b")
    with pytest.raises(InvalidInputError, match=r"f:row 0: column 'text' holds bytes that are not UTF-8"):
        query_texts(b"caf\xe9", "text", "f:row 0")
    for empty in (None, "", "  ", [], [None]):
        with pytest.raises(InvalidInputError, match="holds no query text"):
            query_texts(empty, "text", "f:row 0")
    with pytest.raises(InvalidInputError, match="holds a int"):
        query_texts(7, "text", "f:row 0")


def test_a_parquet_without_a_text_column_is_refused_naming_file_and_columns(tmp_path):
    hub, path = _hub_with_text(tmp_path, None)
    with pytest.raises(InvalidInputError) as caught:
        list(open_local(hub).samples("test"))
    assert f"{path}:row 0" in str(caught.value) and "no query column (text, problem" in str(caught.value)
    lenient = open_local(hub, skip_invalid=True)
    assert list(lenient.samples("test")) == [] and len(lenient.skipped) == 4


def test_a_binary_text_column_is_decoded_not_repr(tmp_path):
    hub, _ = _hub_with_text(tmp_path, pa.array([f"caf\u00e9 {i}".encode() for i in range(4)], type=pa.binary()))
    queries = [s.query for s in open_local(hub).samples("test")]
    assert queries == [f"caf\u00e9 {i}" for i in range(4)]


def test_undecodable_text_names_the_row_and_column_or_is_counted(tmp_path):
    values = [b"fine", b"caf\xe9", b"also fine", b"ok"]
    hub, path = _hub_with_text(tmp_path, pa.array(values, type=pa.binary()))
    with pytest.raises(InvalidInputError, match=rf"{path}:row 1: column 'text' holds bytes that are not UTF-8"):
        list(open_local(hub).samples("test"))
    lenient = open_local(hub, skip_invalid=True)
    assert [s.query for s in lenient.samples("test")] == ["fine", "also fine", "ok"]
    assert [row.where for row in lenient.skipped] == [f"{path}:row 1"]


def test_eval_stops_on_a_missing_text_column_with_one_line(tmp_path):
    hub, path = _hub_with_text(tmp_path, None)
    result = CliRunner().invoke(app, ["eval", "-m", "oracle", "-d", str(hub), "-o", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert str(path) in result.output and "no query column" in result.output


def _compact_without(tmp_path, drop: tuple[str, ...], replace: dict | None = None):
    hub = h.write_hub_folder(tmp_path / "hub", {"test": h.make_rows(3)})
    write_compact({"test": open_local(hub).samples("test")}, tmp_path / "out")
    path = tmp_path / "out" / "data" / "test-00000-of-00001.parquet"
    table = pq.read_table(path)
    metadata = table.schema.metadata  # the reasonseg_x marker
    for name in drop:
        table = table.remove_column(table.schema.get_field_index(name))
    for name, column in (replace or {}).items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return tmp_path / "out", path


def test_a_compact_shard_without_query_columns_is_refused(tmp_path):
    out, path = _compact_without(tmp_path, ("text", "queries"))
    with pytest.raises(InvalidInputError, match=rf"{path}:row 0: the shard has no 'text' or 'queries' column"):
        list(open_local(out).samples("test"))


def test_a_compact_shard_with_binary_text_is_decoded_or_named(tmp_path):
    out, path = _compact_without(tmp_path, ("queries",),
                                 {"text": pa.array([b"caf\xc3\xa9", b"caf\xe9", b"x"], type=pa.binary())})
    with pytest.raises(InvalidInputError, match=rf"{path}:row 1: column 'text' holds bytes that are not UTF-8"):
        list(open_local(out).samples("test"))
    lenient = open_local(out, skip_invalid=True)
    assert [s.query for s in lenient.samples("test")] == ["caf\u00e9", "x"]
