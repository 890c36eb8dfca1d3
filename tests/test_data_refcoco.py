"""RefCOCO family and other published schema variants, on tiny fixtures in each repo's exact schema.

- VisionReasoner / Seg-Zero evaluation sets (``Ricky06662/refcoco_val`` ...): the published
  evaluation schema, ``image_id``/``ann_id`` as integers, a ``bbox`` column;
- lmms-lab's ``RefCOCO`` parquet: ``question_id``, ``answer`` (several expressions), COCO polygon;
- MMR's test sets: ``image_id`` int64 and ``ann_id`` a list of ints.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import _datahf_helpers as h
from reasonseg_x import masks
from reasonseg_x.data.resolve import open_local, open_source
from reasonseg_x.errors import InvalidInputError


def _png(height: int, width: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _image_type() -> pa.DataType:
    return pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def write_published(folder: Path, split: str, *, ann_ids: list, image_ids: list, ann_type: pa.DataType,
                    image_type: pa.DataType) -> Path:
    """Evaluation rows in the published schema with the id column types of a given repo."""
    n = len(ann_ids)
    table = pa.table({
        "image": pa.array([{"bytes": h.png_bytes(seed=i), "path": None} for i in range(n)], _image_type()),
        "text": pa.array([f"the thing number {i}" for i in range(n)]),
        "mask": pa.array([h.make_mask(i).tolist() for i in range(n)], pa.list_(pa.list_(pa.bool_()))),
        "image_id": pa.array(image_ids, image_type),
        "ann_id": pa.array(ann_ids, ann_type),
        "img_height": pa.array([h.H] * n, pa.int32()),  # int32 and an int32 bbox: the refcoco_testA card
        "img_width": pa.array([h.W] * n, pa.int32()),
        "bbox": pa.array([[1, 2, 9, 7]] * n, pa.list_(pa.int32())),
    })
    (folder / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "data" / f"{split}-00000-of-00001.parquet")
    return folder


def write_lmms(folder: Path, split: str, rows: list[dict]) -> Path:
    """lmms-lab RefCOCO rows: question_id, image, question, answer (list), segmentation (flat polygon), bbox..."""
    table = pa.table({
        "question_id": pa.array([r["question_id"] for r in rows], pa.string()),
        "image": pa.array([{"bytes": _png(r["h"], r["w"]), "path": None} for r in rows], _image_type()),
        "question": pa.array(["Please carefully observe the area circled in the image and come up with a caption "
                              "for the area."] * len(rows)),
        "answer": pa.array([r["answer"] for r in rows], pa.list_(pa.string())),
        "segmentation": pa.array([r["segmentation"] for r in rows], pa.list_(pa.float32())),
        "bbox": pa.array([[0.0, 0.0, 1.0, 1.0]] * len(rows), pa.list_(pa.float32())),
        "iscrowd": pa.array([0] * len(rows), pa.int8()),
        "file_name": pa.array([f"COCO_train2014_{i:012d}.jpg" for i in range(len(rows))]),
    })
    (folder / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "data" / f"{split}-00000-of-00001.parquet")
    return folder


LMMS_ROWS = [
    {"question_id": "1001", "h": 20, "w": 30, "answer": ["man on the left", "guy in red"],
     "segmentation": [2.0, 3.0, 12.0, 3.0, 12.0, 15.0, 2.0, 15.0]},
    {"question_id": "1002", "h": 20, "w": 30, "answer": ["right dog"],
     "segmentation": [15.5, 4.0, 28.0, 4.0, 22.0, 18.0]},
]


def test_mmr_int_image_id_and_list_ann_id_become_readable_ids(tmp_path):
    write_published(tmp_path / "mmr", "test", ann_ids=[[50, 60], [7], [8, 9, 10]], image_ids=[1, 2, 3],
                    ann_type=pa.list_(pa.int64()), image_type=pa.int64())
    source = open_local(tmp_path / "mmr")
    assert [g.id for g in source.ground_truth()] == ["50_60", "7", "8_9_10"]


def test_int_image_ids_alone_become_digits(tmp_path):
    write_published(tmp_path / "x", "test", ann_ids=[None, None, None], image_ids=[11, 12, 13],
                    ann_type=pa.int64(), image_type=pa.int64())
    assert [g.id for g in open_local(tmp_path / "x").ground_truth()] == ["11", "12", "13"]


def test_visionreasoner_refcoco_schema_string_ids(tmp_path):
    """Ricky06662/refcoco_testA's card: image, text, mask, image_id/ann_id strings, int32 sizes and bbox."""
    write_published(tmp_path / "refcoco_testA", "test", ann_ids=["101", "102", "103"],
                    image_ids=["581857", "581857", "9"], ann_type=pa.string(), image_type=pa.string())
    source = open_local(tmp_path / "refcoco_testA")
    truths = list(source.ground_truth())
    assert [g.id for g in truths] == ["101", "102", "103"]
    assert truths[0].target == masks.encode(h.make_mask(0))


def test_integer_id_columns_read_as_digits(tmp_path):
    write_published(tmp_path / "ints", "test", ann_ids=[101, 102, 103], image_ids=[581857, 581857, 9],
                    ann_type=pa.int64(), image_type=pa.int64())
    assert [g.id for g in open_local(tmp_path / "ints").ground_truth()] == ["101", "102", "103"]


def test_lmms_refcoco_makes_one_sample_per_expression_with_the_coco_polygon(tmp_path):
    from pycocotools import mask as coco

    write_lmms(tmp_path / "lmms", "testA", LMMS_ROWS)
    source = open_local(tmp_path / "lmms")
    assert source.splits() == ["testA"]
    samples = list(source.samples("testA"))
    assert [s.id for s in samples] == ["1001_0", "1001_1", "1002_0"]
    assert [s.query for s in samples] == ["man on the left", "guy in red", "right dog"]
    assert (samples[0].height, samples[0].width) == (20, 30) and samples[0].query_kind == "short"
    expected = coco.decode(coco.frPyObjects([LMMS_ROWS[1]["segmentation"]], 20, 30)[0])
    assert np.array_equal(masks.decode(samples[2].target), expected.astype(bool))
    assert samples[0].target == samples[1].target and masks.area(samples[0].target) > 0
    assert [g.id for g in source.ground_truth("testA")] == [s.id for s in samples]
    assert samples[0].image.open().size == (30, 20)


def test_lmms_refcoco_bad_polygon_is_a_bad_row(tmp_path):
    rows = [*LMMS_ROWS, {"question_id": "1003", "h": 20, "w": 30, "answer": ["a line"],
                         "segmentation": [1.0, 1.0, 5.0, 5.0]}]
    write_lmms(tmp_path / "lmms", "val", rows)
    with pytest.raises(InvalidInputError, match=r"row 2: segmentation polygon 0 has 2 point\(s\)"):
        list(open_local(tmp_path / "lmms").ground_truth())
    lenient = open_local(tmp_path / "lmms", skip_invalid=True)
    assert [g.id for g in lenient.ground_truth()] == ["1001_0", "1001_1", "1002_0"]
    assert len(lenient.skipped) == 1


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The catalog's Hub fetch answered from fixture folders named like the repos."""
    from reasonseg_x.data import hub as hub_module

    folders = {
        "Ricky06662/refcoco_testA": write_published(tmp_path / "refcoco_testA", "test", ann_ids=["101", "102"],
                                                    image_ids=["5", "6"], ann_type=pa.string(),
                                                    image_type=pa.string()),
        "lmms-lab/RefCOCO": write_lmms(tmp_path / "lmms-RefCOCO", "testB", LMMS_ROWS),
    }
    asked = []

    def fetch(repo, *, spec=None):
        asked.append(repo)
        return folders[repo]

    monkeypatch.setattr(hub_module, "fetch_dataset_repo", fetch)
    return asked


def test_refcoco_by_name_and_split(hub):
    source = open_source("refcoco")
    assert source.splits() == ["val", "testA", "testB"]
    assert [g.id for g in source.ground_truth("testA")] == ["101", "102"]
    assert [g.groups["source"] for g in source.ground_truth("testA")] == ["refcoco", "refcoco"]
    assert [g.id for g in source.ground_truth("testB")] == ["1001_0", "1001_1", "1002_0"]
    assert hub == ["Ricky06662/refcoco_testA", "lmms-lab/RefCOCO"]
    assert open_source("refcocoplus").splits() == ["val", "testA", "testB"]  # alias of refcoco+


def test_eval_on_refcoco_from_the_cli(hub, tmp_path):
    from reasonseg_x.cli import app

    done = CliRunner().invoke(app, ["eval", "-m", "oracle", "-d", "refcoco", "--split", "testB", "-q",
                                    "-o", str(tmp_path / "run")])
    assert done.exit_code == 0, done.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 3 and metrics["overall"]["giou"] == 1.0
    assert list(metrics["by_source"]) == ["refcoco"]


def test_refcoco_without_split_opens_val(hub):
    assert open_source("refcoco").default_split() == "val"
    assert open_source("refcocog").default_split() == "test"
    assert open_source("muse").default_split() == "test_many"  # unchanged where no default is named
