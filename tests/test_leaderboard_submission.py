"""Author side: manifests, validation against a split, metadata, bundle writing and re-opening."""

from __future__ import annotations

import dataclasses
import json
import tarfile
from pathlib import Path

import pytest
from _leaderboard_helpers import FakeSource, make_bundle, prediction_lines, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonseg_x import masks
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.leaderboard.bundle import (
    PREDICTIONS_FILE,
    SUBMISSION_FILE,
    SubmissionInfo,
    bundle_digest,
    open_bundle,
)
from reasonseg_x.leaderboard.manifest import Manifest, manifest_from_source, read_manifest, write_manifest
from reasonseg_x.leaderboard.runmeta import merge_meta, meta_from_run
from reasonseg_x.leaderboard.safety import Limits, UnsafeBundleError
from reasonseg_x.leaderboard.submission import (
    SubmissionError,
    build_submission,
    parse_meta,
    parse_parameter_count,
    validate_predictions,
)


@pytest.fixture()
def source() -> FakeSource:
    return FakeSource(12)


@pytest.fixture()
def manifest(source: FakeSource) -> Manifest:
    return manifest_from_source(source, "test")


def test_manifest_roundtrip_and_fingerprint(tmp_path: Path, source: FakeSource, manifest: Manifest) -> None:
    assert len(manifest) == 12 and manifest.fingerprint == source.fingerprint("test")
    assert manifest.groups["s000"] == {"reasoning_type": "function_purpose"}
    path = write_manifest(manifest, tmp_path / "m" / "manifest.json")
    again = read_manifest(path)
    assert again == manifest
    assert "counts" not in path.read_text()  # ids and sizes only, never the masks


@pytest.mark.parametrize("doc, match", [
    ({"format": "other"}, "not a reasonseg-x manifest"),
    ({"format": "reasonseg-x-manifest", "data": "d", "split": "t", "fingerprint": "f", "samples": [{"id": 1}]},
     "string 'id'"),
    ({"format": "reasonseg-x-manifest", "data": "d", "split": "t", "fingerprint": "f",
      "samples": [{"id": "a", "height": True, "width": 3}]}, "positive integer"),
    ({"format": "reasonseg-x-manifest", "data": "d", "split": "t", "fingerprint": "f",
      "samples": [{"id": "a", "height": 2, "width": 3}, {"id": "a", "height": 2, "width": 3}]}, "duplicate"),
])
def test_bad_manifests_are_refused(tmp_path: Path, doc: dict, match: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match=match):
        read_manifest(path)


def test_valid_predictions_pass(tmp_path: Path, source: FakeSource, manifest: Manifest) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", prediction_lines(source))
    report = validate_predictions(path, manifest)
    assert report.ok and len(report.predictions) == 12
    assert report.counts() == {"ok": 12, "no_target": 0, "parse_error": 0, "error": 0}


def test_every_problem_kind_is_listed_with_first_ids(tmp_path: Path, source: FakeSource, manifest: Manifest) -> None:
    rows: list = prediction_lines(source)
    del rows[0:7]                                             # 7 missing ids: s000..s006
    rows.append({"id": "nope-1", "mask": None, "status": "ok"})  # unknown
    rows.append({"id": "nope-2", "mask": None, "status": "ok"})
    h, w = manifest.sizes["s007"]
    rows[0] = {"id": "s007", "mask": masks.empty(h + 1, w), "status": "ok"}    # size mismatch
    rows[1] = {"id": "s008", "mask": {"size": [h, w], "counts": "zzzz"}, "status": "ok"}  # invalid RLE
    rows[2]["status"] = "great"                                 # unknown status
    rows.append(dict(rows[3]))                                  # duplicate
    rows.append("{not json")                                    # malformed line
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    report = validate_predictions(path, manifest)
    kinds = report.by_kind()
    assert set(kinds) == {"bad_line", "duplicate_id", "bad_status", "invalid_rle", "missing_id", "unknown_id",
                          "size_mismatch"}
    assert [p.id for p in kinds["missing_id"]] == [f"s{i:03d}" for i in range(7)]
    with pytest.raises(SubmissionError) as info:
        report.raise_for_problems()
    text = str(info.value)
    assert "7 missing ids" in text and "'s000'" in text and "'s004'" in text and "and 2 more" in text
    assert "'s005'" not in text  # only the first five are listed
    assert "2 unknown ids" in text and "'nope-1'" in text
    assert "'s007'" in text and "differs from the image" in text
    assert "'s008'" in text and "invalid RLE" in text
    assert "p.jsonl:" in text  # where: file and line


def test_unknown_and_mismatched_ids_point_at_their_lines(tmp_path: Path, source: FakeSource,
                                                         manifest: Manifest) -> None:
    rows = prediction_lines(source)
    h, w = manifest.sizes["s003"]
    rows[3]["mask"] = masks.empty(h, w + 2)
    rows.insert(5, {"id": "stray", "mask": None, "status": "ok"})
    text = validate_predictions(write_jsonl(tmp_path / "p.jsonl", rows), manifest).summary()
    assert "'stray' (p.jsonl:6)" in text and "'s003' (p.jsonl:4: mask is" in text
    assert "hint" not in text  # most ids match: no advice about the wrong split


def test_predictions_for_another_split_get_a_hint(tmp_path: Path, manifest: Manifest) -> None:
    other = FakeSource(3, spec="other")
    other._samples = [dataclasses.replace(s, id=f"x{i}") for i, s in enumerate(other._samples)]
    report = validate_predictions(write_jsonl(tmp_path / "p.jsonl", prediction_lines(other)), manifest)
    with pytest.raises(SubmissionError, match=r"against fake:12:0:test") as info:
        report.raise_for_problems()
    assert "hint: none of the 3 predicted ids is in fake:12:0:test (e.g. 's000' is)" in str(info.value)
    assert "'s000'; 's001'" in str(info.value)  # missing ids listed without repeated boilerplate


def test_empty_file_and_run_folder_are_explained(tmp_path: Path, manifest: Manifest) -> None:
    empty = tmp_path / "run" / "predictions.jsonl"
    empty.parent.mkdir()
    empty.write_text("")
    assert "hint: no prediction was read from predictions.jsonl: is it empty?" in \
        validate_predictions(empty, manifest).summary()
    with pytest.raises(InvalidInputError, match=r"is a folder; give the predictions JSONL file \(e.g. .*run"):
        validate_predictions(tmp_path / "run", manifest)


def test_rle_that_does_not_sum_is_invalid(tmp_path: Path, source: FakeSource, manifest: Manifest) -> None:
    rows = prediction_lines(source)
    h, w = manifest.sizes[rows[0]["id"]]
    rows[0]["mask"] = {"size": [h, w], "counts": masks.encode_counts([h * w - 1])}
    rows[1]["mask"] = {"size": [h, "w"], "counts": ""}
    report = validate_predictions(write_jsonl(tmp_path / "p.jsonl", rows), manifest)
    assert [p.kind for p in report.problems] == ["invalid_rle", "invalid_rle"]
    assert "sum to" in report.problems[0].reason


def test_oversized_line_and_file_are_refused(tmp_path: Path, source: FakeSource, manifest: Manifest) -> None:
    rows = prediction_lines(source)
    rows[0]["raw_text"] = "x" * 5000
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(UnsafeBundleError, match="line longer than 4096"):
        validate_predictions(path, manifest, limits=Limits(max_line_bytes=4096))
    with pytest.raises(UnsafeBundleError, match="predictions file is"):
        validate_predictions(path, manifest, limits=Limits(max_member_bytes=1000))


def test_meta_parsing() -> None:
    fields = parse_meta(["base_model=Qwen2.5-VL-7B-Instruct", "params=7B", "tts=majority_vote", "tts.n=32",
                         "tts.temperature=1.0", "url=https://x.org/a=b", "open=true"])
    assert fields["base_model"] == "Qwen2.5-VL-7B-Instruct"
    assert fields["parameter_count"] == 7_000_000_000
    assert fields["tts"] == {"method": "majority_vote", "n": 32, "temperature": 1.0}
    assert fields["meta"] == {"url": "https://x.org/a=b", "open": True}
    assert parse_meta(["tts=none"]) == {"meta": {}, "tts": None}
    assert parse_meta([]) == {"meta": {}}
    with pytest.raises(InvalidInputError, match="contradicts"):
        parse_meta(["tts=none", "tts.n=4"])
    with pytest.raises(InvalidInputError, match="KEY=VALUE"):
        parse_meta(["oops"])
    with pytest.raises(InvalidInputError, match="not a number"):
        parse_parameter_count("seven")
    for nothing in ("0B", "0", "0.1", "0.0000000001B"):  # a model with no parameters sorts first: refused
        with pytest.raises(InvalidInputError, match="not a positive number"):
            parse_meta([f"params={nothing}"])


def _star_run(folder: Path, **args: object) -> Path:
    """A run folder as `reasonseg-x eval -m star` leaves it (only what the submission reads)."""
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"identity": {}, "model": {"name": "star", "args": args}}))
    return folder / "predictions.jsonl"


def test_metadata_comes_from_the_run_folder(tmp_path: Path) -> None:
    preds = _star_run(tmp_path / "run", checkpoint="sj9909/StAR-8B", base_model="Qwen/Qwen3-VL-8B-Instruct", tts=32,
                      aggregator="majority_vote", temperature=1.0, top_p=0.9, seed=42, device="cuda")
    found = meta_from_run(preds)
    assert found == {"meta": {"model": "star", "checkpoint": "sj9909/StAR-8B"},
                     "base_model": "Qwen/Qwen3-VL-8B-Instruct",
                     "tts": {"method": "majority_vote", "n": 32, "temperature": 1.0, "top_p": 0.9, "seed": 42}}
    merged = merge_meta(found, parse_meta(["tts.n=16", "params=8B", "model=StAR-8B-mine"]))
    assert merged["tts"]["n"] == 16 and merged["tts"]["top_p"] == 0.9 and merged["parameter_count"] == 8 * 10**9
    assert merged["meta"] == {"model": "StAR-8B-mine", "checkpoint": "sj9909/StAR-8B"}
    assert merge_meta(found, parse_meta(["tts=none"]))["tts"] is None
    assert meta_from_run(_star_run(tmp_path / "greedy", tts=1)) == {"meta": {"model": "star"}}
    assert meta_from_run(tmp_path / "elsewhere" / "p.jsonl") == {}
    (tmp_path / "greedy" / "run.json").write_text("[" * 100)  # broken: ignored, the submission is not refused
    assert meta_from_run(tmp_path / "greedy" / "predictions.jsonl") == {}


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**12), st.sampled_from(["", "k", "M", "B"]))
def test_parameter_count_scales(value: int, unit: str) -> None:
    scale = {"": 1, "k": 10**3, "M": 10**6, "B": 10**9}[unit]
    if value * scale > 10**15 or value == 0:
        with pytest.raises(InvalidInputError):
            parse_parameter_count(f"{value}{unit}")
    else:
        assert parse_parameter_count(f"{value}{unit}") == value * scale


def test_bundle_folder_and_archive_have_one_identity(tmp_path: Path, source: FakeSource) -> None:
    folder = make_bundle(tmp_path, source, meta=parse_meta(["params=8B", "tts=majority_vote", "tts.n=32"]))
    doc = json.loads((folder / SUBMISSION_FILE).read_text())
    assert doc["model_name"] == "model-a" and doc["parameter_count"] == 8_000_000_000
    assert doc["tts"] == {"method": "majority_vote", "n": 32}
    assert doc["dataset"]["fingerprint"] == source.fingerprint("test") and doc["dataset"]["n"] == 12
    assert doc["protocol"] == "star" and doc["toolkit_version"]
    opened = open_bundle(folder, tmp_path / "work")
    assert opened.digest == bundle_digest(json.loads((folder / SUBMISSION_FILE).read_bytes()))
    archive = tmp_path / "same.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # the author tars the folder themselves
        tar.add(folder, arcname="my-bundle")
    assert open_bundle(archive, tmp_path / "work2").digest == opened.digest


def test_identity_ignores_layout_and_creation_time(tmp_path: Path, source: FakeSource) -> None:
    """Re-running submit on the same predictions, or re-indenting submission.json, keeps the identity;
    any change of content (here the model name) gives a new one."""
    first = open_bundle(make_bundle(tmp_path, source, out="one"), tmp_path / "w1")
    doc = json.loads((tmp_path / "one" / SUBMISSION_FILE).read_text())
    doc["created"] = "1999-01-01T00:00:00Z"
    (tmp_path / "one" / SUBMISSION_FILE).write_text(json.dumps(doc, indent=7))
    assert open_bundle(tmp_path / "one", tmp_path / "w2").digest == first.digest
    assert open_bundle(make_bundle(tmp_path, source, out="two"), tmp_path / "w3").digest == first.digest
    renamed = open_bundle(make_bundle(tmp_path, source, name="model-b", out="three"), tmp_path / "w4")
    assert renamed.digest != first.digest


def test_build_refuses_bad_predictions_and_writes_nothing(tmp_path: Path, source: FakeSource,
                                                           manifest: Manifest) -> None:
    rows = prediction_lines(source)[1:]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(SubmissionError, match="1 missing ids"):
        build_submission(path, manifest, model_name="m", out=tmp_path / "out.tar.gz")
    assert not (tmp_path / "out.tar.gz").exists()


@pytest.mark.parametrize("name, meta, match", [
    ("x" * 300, {}, "'model_name' is longer than 200"),
    ("m", {"meta": {"k" * 80: 1}}, "'meta key' is longer than 64"),
    ("m", {"tts": {"n": [1, 2]}}, "'tts.n' must be a string, number"),
])
def test_bad_metadata_is_refused_before_reading_predictions(tmp_path: Path, manifest: Manifest, name: str,
                                                            meta: dict, match: str) -> None:
    """The host's schema is applied to --model-name / --meta first: no wait on a big file to learn it."""
    with pytest.raises(InvalidInputError, match=match) as info:
        build_submission(tmp_path / "not-even-there.jsonl", manifest, model_name=name, meta=meta,
                         out=tmp_path / "b")
    assert info.value.where == "--model-name / --meta" and not (tmp_path / "b").exists()


@pytest.mark.parametrize("out, match", [("b.zip", "folder or a .tar.gz"), ("b.tar", "folder or a .tar.gz"),
                                        ("taken", "not an empty folder"), ("taken.tar.gz", "already exists")])
def test_bad_output_path_is_refused_before_reading_predictions(tmp_path: Path, manifest: Manifest, out: str,
                                                                match: str) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    (tmp_path / "taken.tar.gz").write_bytes(b"keep")
    with pytest.raises(InvalidInputError, match=match):
        build_submission(tmp_path / "not-even-there.jsonl", manifest, model_name="m", out=tmp_path / out)
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep"
    assert (tmp_path / "taken.tar.gz").read_bytes() == b"keep"


def test_archive_bundle_is_reproducible(tmp_path: Path, source: FakeSource, manifest: Manifest) -> None:
    path = make_bundle(tmp_path, source, out="b.tar.gz")
    with tarfile.open(path) as tar:
        assert sorted(tar.getnames()) == [PREDICTIONS_FILE, SUBMISSION_FILE]
        lines = tar.extractfile(PREDICTIONS_FILE).read().decode().splitlines()  # type: ignore[union-attr]
    assert [json.loads(x)["id"] for x in lines] == manifest.ids


def _write_submission(tmp_path: Path, source: FakeSource, mutate) -> Path:  # type: ignore[no-untyped-def]
    folder = make_bundle(tmp_path, source)
    doc = json.loads((folder / SUBMISSION_FILE).read_text())
    mutate(doc)
    (folder / SUBMISSION_FILE).write_text(json.dumps(doc))
    return folder


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.update(model_name=["a"]), "'model_name' must be a string"),
    (lambda d: d.update(model_name="  "), "must not be blank"),
    (lambda d: d.update(model_name="x" * 500), "longer than"),
    (lambda d: d.update(parameter_count="7B"), "'parameter_count' must be an integer"),
    (lambda d: d.update(parameter_count=True), "'parameter_count' must be an integer"),
    (lambda d: d.update(parameter_count=-1), "outside"),
    (lambda d: d.update(tts={"n": {"deep": 1}}), "'tts.n' must be a string"),
    (lambda d: d.update(tts=[1]), "'tts' must be a JSON object"),
    (lambda d: d.update(protocol="star; rm -rf /"), "protocol name"),
    (lambda d: d.pop("dataset"), "'dataset' must be a JSON object"),
    (lambda d: d["dataset"].update(n="12"), "'dataset.n' must be an integer"),
    (lambda d: d.update(files={"predictions.jsonl": {"sha256": "abc", "bytes": 1}}), "64 lower-case hex"),
    (lambda d: d.update(files={"../x": {}}), "must list exactly"),
    (lambda d: d.update(format_version=2), "format_version"),
    (lambda d: d.update(evil=1), "unknown field"),
    (lambda d: d["meta"].update(note="a\x00b"), "control characters"),
    (lambda d: d.update(model_name="\ud800x"), "lone surrogates"),
    (lambda d: d.update(model_name="StAR-32B\u202e VM +"), "bidirectional-override"),
    (lambda d: d.update(model_name="Ora\u200bcle"), r"invisible character \(U\+200B ZERO WIDTH SPACE.*'Oracle'"),
    (lambda d: d.update(model_name="Oracle\u2060"), "invisible character"),  # word joiner
    (lambda d: d.update(model_name="\ufeffOracle"), "invisible character"),  # byte-order mark
    (lambda d: d.update(model_name="Ora\u00adcle"), "invisible character"),  # soft hyphen
    (lambda d: d.update(model_name="Oracle\u00a0"), "invisible character"),  # no-break space
    (lambda d: d.update(model_name="\u3164"), "invisible character"),  # Hangul filler, a "letter"
    (lambda d: d.update(base_model="Qwen\u200d2.5"), "'base_model' contains an invisible"),
    (lambda d: d["meta"].update(note="a\u200bb"), "'meta.note' contains an invisible"),
    (lambda d: d.update(model_name="\u041eracle"), r"mixes letters.*Cyrillic 'О'"),  # Cyrillic O
    (lambda d: d.update(model_name="StAR-\u03bf"), "mixes letters"),  # Greek omicron
    (lambda d: d.update(model_name="\uff33tAR"), "lookalike character.*write it as 'StAR'"),  # full-width S
])
def test_wrong_types_in_submission_json_are_refused(tmp_path: Path, source: FakeSource, mutate, match: str) -> None:
    folder = _write_submission(tmp_path, source, mutate)
    with pytest.raises(UnsafeBundleError, match=match):
        open_bundle(folder, tmp_path / "work")


@pytest.mark.parametrize("name", ["Oracle", "StAR-32B (tts=32)", "Qwen2.5-VL 7B", "ГигаЧат", "通义千问 Qwen",
                                  "Café-Seg", "naïve"])
def test_ordinary_names_in_any_one_script_are_accepted(name: str) -> None:
    from reasonseg_x.leaderboard.safety import name_problem

    assert name_problem(name) is None


def test_submit_refuses_an_invisible_character_in_the_model_name(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from reasonseg_x.cli import app

    run = tmp_path / "run"
    assert CliRunner().invoke(app, ["eval", "-m", "oracle", "-n", "4", "-q", "-o", str(run)]).exit_code == 0
    done = CliRunner().invoke(app, ["submit", str(run / "predictions.jsonl"), "--model-name", "Ora\u200bcle",
                                    "--out", str(tmp_path / "bundle")])
    assert done.exit_code == 2 and "invisible character" in done.output and not (tmp_path / "bundle").exists()


def test_submission_json_must_be_an_object_and_bounded(tmp_path: Path, source: FakeSource) -> None:
    folder = make_bundle(tmp_path, source)
    (folder / SUBMISSION_FILE).write_text("[" * 100 + "]" * 100)
    with pytest.raises(UnsafeBundleError, match="nested deeper"):
        open_bundle(folder, tmp_path / "w")
    (folder / SUBMISSION_FILE).write_text('{"model_name": ' + "1" * 10_000 + "}")
    with pytest.raises(UnsafeBundleError, match="number of"):
        open_bundle(folder, tmp_path / "w")
    (folder / SUBMISSION_FILE).write_text('"just a string"')
    with pytest.raises(UnsafeBundleError, match="JSON object"):
        open_bundle(folder, tmp_path / "w")
    (folder / SUBMISSION_FILE).write_text("{" + " " * 5000 + "}")  # huge: refused before parsing
    with pytest.raises(UnsafeBundleError, match="exceeds the limit of 4096"):
        open_bundle(folder, tmp_path / "w", Limits(max_json_bytes=4096))


def test_tampered_predictions_fail_the_checksum(tmp_path: Path, source: FakeSource) -> None:
    folder = make_bundle(tmp_path, source)
    data = (folder / PREDICTIONS_FILE).read_bytes()
    (folder / PREDICTIONS_FILE).write_bytes(data.replace(b'"ok"', b'"OK"', 1))
    with pytest.raises(UnsafeBundleError, match="sha256"):
        open_bundle(folder, tmp_path / "w")
    (folder / PREDICTIONS_FILE).write_bytes(data + b"\n")
    with pytest.raises(UnsafeBundleError, match="declares"):
        open_bundle(folder, tmp_path / "w")


def test_submission_info_roundtrip(tmp_path: Path, source: FakeSource) -> None:
    folder = make_bundle(tmp_path, source, meta={"base_model": "b", "parameter_count": 3, "tts": {"method": "mv"},
                                                  "meta": {"k": 1.5}})
    info = SubmissionInfo.from_json(json.loads((folder / SUBMISSION_FILE).read_text()))
    assert SubmissionInfo.from_json(info.to_json()) == info
    assert info.meta == {"k": 1.5} and info.counts["ok"] == 12
