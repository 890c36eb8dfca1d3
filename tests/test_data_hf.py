"""Published HF schema: Hub-style parquet folders, plain files, save_to_disk folders, bad rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import _datahf_helpers as h
from reasonseg_x import masks
from reasonseg_x.data.hf import HFSource
from reasonseg_x.data.layout import detect_layout
from reasonseg_x.data.nested_masks import convert_mask_array
from reasonseg_x.errors import InvalidInputError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONSEG_X_CACHE", str(tmp_path / "cache"))


# --- nested bools -> RLE ------------------------------------------------------------------


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**31)), min_size=1, max_size=5),
       st.integers(0, 3))
def test_nested_bool_conversion_equals_masks_encode(shapes, start):
    rng_masks = [np.random.default_rng(seed).random((hh, ww)) > 0.5 for hh, ww, seed in shapes]
    arr = pa.array([m.tolist() for m in rng_masks], type=pa.list_(pa.list_(pa.bool_())))
    start = min(start, len(rng_masks) - 1)
    out = convert_mask_array(arr.slice(start))  # a sliced array exercises the offsets
    assert [(o.height, o.width, o.counts) for o in out] == [
        (m.shape[0], m.shape[1], masks.encode(m)["counts"]) for m in rng_masks[start:]]


def test_instance_masks_are_unioned_and_int_pixels_accepted():
    a, b = h.make_mask(1), h.make_mask(2)
    arr = pa.array([[a.tolist(), b.tolist()]], type=pa.list_(pa.list_(pa.list_(pa.bool_()))))
    assert convert_mask_array(arr)[0].counts == masks.encode(a | b)["counts"]
    ints = pa.array([(a * 255).astype(np.uint8).tolist()], type=pa.list_(pa.list_(pa.uint8())))
    assert convert_mask_array(ints)[0].counts == masks.encode(a)["counts"]


def test_ragged_and_null_masks_are_reported_not_crashing():
    arr = pa.array([[[True, False], [True]], None, [[True, None]]], type=pa.list_(pa.list_(pa.bool_())))
    errors = [o.error for o in convert_mask_array(arr)]
    assert "differ in length" in errors[0] and errors[1] == "mask is null" and "null pixels" in errors[2]


# --- layouts ------------------------------------------------------------------------------


def test_hub_folder_reads_splits_ids_masks_and_extra_columns(tmp_path):
    rows = h.make_rows(6, extra=True)
    h.write_hub_folder(tmp_path / "hub", {"test": rows, "val": h.make_rows(3, seed=10, extra=True)})
    src = h.open_hf(tmp_path / "hub")
    assert isinstance(src, HFSource) and src.splits() == ["test", "val"] and src.default_split() == "test"
    gts = list(src.ground_truth("test"))
    assert src.id_rule == "ann_id" and [g.id for g in gts] == [r["ann_id"] for r in rows]
    expected = h.expected_counts(rows)
    assert all(g.target["counts"] == expected[g.id] and (g.height, g.width) == (h.H, h.W) for g in gts)
    assert gts[0].groups == {"reasoning_type": "function_purpose"}
    sample = next(src.samples("test"))
    assert sample.query == "query number 0" and sample.meta["bbox"] == [1.0, 2.0, 3.0, 4.0]
    assert sample.image.open().size == (h.W, h.H) and "row 0" in sample.image.where


def test_plain_parquet_file_and_save_to_disk_give_the_same_ground_truth(tmp_path):
    import datasets

    rows = h.make_rows(5)
    h.dataset(rows).to_parquet(str(tmp_path / "plain.parquet"))
    h.dataset(rows).save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"train": h.dataset(rows), "test": h.dataset(rows[:2])}).save_to_disk(str(tmp_path / "dd"))
    plain = h.open_hf(tmp_path / "plain.parquet")
    disk = h.open_hf(tmp_path / "saved")
    assert plain.splits() == ["test"] and disk.splits() == ["test"]  # the reference's split naming
    assert plain.fingerprint() == disk.fingerprint()
    dd = h.open_hf(tmp_path / "dd")
    assert dd.splits() == ["train", "test"] and dd.num_samples("train") == 5 and dd.num_samples("test") == 2
    assert detect_layout(tmp_path / "dd").kind == "hf-arrow"


def test_ground_truth_never_reads_the_image_column(tmp_path, monkeypatch):
    from reasonseg_x.data import hf as hf_module

    h.write_hub_folder(tmp_path / "hub", {"test": h.make_rows(3)})
    seen: list[list[str]] = []
    real = hf_module.iter_batches

    def spy(path, columns, **kw):
        seen.append(list(columns))
        return real(path, columns, **kw)

    monkeypatch.setattr(hf_module, "iter_batches", spy)
    list(h.open_hf(tmp_path / "hub").ground_truth())
    assert seen and all("image" not in cols for cols in seen)


def test_duplicate_ann_id_falls_back_to_image_id(tmp_path):
    rows = h.make_rows(4)
    rows[2]["ann_id"] = rows[1]["ann_id"]
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    src = h.open_hf(tmp_path / "hub")
    assert [g.id for g in src.ground_truth()] == [r["image_id"] for r in rows] and src.id_rule == "image_id"
    from reasonseg_x.data.info import describe

    assert describe(src).id_rule == "image_id (ann_id not unique or not always set)"


def test_duplicates_in_every_id_column_name_both_rows(tmp_path):
    rows = h.make_rows(4)
    rows[3]["ann_id"], rows[3]["image_id"] = rows[0]["ann_id"], rows[0]["image_id"]
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    with pytest.raises(InvalidInputError, match=r"row 3.*duplicate ann_id 'ann000' \(first at .*row 0\)"):
        list(h.open_hf(tmp_path / "hub").ground_truth())
    src = h.open_hf(tmp_path / "hub", skip_invalid=True)
    assert len(list(src.ground_truth())) == 3 and len(src.skipped) == 1 and "row 3" in src.skipped[0].where


def test_mask_size_mismatch_names_the_row(tmp_path):
    rows = h.make_rows(3)
    rows[1]["img_height"] = h.H + 1
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    with pytest.raises(InvalidInputError, match=r"test-00000-of-00001.parquet:row 1: mask size 24x32 differs"):
        list(h.open_hf(tmp_path / "hub").ground_truth())
    src = h.open_hf(tmp_path / "hub", skip_invalid=True)
    assert src.num_samples() == 2 and src.skipped[0].where.endswith(":row 1")


def test_unknown_reasoning_label_errors_or_stays_open(tmp_path):
    rows = h.make_rows(3)
    rows[2]["reasoning_type"] = "telepathic"
    rows[1]["reasoning_type"] = "C/R"  # an alias resolves to the raw id
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    with pytest.raises(InvalidInputError, match=r"row 2: unknown reasoning_type label 'telepathic'"):
        list(h.open_hf(tmp_path / "hub").ground_truth())
    gts = list(h.open_hf(tmp_path / "hub", open_taxonomy=True).ground_truth())
    assert [g.groups["reasoning_type"] for g in gts] == ["function_purpose", "comparative_relational", "telepathic"]


def test_corrupt_image_bytes_name_the_row(tmp_path):
    rows = h.make_rows(3)
    rows[1]["image"] = {"bytes": b"\x89PNG\r\n\x1a\nnot really", "path": None}
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    assert h.open_hf(tmp_path / "hub").num_samples() == 3  # ground truth needs no pixels
    with pytest.raises(InvalidInputError, match=r":row 1: corrupt or unreadable image"):
        list(h.open_hf(tmp_path / "hub").samples())
    src = h.open_hf(tmp_path / "hub", skip_invalid=True)
    assert [s.id for s in src.samples()] == ["ann000", "ann002"] and len(src.skipped) == 1


def test_truncated_and_wrong_size_images_are_bad_rows_counted_once(tmp_path):
    rows = h.make_rows(4)
    rows[1]["image"] = {"bytes": h.png_bytes()[:-30], "path": None}  # header intact, IEND missing
    rows[3]["image"] = {"bytes": h.png_bytes(height=h.H + 2), "path": None}
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    with pytest.raises(InvalidInputError, match=r":row 1: truncated image"):
        list(h.open_hf(tmp_path / "hub").samples())
    src = h.open_hf(tmp_path / "hub", skip_invalid=True)
    for _ in range(2):
        assert [s.id for s in src.samples()] == ["ann000", "ann002"]
    assert [(s.where.rsplit(":", 1)[-1], s.reason.split(":")[0]) for s in src.skipped] == [
        ("row 1", "truncated image"), ("row 3", f"image is {h.H + 2}x{h.W} (h x w) but the row says {h.H}x{h.W}")]


def test_training_rows_use_id_problem_and_instance_union(tmp_path):
    import datasets

    a, b = h.make_mask(3), h.make_mask(4)
    feats = datasets.Features({"id": datasets.Value("string"), "problem": datasets.Value("string"),
                               "solution_mask": datasets.List(datasets.List(datasets.List(datasets.Value("bool")))),
                               "image": datasets.Image(), "img_height": datasets.Value("int64"),
                               "img_width": datasets.Value("int64")})
    ds = datasets.Dataset.from_list([{"id": "t0", "problem": "find it", "solution_mask": [a.tolist(), b.tolist()],
                                      "image": {"bytes": h.png_bytes(), "path": None}, "img_height": h.H,
                                      "img_width": h.W}], features=feats)
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "train"))
    src = h.open_hf(tmp_path / "train")
    (gt,) = list(src.ground_truth("train"))
    assert gt.id == "t0" and gt.target["counts"] == masks.encode(a | b)["counts"] and src.id_rule == "id"
    assert next(src.samples("train")).query == "find it"


def test_a_file_without_a_mask_column_is_rejected_clearly(tmp_path):
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "test.parquet")
    with pytest.raises(InvalidInputError, match="no nested-bool mask column"):
        list(h.open_hf(tmp_path / "test.parquet").ground_truth())


def test_truncated_parquet_names_the_file(tmp_path):
    h.write_hub_folder(tmp_path / "hub", {"test": h.make_rows(3)})
    path = tmp_path / "hub" / "data" / "test-00000-of-00001.parquet"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InvalidInputError, match="test-00000-of-00001.parquet"):
        list(h.open_hf(tmp_path / "hub").ground_truth())


@pytest.mark.parametrize("name, split", [
    ("test-00000-of-00002.parquet", "test"), ("val-00001-of-00002-8f3a.parquet", "val"),
    ("train.parquet", "train"), ("test_obj.parquet", "test_obj"), ("ReasonSegX_val.parquet", None),
    ("data-00000-of-00001.arrow", None),
])
def test_split_names_from_file_names(name, split, tmp_path):
    from reasonseg_x.data.layout import split_name_of

    assert split_name_of(tmp_path / name) == split


def test_save_to_disk_arrow_file_is_not_taken_for_a_split_named_data(tmp_path):
    h.dataset(h.make_rows(2)).save_to_disk(str(tmp_path / "saved"))
    assert list(detect_layout(tmp_path / "saved").files) == ["test"]


def test_card_configs_in_dict_form(tmp_path):
    from reasonseg_x.data.layout import read_card_configs

    (tmp_path / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n"
                                        "    validation: shards/v-*.parquet\n---\n")
    assert read_card_configs(tmp_path) == {"validation": ["shards/v-*.parquet"]}


def test_many_row_groups_and_tiny_decode_batches_keep_row_order(tmp_path, monkeypatch):
    from reasonseg_x.data import arrow_io

    monkeypatch.setattr(arrow_io, "_VALUES_PER_BATCH", 1)  # one row per decoded batch
    rows = h.make_rows(7)
    (tmp_path / "data").mkdir()
    h.dataset(rows).to_parquet(str(tmp_path / "data" / "test-00000-of-00001.parquet"), batch_size=2)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "data" / "test-00000-of-00001.parquet").metadata.num_row_groups == 4
    src = h.open_hf(tmp_path)
    expected = h.expected_counts(rows)
    assert [(g.id, g.target["counts"]) for g in src.ground_truth()] == list(expected.items())
    assert [s.id for s in src.samples()] == list(expected)
