"""One truth per run: `score -p RUN`, `show RUN` and `submit RUN` give the numbers of the run's
metrics.json, whatever part of the split the run covers (issue 19).

The runs: a ``--skip-invalid`` run over 12 rows with one corrupt image, a ``--limit`` run, a shard
run whose per_sample.jsonl is gone (what a torchrun rank leaves), a torchrun-style run (ranks in
turn, rank 0 merging), and a run whose errors were retried.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasonseg_x.cli import app

KINDS = ("skip_invalid", "limited", "shard", "merged", "retried")
PROTOCOLS = ("star", "visionreasoner", "lisa", "gres")
#: what score prints and metrics.json holds, compared whole (intervals included: same records, same seed)
SECTIONS = ("overall", "by_reasoning_type", "by_query_kind", "by_source")


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _eval(*args: object) -> None:
    done = _cli("eval", "-q", *args)
    assert done.exit_code == 0, done.output


def _corrupt_compact(folder: Path) -> Path:
    """12 rows of mini as a compact folder, the sixth with bytes that are no image: its ground truth
    reads fine, only reading the image finds it bad."""
    from reasonseg_x.data.compact import write_compact
    from reasonseg_x.data.record import ImageRef
    from reasonseg_x.data.resolve import open_source

    samples = list(itertools.islice(open_source("mini").samples("test"), 12))
    samples[5] = dataclasses.replace(samples[5], image=ImageRef(data=b"not an image" * 20, where="corrupt"))
    write_compact({"test": samples}, folder)
    return folder


def _torchrun_like(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's distributed path, ranks run one after the other (rank 0 last, so its file barrier
    finds every shard complete), without torch.distributed."""
    from reasonseg_x.cli.eval import _eval_distributed
    from reasonseg_x.runner import distributed
    from reasonseg_x.runner.distributed import DistEnv
    from reasonseg_x.runner.evaluate import EvalConfig

    monkeypatch.setattr(distributed, "_dist", lambda: None)
    for rank in (1, 0):
        config = EvalConfig(model="full", out=out, data="mini", batch_size=5)
        _eval_distributed(config, DistEnv(rank, 2, rank, "torchrun"), quiet=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {}
    data = _corrupt_compact(root / "compact12")
    _eval("-m", "oracle", "-d", data, "-o", root / "skip", "--skip-invalid")
    out["skip_invalid"] = root / "skip"
    _eval("-m", "full", "-d", "mini", "-o", root / "limited", "--limit", "20")
    out["limited"] = root / "limited"
    _eval("-m", "full", "-d", "mini", "-o", root / "sharded", "--num-shards", "3", "--shard-id", "0")
    out["shard"] = root / "sharded" / "shard-0-of-3"
    (out["shard"] / "per_sample.jsonl").unlink()  # a torchrun rank scores nothing: the viewer must score
    with pytest.MonkeyPatch.context() as mp:
        _torchrun_like(root / "merged", mp)
    out["merged"] = root / "merged"
    failing = root / "failing.txt"
    failing.write_text("mini-001\nmini-004\nmini-030\n")
    retried = ["-m", "_runner_helpers:ListedFailures", "-a", f"fail_file={failing}", "-d", "mini", "-o", root / "retried"]
    _eval(*retried)
    failing.write_text("mini-030\n")  # two recover, one still fails
    _eval(*retried, "--retry-errors")
    out["retried"] = root / "retried"
    return out


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))


def _viewer_data(page: Path) -> dict:
    import re

    block = re.search(r'<script type="application/json" id="viewer-data">(.*?)</script>',
                      page.read_text(encoding="utf-8"), re.S)
    assert block is not None
    return json.loads(block.group(1))


def _expected_summary(metrics: dict) -> list[tuple[str, str, int, float | None, float | None]]:
    """The rows the CLI's table prints, as (section, title, n, gIoU %, cIoU %)."""
    from reasonseg_x.evaluators.report import group_rows

    def pct(value: float | None) -> float | None:
        return None if value is None else round(100 * value, 2)

    return [(section, title, g["n"], pct(g["giou"]), pct(g["ciou"])) for section, _, title, g in group_rows(metrics)]


def _summary(page: Path) -> list[tuple[str, str, int, float | None, float | None]]:
    return [(row["section"], row["title"], row["n"], row["runs"][0]["giou"], row["runs"][0]["ciou"])
            for row in _viewer_data(page)["summary"]]


def test_the_runs_cover_what_the_issue_says(runs: dict[str, Path]) -> None:
    assert _metrics(runs["skip_invalid"])["overall"]["n"] == 11  # 12 rows, one unreadable
    assert _metrics(runs["limited"])["overall"]["n"] == 20
    assert _metrics(runs["shard"])["overall"]["n"] == 16
    assert _metrics(runs["merged"])["overall"]["n"] == 48
    assert not (runs["merged"] / "shard-1-of-2" / "metrics.json").exists()
    retried = _metrics(runs["retried"])
    assert retried["overall"]["n"] == 48 and retried["counts"]["error"] == 1


@pytest.mark.parametrize("skip_invalid", [False, True], ids=["plain", "skip-invalid"])
@pytest.mark.parametrize("kind", KINDS)
def test_score_of_a_run_folder_gives_its_metrics(runs: dict[str, Path], kind: str, skip_invalid: bool,
                                                 tmp_path: Path) -> None:
    run = runs[kind]
    done = _cli("score", "-p", run, "-o", tmp_path / "s", "-q", *(["--skip-invalid"] if skip_invalid else []))
    assert done.exit_code == 0, done.output
    expected, got = _metrics(run), _metrics(tmp_path / "s")
    for key in SECTIONS:
        assert got.get(key) == expected.get(key), key
    assert got["counts"] == expected["counts"]
    assert got["data"]["fingerprint"] == expected["data"]["fingerprint"]
    assert got["data"].get("skipped_rows") == expected["data"].get("skipped_rows")


@pytest.mark.parametrize("kind", KINDS)
def test_show_of_a_run_folder_gives_its_metrics(runs: dict[str, Path], kind: str, tmp_path: Path) -> None:
    run = runs[kind]
    done = _cli("show", run, "-o", tmp_path / "v", "-q", "-j", "1", "--thumb", "32", "--full", "32")
    assert done.exit_code == 0, done.output
    expected = _metrics(run)
    assert _summary(tmp_path / "v" / "index.html") == _expected_summary(expected)
    assert len(_viewer_data(tmp_path / "v" / "index.html")["cases"]) == expected["overall"]["n"]


def test_show_of_a_torchrun_rank_without_scores_lists_its_shard(runs: dict[str, Path], tmp_path: Path) -> None:
    """A rank folder has predictions and run.json only: the viewer scores its shard, as score does."""
    rank = runs["merged"] / "shard-1-of-2"
    for args in (["score", "-p", rank, "-o", tmp_path / "s", "-q"],
                 ["show", rank, "-o", tmp_path / "v", "-q", "-j", "1", "--thumb", "32", "--full", "32"]):
        done = _cli(*args)
        assert done.exit_code == 0, done.output
    scored = _metrics(tmp_path / "s")
    assert scored["overall"]["n"] == 24 and scored["counts"]["missing"] == 0
    assert _summary(tmp_path / "v" / "index.html") == _expected_summary(scored)


@pytest.mark.parametrize("kind", KINDS)
def test_submit_of_a_run_folder_holds_the_samples_of_its_metrics(runs: dict[str, Path], kind: str,
                                                                  tmp_path: Path) -> None:
    run = runs[kind]
    done = _cli("submit", run, "--model-name", "m", "--out", tmp_path / "b")
    assert done.exit_code == 0, done.output
    info = json.loads((tmp_path / "b" / "submission.json").read_text(encoding="utf-8"))
    expected = _metrics(run)
    assert info["dataset"]["n"] == expected["overall"]["n"]
    assert info["dataset"]["fingerprint"] == expected["data"]["fingerprint"]
    assert info["counts"].get("error", 0) == expected["counts"]["error"]
    partial = kind in ("skip_invalid", "limited", "shard")
    assert ("covers part of the split" in done.output) == partial


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", ["limited", "shard"])
def test_viewer_summary_equals_the_protocols_metrics(runs: dict[str, Path], kind: str, protocol: str,
                                                     tmp_path: Path) -> None:
    """Under every protocol (its pooling, lisa's cIoU epsilon, gres's empty targets) and every group the
    CLI prints: the numbers come from the Evaluator, never from the viewer."""
    from reasonseg_x.viewer.build import build_viewer

    run = runs[kind]
    done = _cli("score", "-p", run, "--protocol", protocol, "-o", tmp_path / "s", "-q", "--bootstrap", "0")
    assert done.exit_code == 0, done.output
    page = build_viewer(run, tmp_path / "v", protocol=protocol, workers=1, progress=False, thumb_side=32,
                        full_side=32)
    assert _summary(page) == _expected_summary(_metrics(tmp_path / "s"))
    assert _viewer_data(page)["runs"][0]["protocol"] == _metrics(tmp_path / "s")["protocol"]


# --- the Evaluator takes the package's own records ---------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    _eval("-m", "full", "-d", "mini", "-o", out)
    return out


def _same_groups(got: dict, expected: dict) -> None:
    for key in SECTIONS:
        assert got.get(key) == expected.get(key), key


def test_evaluator_on_open_source_samples_equals_score(full_run: Path) -> None:
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.evaluators.evaluator import Evaluator
    from reasonseg_x.predictions import read_predictions

    predictions = read_predictions(full_run / "predictions.jsonl")
    evaluator = Evaluator("star")
    for sample in open_source("mini").samples("test"):
        evaluator.update(sample, predictions.by_id[sample.id])
    _same_groups(evaluator.compute(), _metrics(full_run))


def test_evaluator_on_load_dataset_rows_equals_score(full_run: Path) -> None:
    pytest.importorskip("datasets")
    from reasonseg_x.data.datasets_api import load_dataset
    from reasonseg_x.evaluators.evaluator import Evaluator
    from reasonseg_x.predictions import read_predictions

    predictions = read_predictions(full_run / "predictions.jsonl")
    dataset = load_dataset("mini", "test")
    assert isinstance(dataset[0]["reasoning_type"], int)  # a ClassLabel: the int, not the name
    one_by_one = Evaluator("star")
    for row in dataset:  # the loop every Hugging Face user writes first
        one_by_one.update(row, predictions.by_id[row["id"]])
    _same_groups(one_by_one.compute(), _metrics(full_run))
    whole = Evaluator("star")  # the dataset itself: its features name the classes
    whole.update(dataset, {i: p for i, p in predictions.by_id.items()})
    _same_groups(whole.compute(), _metrics(full_run))


def test_evaluator_on_a_columnar_batch_equals_row_by_row(full_run: Path) -> None:
    """``dataset[0:8]`` is a dict of columns: a batch of its rows, not one row with a list for an id."""
    pytest.importorskip("datasets")
    from reasonseg_x.data.datasets_api import load_dataset
    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.evaluators.evaluator import Evaluator
    from reasonseg_x.predictions import read_predictions

    predictions = read_predictions(full_run / "predictions.jsonl")
    dataset = load_dataset("mini", "test")
    batch = dataset[0:8]
    assert isinstance(batch, dict) and len(batch["id"]) == 8
    preds = [predictions.by_id[i] for i in batch["id"]]
    by_rows = Evaluator("star")
    for n in range(8):
        by_rows.update(dataset[n], preds[n])
    columnar = Evaluator("star")
    columnar.update(batch, preds)
    assert columnar.compute() == by_rows.compute()
    assert columnar.compute()["overall"]["n"] == 8
    ragged = dict(batch, target=batch["target"][:7])
    with pytest.raises(InvalidInputError, match=r"'id' has 8 values, 'target' has 7"):
        Evaluator("star").update(ragged, preds)


def test_evaluator_refuses_a_class_index_outside_the_taxonomy() -> None:
    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.evaluators.evaluator import Evaluator

    row = {"id": "a", "target": {"size": [2, 2], "counts": "04"}, "reasoning_type": 7}
    with pytest.raises(InvalidInputError, match=r"reasoning_type class index 7 is out of range 0\.\.3"):
        Evaluator("star").update(row, None)


def test_merged_shards_of_a_skip_invalid_run_keep_its_skipped_rows(tmp_path: Path) -> None:
    """The bad row is left out by the shard that met it; merge, score and show all leave it out too."""
    data = _corrupt_compact(tmp_path / "compact12")
    for shard in ("0", "1"):
        _eval("-m", "oracle", "-d", data, "-o", tmp_path / "run", "--skip-invalid", "--num-shards", "2",
              "--shard-id", shard)
    merged = _cli("merge", tmp_path / "run", "-q")
    assert merged.exit_code == 0, merged.output
    expected = _metrics(tmp_path / "run")
    assert expected["overall"]["n"] == 11 and expected["data"]["skipped_rows"] == 1
    assert expected["counts"]["missing"] == 0
    done = _cli("score", "-p", tmp_path / "run", "-o", tmp_path / "s", "-q")
    assert done.exit_code == 0, done.output
    for key in SECTIONS:
        assert _metrics(tmp_path / "s").get(key) == expected.get(key), key


# --- the record itself ---------------------------------------------------------------------------------------


def test_a_damaged_run_json_is_named_or_passed_over(tmp_path: Path) -> None:
    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.runner.record import read_record, recorded_run, run_status

    assert read_record(tmp_path) is None
    (tmp_path / "run.json").write_text('{"identity": ', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"run\.json is not valid JSON .*pass --fresh") as caught:
        read_record(tmp_path)
    assert str(tmp_path / "run.json") in str(caught.value)
    assert read_record(tmp_path, lenient=True) is None and recorded_run(tmp_path) is None
    assert run_status(tmp_path) is None
    (tmp_path / "run.json").write_text('{"status": "running"}', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="no 'identity'"):
        read_record(tmp_path)
    assert run_status(tmp_path) == "running"  # the barrier only needs the status


def test_coverage_is_limit_then_shard_less_skipped_rows(tmp_path: Path) -> None:
    """Hand-worked: 10 ids, --limit 7 keeps r000..r006, shard 1 of 2 of the sorted ids takes r001, r003,
    r005; skipping r003 leaves r001 and r005."""
    from _runner_helpers import FakeSource
    from reasonseg_x.runner.record import Coverage
    from reasonseg_x.runner.shards import Shard

    source = FakeSource(10)
    coverage = Coverage(limit=7, shard=Shard(1, 2), skipped=frozenset({"r003"}))
    n_split, selected, mine = coverage.select(source, "test")
    assert n_split is None and selected == [f"r{k:03d}" for k in range(7)] and mine == ["r001", "r003", "r005"]
    subset = coverage.restrict(source, "test")
    assert [gt.id for gt in subset.ground_truth("test")] == ["r001", "r005"]
    assert "first 7, shard-1-of-2, 1 bad rows skipped" in subset.spec
    assert Coverage().restrict(source, "test") is source  # the whole split: the source itself
