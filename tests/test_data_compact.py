"""Compact export: Hub-ready layout, exact round trip, datasets.load_dataset offline."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import _datahf_helpers as h
from reasonseg_x.data.compact import CompactSource, write_compact
from reasonseg_x.data.resolve import open_local
from reasonseg_x.errors import InvalidInputError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONSEG_X_CACHE", str(tmp_path / "cache"))


@pytest.fixture()
def hub(tmp_path):
    return h.write_hub_folder(tmp_path / "hub", {"test": h.make_rows(7, extra=True), "val": h.make_rows(3, seed=20)})


def test_round_trip_keeps_every_number(tmp_path, hub):
    src = open_local(hub)
    counts = write_compact({s: src.samples(s) for s in src.splits()}, tmp_path / "out", shard_rows=3, row_group_rows=2)
    assert counts == {"test": 7, "val": 3}
    names = sorted(p.name for p in (tmp_path / "out" / "data").iterdir())
    assert names == ["test-00000-of-00003.parquet", "test-00001-of-00003.parquet", "test-00002-of-00003.parquet",
                     "val-00000-of-00001.parquet"]
    back = open_local(tmp_path / "out")
    assert isinstance(back, CompactSource) and back.splits() == ["test", "val"]
    for split in ("test", "val"):
        assert back.fingerprint(split) == src.fingerprint(split)
    a, b = next(src.samples()), next(back.samples())
    assert (a.id, a.query, a.queries, a.image.read_bytes()) == (b.id, b.query, b.queries, b.image.read_bytes())
    assert b.meta["bbox"] == [1.0, 2.0, 3.0, 4.0]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "configs:" in card and "path: data/test-*" in card and "num_examples: 7" in card
    assert "2603.14382" in card and "class_label" in card


def test_datasets_load_dataset_reads_it_offline_with_types(tmp_path, hub):
    src = open_local(hub)
    write_compact({s: src.samples(s) for s in src.splits()}, tmp_path / "out")
    code = textwrap.dedent(f"""
        import datasets
        dd = datasets.load_dataset({str(tmp_path / 'out')!r}, cache_dir={str(tmp_path / 'hfc')!r})
        f = dd["test"].features
        assert isinstance(f["image"], datasets.Image), f
        assert isinstance(f["reasoning_type"], datasets.ClassLabel) and f["reasoning_type"].names[0] == "function_purpose"
        assert isinstance(f["query_kind"], datasets.ClassLabel)
        assert set(f["target"]) == {{"size", "counts"}}
        row = dd["test"][0]
        assert row["target"]["size"] == [24, 32] and row["image"].size == (32, 24)
        print(dd["test"].num_rows, dd["val"].num_rows)
    """)
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["7", "3"]


def test_existing_shards_are_not_mixed_in(tmp_path, hub):
    src = open_local(hub)
    write_compact({"test": src.samples("test")}, tmp_path / "out", shard_rows=2)
    with pytest.raises(InvalidInputError, match="already holds"):
        write_compact({"test": src.samples("test")}, tmp_path / "out")
    write_compact({"test": src.samples("test")}, tmp_path / "out", overwrite=True)
    assert [p.name for p in (tmp_path / "out" / "data").iterdir()] == ["test-00000-of-00001.parquet"]


def test_open_taxonomy_labels_are_written_as_strings(tmp_path):
    rows = h.make_rows(3)
    rows[0]["reasoning_type"] = "temporal"
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    src = open_local(tmp_path / "hub", open_taxonomy=True)
    with pytest.raises(InvalidInputError, match="temporal"):
        write_compact({"test": src.samples()}, tmp_path / "strict")
    write_compact({"test": src.samples()}, tmp_path / "open", open_taxonomy=True)
    with pytest.raises(InvalidInputError, match="unknown reasoning_type label 'temporal'"):
        list(open_local(tmp_path / "open").ground_truth())
    back = open_local(tmp_path / "open", open_taxonomy=True)
    assert back.fingerprint() == src.fingerprint()


def test_bad_rle_in_a_compact_shard_names_the_row(tmp_path, hub):
    import pyarrow.parquet as pq

    src = open_local(hub)
    write_compact({"test": src.samples("test")}, tmp_path / "out")
    path = tmp_path / "out" / "data" / "test-00000-of-00001.parquet"
    table = pq.read_table(path)
    targets = table.column("target").to_pylist()
    targets[2] = {"size": [24, 32], "counts": "!!"}
    table = table.set_column(table.schema.get_field_index("target"), "target",
                             __import__("pyarrow").array(targets, type=table.schema.field("target").type))
    pq.write_table(table, path)
    with pytest.raises(InvalidInputError, match=r"test-00000-of-00001.parquet:row 2"):
        list(open_local(tmp_path / "out").ground_truth())
    lenient = open_local(tmp_path / "out", skip_invalid=True)
    assert lenient.num_samples() == 6 and len(lenient.skipped) == 1


def test_truncated_image_in_a_compact_shard_names_the_row_once(tmp_path, hub):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_compact({"test": open_local(hub).samples("test")}, tmp_path / "out")
    path = tmp_path / "out" / "data" / "test-00000-of-00001.parquet"
    table = pq.read_table(path)
    images = table.column("image").to_pylist()
    images[4] = {"bytes": images[4]["bytes"][:-30], "path": None}
    table = table.set_column(table.schema.get_field_index("image"), "image",
                             pa.array(images, type=table.schema.field("image").type))
    pq.write_table(table, path)
    with pytest.raises(InvalidInputError, match=r"test-00000-of-00001.parquet:row 4: truncated image"):
        list(open_local(tmp_path / "out").samples())
    lenient = open_local(tmp_path / "out", skip_invalid=True)
    for _ in range(2):
        assert len(list(lenient.samples())) == 6
    assert [s.where.rsplit(":", 1)[1] for s in lenient.skipped] == ["row 4"]


def test_a_failed_export_leaves_no_partial_shards(tmp_path, hub):
    src = open_local(hub)

    def broken():
        for i, sample in enumerate(src.samples("test")):
            if i == 3:
                raise InvalidInputError("boom", "somewhere:row 3")
            yield sample

    with pytest.raises(InvalidInputError, match="boom"):
        write_compact({"test": broken()}, tmp_path / "out", shard_rows=2, row_group_rows=1)
    assert not (tmp_path / "out").exists()  # the folders it created are gone too
    (tmp_path / "kept").mkdir()
    with pytest.raises(InvalidInputError, match="boom"):
        write_compact({"test": broken()}, tmp_path / "kept", shard_rows=2, row_group_rows=1)
    assert (tmp_path / "kept").is_dir() and list((tmp_path / "kept").iterdir()) == []


def test_an_existing_file_as_out_is_a_clear_error(tmp_path, hub):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidInputError, match=r"afile: exists and is not a folder"):
        write_compact({"test": open_local(hub).samples("test")}, tmp_path / "afile")
    with pytest.raises(InvalidInputError, match=r"afile/sub/data: cannot create the output folder"):
        write_compact({"test": open_local(hub).samples("test")}, tmp_path / "afile" / "sub")


def test_duplicate_ids_are_refused_by_the_writer(tmp_path, hub):
    sample = next(open_local(hub).samples("test"))
    with pytest.raises(InvalidInputError, match="duplicate sample id 'ann000'"):
        write_compact({"test": [sample, sample]}, tmp_path / "out")
