"""Spec resolver, known names, Hub ids that fail fast offline, load_dataset."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import _datahf_helpers as h
from reasonseg_x.data.catalog import CatalogSource, catalog, lookup
from reasonseg_x.data.resolve import open_source
from reasonseg_x.errors import InvalidInputError, SourceNotFoundError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONSEG_X_CACHE", str(tmp_path / "cache"))


def test_catalog_names_map_to_the_published_repos():
    assert list(catalog()) == ["reasonseg-x", "reasonseg", "reasonseg-r", "muse", "mmr", "refcoco", "refcoco+",
                               "refcocog", "refcoco-lmms", "refcoco+-lmms", "refcocog-lmms"]
    rsx = lookup("ReasonSeg-X")
    assert [(s.name, s.repo, s.repo_split) for s in rsx.splits] == [
        ("train", "sj9909/ReasonSegX_train", "train"), ("val", "sj9909/ReasonSegX_val", "test"),
        ("test", "sj9909/ReasonSegX_test", "test")]
    assert {s.source for s in lookup("muse").splits} == {"muse-val", "muse-few", "muse-many"}
    assert [s.repo for s in lookup("mmr").splits][-1] == "sj9909/MMR_test_part"
    assert lookup("reasonseg").split("test").repo == "Ricky06662/ReasonSeg_test"


def test_known_name_opens_lazily_and_uses_the_local_data_root(tmp_path, monkeypatch):
    h.dataset(h.make_rows(3)).save_to_disk(str(tmp_path / "data" / "MUSE" / "test_few"))
    monkeypatch.setenv("REASONSEG_X_DATA", str(tmp_path / "data"))
    src = open_source("muse")
    assert isinstance(src, CatalogSource) and src.splits() == ["val", "test_few", "test_many"]
    gts = list(src.ground_truth("test_few"))
    assert len(gts) == 3 and gts[0].groups["source"] == "muse-few"


def test_local_folder_kinds_are_detected(tmp_path):
    h.write_hub_folder(tmp_path / "hub", {"test": h.make_rows(2)})
    assert type(open_source(str(tmp_path / "hub"))).__name__ == "HFSource"
    assert open_source(str(tmp_path / "hub")).spec == str(tmp_path / "hub")


@pytest.mark.parametrize("spec, message", [
    ("nonsense", "unknown data spec 'nonsense'; accepted data specs: 'mini'"),
    ("synth:abc", "bad synth spec"),
    ("./no/such/folder", "no such file or folder"),
])
def test_bad_specs_list_the_accepted_forms(spec, message):
    with pytest.raises((InvalidInputError, SourceNotFoundError), match=message):
        open_source(spec)


def test_a_folder_that_is_no_dataset_is_rejected(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InvalidInputError, match="not a dataset folder"):
        open_source(str(tmp_path))


def test_mini_is_the_embedded_compact_split():
    from reasonseg_x._resources import shipped_dir

    if not (shipped_dir("annotations") / "mini").is_dir():
        pytest.skip("annotations/mini not built yet")
    src = open_source("mini")
    gts = list(src.ground_truth())
    assert len(gts) >= 40 and all(g.groups.get("source") == "synth" for g in gts)


def test_synth_spec_goes_to_the_renderer():
    pytest.importorskip("reasonseg_x.data.synth", exc_type=ImportError)
    try:
        from reasonseg_x.data.synth import SynthSource  # noqa: F401
    except ImportError:
        pytest.skip("SynthSource not written yet")
    src = open_source("synth:3:5")
    assert src.spec == "synth:3:5" and src.num_samples() == 3


def _timed_open(spec: str, env_extra: dict[str, str], tmp_path) -> tuple[float, str]:
    code = textwrap.dedent(f"""
        import time
        from reasonseg_x.data.resolve import open_source
        from reasonseg_x.errors import SourceNotFoundError
        t0 = time.perf_counter()
        try:
            src = open_source({spec!r})
            list(src.ground_truth())
        except SourceNotFoundError as exc:
            print(f"{{time.perf_counter() - t0:.3f}}")
            print(exc)
        else:
            print("opened?!")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "REASONSEG_X_DATA"))}
    env.update({"HF_HOME": str(tmp_path / "hf"), "REASONSEG_X_CACHE": str(tmp_path / "cache"), **env_extra})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    first, _, rest = out.stdout.partition("\n")
    return float(first), rest


@pytest.mark.parametrize("spec", ["sj9909/ReasonSegX_test", "reasonseg-x"])
def test_offline_hub_id_fails_at_once(spec, tmp_path):
    seconds, message = _timed_open(spec, {"HF_HUB_OFFLINE": "1"}, tmp_path)
    assert seconds < 3.0
    assert "HF_HUB_OFFLINE" in message and "--data /path/to/folder" in message and "save_to_disk" in message


def test_unreachable_endpoint_fails_at_once(tmp_path):
    seconds, message = _timed_open("sj9909/ReasonSegX_test", {"HF_ENDPOINT": "http://127.0.0.1:9"}, tmp_path)
    assert seconds < 3.0 and "cannot reach the Hugging Face Hub" in message and "--data" in message


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_the_offline_message_names_the_variable_that_is_set(variable, monkeypatch, tmp_path):
    from huggingface_hub import constants

    from reasonseg_x.data import hub

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_local_snapshot", lambda repo: None)
    monkeypatch.setenv(variable, "1")
    with pytest.raises(SourceNotFoundError, match=f"not in the local cache and {variable} is set"):
        hub.fetch_dataset_repo("someone/data")


def test_offline_flag_set_after_import_is_still_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from reasonseg_x.data.hub import is_offline

    assert is_offline()


def test_load_dataset_has_typed_features(tmp_path):
    import datasets

    import reasonseg_x

    h.write_hub_folder(tmp_path / "hub", {"test": h.make_rows(4), "val": h.make_rows(2, seed=9)})
    dd = reasonseg_x.load_dataset(str(tmp_path / "hub"), cache_dir=str(tmp_path / "hfc"))
    assert isinstance(dd, datasets.DatasetDict) and dd["test"].num_rows == 4 and dd["val"].num_rows == 2
    ds = reasonseg_x.load_dataset(str(tmp_path / "hub"), split="test", cache_dir=str(tmp_path / "hfc"))
    assert isinstance(ds.features["reasoning_type"], datasets.ClassLabel)
    assert isinstance(ds.features["image"], datasets.Image)
    row = ds[0]
    assert row["id"] == "ann000" and row["target"]["size"] == [24, 32] and row["ignore"] is None
    assert ds.features["reasoning_type"].int2str(row["reasoning_type"]) == "function_purpose"


def test_load_dataset_is_not_served_stale_after_a_query_is_edited(tmp_path):
    import json

    import reasonseg_x

    h.write_lisa_folder(tmp_path / "lisa", n=2)
    cache = str(tmp_path / "hfc")
    assert reasonseg_x.load_dataset(str(tmp_path / "lisa"), cache_dir=cache)[0]["text"] == "what is 0"
    ann = tmp_path / "lisa" / "val" / "img_0.json"
    data = json.loads(ann.read_text(encoding="utf-8"))
    data["text"] = ["edited query"]  # same masks, so the ground-truth fingerprint is unchanged
    before = open_source(str(tmp_path / "lisa"))
    fingerprints = (before.fingerprint(), before.input_fingerprint())
    ann.write_text(json.dumps(data), encoding="utf-8")
    after = open_source(str(tmp_path / "lisa"))
    assert after.fingerprint() == fingerprints[0] and after.input_fingerprint() != fingerprints[1]
    assert reasonseg_x.load_dataset(str(tmp_path / "lisa"), cache_dir=cache)[0]["text"] == "edited query"


def test_input_fingerprint_of_synth_renders_nothing(monkeypatch):
    from reasonseg_x.data.synth import source as synth_source

    monkeypatch.setattr(synth_source, "render_sample", lambda *a: pytest.fail("rendered"))
    monkeypatch.setattr(synth_source, "render_ground_truth", lambda *a: pytest.fail("rendered"))
    a, b = open_source("synth:100000:1"), open_source("synth:100000:2")
    assert a.input_fingerprint() == open_source("synth:100000:1").input_fingerprint() != b.input_fingerprint()


def test_load_dataset_names_the_bad_row_not_a_generic_generation_error(tmp_path):
    import reasonseg_x

    rows = h.make_rows(3)
    rows[1]["image"] = {"bytes": b"\x89PNG\r\n\x1a\nnot really", "path": None}
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    with pytest.raises(InvalidInputError, match=r"test-00000-of-00001\.parquet:row 1: corrupt or unreadable image"):
        reasonseg_x.load_dataset(str(tmp_path / "hub"), cache_dir=str(tmp_path / "hfc"))
    with pytest.warns(UserWarning, match=r"skipped 1 invalid row\(s\), e\.g\. .*:row 1: corrupt or unreadable image"):
        ds = reasonseg_x.load_dataset(str(tmp_path / "hub"), skip_invalid=True, cache_dir=str(tmp_path / "hfc"))
    assert ds["id"] == ["ann000", "ann002"]


def test_lisa_folder_opens_and_round_trips_through_compact(tmp_path):
    from reasonseg_x.data.compact import write_compact

    h.write_lisa_folder(tmp_path / "lisa")
    src = open_source(str(tmp_path / "lisa"))
    assert type(src).__name__ == "LisaSource" and src.spec == str(tmp_path / "lisa")
    gts = list(src.ground_truth(src.splits()[0]))
    assert len(gts) == 3 and all(g.ignore is not None for g in gts)
    write_compact({s: src.samples(s) for s in src.splits()}, tmp_path / "out")
    back = open_source(str(tmp_path / "out"))
    for split in src.splits():
        assert back.fingerprint(split) == src.fingerprint(split)
    a, b = next(src.samples()), next(back.samples())
    assert a.queries == b.queries and a.query_kind == b.query_kind and a.ignore == b.ignore


def test_a_cached_hub_snapshot_is_used_offline(tmp_path):
    """A repo already in the Hub cache opens with HF_HUB_OFFLINE=1 (no download, no probe)."""
    snapshot = tmp_path / "hf" / "hub" / "datasets--someone--ReasonSegX_val" / "snapshots" / ("a" * 40)
    h.write_hub_folder(snapshot, {"test": h.make_rows(3)})
    refs = snapshot.parents[1] / "refs"
    refs.mkdir()
    (refs / "main").write_text("a" * 40)
    code = textwrap.dedent("""
        from reasonseg_x.data.resolve import open_source
        src = open_source("someone/ReasonSegX_val")
        print(src.splits(), src.num_samples())
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update({"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "REASONSEG_X_CACHE": str(tmp_path / "c")})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['test'] 3"


def test_reference_download_folders_get_their_source_tag(tmp_path):
    h.dataset(h.make_rows(2)).save_to_disk(str(tmp_path / "data" / "MMR" / "test_obj"))
    src = open_source(str(tmp_path / "data" / "MMR" / "test_obj"))
    assert src.splits() == ["test"] and {g.groups["source"] for g in src.ground_truth()} == {"mmr-obj"}
