"""evaluators/protocols.yaml is the single source of the metric conventions, validated at load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reasonseg_x._resources import shipped_file
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.evaluators import protocols
from reasonseg_x.evaluators.protocols import get_protocol, load_protocols

SHIPPED = shipped_file("evaluators", "protocols.yaml")


def test_the_shipped_file_holds_the_four_conventions_and_their_rules():
    by_name, aliases = load_protocols()
    assert list(by_name) == ["star", "visionreasoner", "lisa", "gres"]
    assert aliases == {"reasonseg-x": "star", "segzero": "visionreasoner", "seg-zero": "visionreasoner",
                       "vision_reasoner": "visionreasoner", "rela": "gres"}
    lisa = by_name["lisa"]
    assert (lisa.ignore, lisa.iou_eps, lisa.ciou_eps, lisa.empty_union_iou) == ("exclude", 1e-5, 1e-10, 1.0)
    assert by_name["visionreasoner"].empty_union_iou == 0.0 and by_name["star"].empty_union_iou == 1.0
    assert by_name["gres"].failed_answer == "zero" and by_name["gres"].no_target_rows
    assert all(p.follows and p.used_by and p.description for p in by_name.values())
    assert protocols.PROTOCOLS is by_name and protocols.ALIASES is aliases
    assert get_protocol(" SegZero ") is by_name["visionreasoner"]


def test_failed_answer_rule():
    assert get_protocol("gres").failed_iou(0) == 0.0  # a failure is never a correct rejection
    assert get_protocol("star").failed_iou(0) == 1.0 and get_protocol("visionreasoner").failed_iou(0) == 0.0
    assert get_protocol("star").failed_iou(10) == 0.0


def _write(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    edit(doc)
    path = tmp_path / "protocols.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["protocols"]["star"].update(ignore_region="drop"), r"protocols.star.ignore_region: expected merge or exclude"),
    (lambda d: d["protocols"]["lisa"].update(iou_eps="1e-5"), r"protocols.lisa.iou_eps: expected a number \(write 1.0e-5"),
    (lambda d: d["protocols"]["star"].update(empty_union_iou=2), r"protocols.star.empty_union_iou: expected a number in \[0, 1\]"),
    (lambda d: d["protocols"]["gres"].update(no_target_rows="yes"), r"protocols.gres.no_target_rows: expected true or false"),
    (lambda d: d["protocols"]["gres"].update(failed_answer="one"), r"protocols.gres.failed_answer: expected as_empty or zero"),
    (lambda d: d["protocols"]["star"].pop("description"), r"protocols.star: missing key\(s\) description"),
    (lambda d: d["protocols"]["star"].update(pooling=1), r"protocols.star: unknown key\(s\) pooling"),
    (lambda d: d["protocols"]["lisa"].update(aliases=["segzero"]), r"alias 'segzero' of 'lisa' is already .* 'visionreasoner'"),
    (lambda d: d["protocols"]["lisa"].update(aliases=["star"]), r"alias 'star' of 'lisa' is already"),
    (lambda d: d.update(format=2), r"format 2 is not supported"),
    (lambda d: d.pop("format"), r"expected the keys 'format' and 'protocols'"),
])
def test_a_bad_file_names_the_file_and_the_key(tmp_path, edit, message):
    path = _write(tmp_path, edit)
    with pytest.raises(InvalidInputError, match=message) as info:
        load_protocols(path)
    assert str(path) in str(info.value)


def test_malformed_yaml_names_the_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("format: 1\nprotocols: [\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="malformed YAML") as info:
        load_protocols(path)
    assert str(path) in str(info.value)
