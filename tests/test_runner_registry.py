"""The predictor registry: static listing without torch, plugins, typed model arguments."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from _runner_helpers import REPO_DIR, subprocess_env
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.predictors import registry
from reasonseg_x.predictors.registry import (PredictorArg, PredictorSpec, bind_arguments, convert_value,
                                             list_predictors, load_predictor, parse_model_args)

BUILTINS = {"oracle", "empty", "full", "predictions", "star", "visionreasoner", "segzero", "gt-box-sam"}


def test_builtins_are_listed_with_factories_and_descriptions():
    specs = {s.name: s for s in list_predictors(include_plugins=False)}
    assert BUILTINS <= set(specs)
    assert specs["star"].factory == "reasonseg_x.star.predictor:StarPredictor"
    assert specs["visionreasoner"].factory == "reasonseg_x.baselines.visionreasoner:VisionReasonerPredictor"
    assert specs["segzero"].factory == "reasonseg_x.baselines.segzero:SegZeroPredictor"
    assert specs["gt-box-sam"].factory == "reasonseg_x.baselines.gt_box_sam:GtBoxSamPredictor"
    for spec in specs.values():
        assert spec.description and "\n" not in spec.description


@pytest.mark.parametrize("code", [
    "from reasonseg_x.predictors.registry import list_predictors; list_predictors()",
    "from reasonseg_x.predictors.registry import bind_arguments; bind_arguments('star', {'tts': '8'})",
    "from typer.testing import CliRunner; from reasonseg_x.cli import app; "
    "r = CliRunner().invoke(app, ['models']); assert r.exit_code == 0, r.output; assert 'gt-box-sam' in r.output",
    "import tempfile; from typer.testing import CliRunner; from reasonseg_x.cli import app; "
    "r = CliRunner().invoke(app, ['eval', '-m', 'oracle', '-q', '-o', tempfile.mkdtemp()]); "
    "assert r.exit_code == 0, r.output",
])
def test_listing_and_binding_never_import_torch(code):
    script = f"import sys\n{code}\nbad = [m for m in ('torch', 'transformers') if m in sys.modules]\nassert not bad, bad\n"
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_DIR, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_parse_model_args():
    assert parse_model_args(["tts=8", "checkpoint=a=b", "max-new-tokens=5"]) == {
        "tts": "8", "checkpoint": "a=b", "max_new_tokens": "5"}
    with pytest.raises(InvalidInputError, match="KEY=VALUE"):
        parse_model_args(["tts"])
    with pytest.raises(InvalidInputError, match="twice"):
        parse_model_args(["a=1", "a=2"])


def test_strings_convert_to_declared_types():
    bound = bind_arguments("star", {"tts": "8", "merge_lora": "yes", "base_model": "none", "max_new_tokens": "64"})
    assert bound.args == {"base_model": None, "max_new_tokens": 64, "merge_lora": True, "tts": 8}
    assert convert_value(PredictorArg("x", "float"), "0.5") == 0.5
    assert convert_value(PredictorArg("x", "float"), 2) == 2.0
    assert convert_value(PredictorArg("x", "bool"), "off") is False
    with pytest.raises(InvalidInputError, match="'tts' expects int"):
        bind_arguments("star", {"tts": "many"})
    with pytest.raises(InvalidInputError, match="expects bool"):
        convert_value(PredictorArg("x", "bool"), "maybe")
    with pytest.raises(InvalidInputError, match="one of ok, no_target"):
        bind_arguments("empty", {"status": "nope"})


def test_unknown_argument_lists_the_known_ones():
    with pytest.raises(InvalidInputError) as info:
        bind_arguments("empty", {"colour": "red"})
    assert "no argument 'colour'" in str(info.value) and "known arguments: status" in str(info.value)
    with pytest.raises(InvalidInputError, match="known arguments: none"):
        load_predictor("oracle", extra="1")


def test_unknown_model_suggests_a_close_name():
    with pytest.raises(InvalidInputError, match="Did you mean 'oracle'") as info:
        bind_arguments("oracel")
    assert "Known models:" in str(info.value)


def test_predictions_path_in_the_name(tmp_path):
    bound = bind_arguments(f"predictions:{tmp_path}/p.jsonl")
    assert bound.name == "predictions" and bound.args["path"] == f"{tmp_path}/p.jsonl"
    assert "skip_invalid" not in bound.args  # only given arguments are passed: the factory keeps its defaults
    with pytest.raises(InvalidInputError, match="needs argument"):
        bind_arguments("predictions")
    with pytest.raises(InvalidInputError, match="takes no ':VALUE'"):
        bind_arguments("oracle:x")


def test_load_builtins_and_import_paths():
    from reasonseg_x.baselines.constant import EmptyPredictor
    from reasonseg_x.baselines.oracle import OraclePredictor

    assert isinstance(load_predictor("oracle"), OraclePredictor)
    empty = load_predictor("empty", status="no_target")
    assert isinstance(empty, EmptyPredictor) and empty.status == "no_target"
    slow = load_predictor("_runner_helpers:HashPredictor", delay="0.25")
    assert slow.delay == 0.25  # typed from the factory's default
    with pytest.raises(InvalidInputError, match="known arguments: delay, log"):
        load_predictor("_runner_helpers:HashPredictor", speed="1")
    with pytest.raises(InvalidInputError, match="cannot import"):
        load_predictor("no_such_pkg.mod:Thing")


def test_model_adapter_missing_module_is_a_clear_error(monkeypatch):
    from reasonseg_x.predictors.catalog import CatalogEntry

    spec = registry._builtin_spec(CatalogEntry("ghost", "reasonseg_x_no_such_module:Ghost", "x", extra="models"))
    builtins = registry._builtins()
    monkeypatch.setattr(registry, "_builtins", lambda: builtins + (spec,))
    with pytest.raises(InvalidInputError, match=r"pip install 'reasonseg-x\[models\]'"):
        load_predictor("ghost")


# --- plugins via entry points -------------------------------------------------------------------

PLUGIN_SPEC = PredictorSpec("ignored-name", "_runner_helpers:HashPredictor", "A plugin model.",
                            (PredictorArg("delay", "float", 0.0, "seconds per query"),))


def plugin_factory(level: int = 3, name: str = "x"):
    """A factory-style plugin.

    Second line is not part of the description."""
    from _runner_helpers import HashPredictor

    predictor = HashPredictor()
    predictor.level = level
    return predictor


class FakeEntryPoint(SimpleNamespace):
    def load(self):
        return self.target() if callable(self.target) and self.lazy else self.target


def _eps(monkeypatch, *eps):
    monkeypatch.setattr(registry, "_entry_points", lambda: list(eps))


def _broken():
    raise ImportError("plugin needs torch 9")


def test_entry_point_plugins_are_discovered(monkeypatch):
    _eps(monkeypatch,
         FakeEntryPoint(name="my-model", value="pkg.reg:SPEC", dist=SimpleNamespace(name="my-pkg"),
                        target=PLUGIN_SPEC, lazy=False),
         FakeEntryPoint(name="fac", value="pkg.reg:plugin_factory", dist=None, target=plugin_factory, lazy=False),
         FakeEntryPoint(name="broken", value="pkg.broken:SPEC", dist=None, target=_broken, lazy=True),
         FakeEntryPoint(name="oracle", value="evil:Oracle", dist=None, target=PLUGIN_SPEC, lazy=False))
    specs = {s.name: s for s in list_predictors()}
    assert specs["my-model"].description == "A plugin model."
    assert specs["my-model"].origin.startswith("plugin my-pkg")
    assert specs["fac"].description == "A factory-style plugin."
    assert [a.name for a in specs["fac"].args] == ["level", "name"] and specs["fac"].args[0].type == "int"
    assert "plugin needs torch 9" in specs["broken"].load_error
    assert specs["oracle"].origin == "built-in"  # plugins cannot shadow built-ins

    predictor = load_predictor("my-model", delay="0.5")
    assert predictor.delay == 0.5
    assert load_predictor("fac", level="7").level == 7
    with pytest.raises(InvalidInputError, match="failed to load"):
        load_predictor("broken")


def test_models_command_lists_plugins(monkeypatch):
    from typer.testing import CliRunner

    from reasonseg_x.cli import app

    _eps(monkeypatch, FakeEntryPoint(name="my-model", value="pkg.reg:SPEC", dist=None, target=PLUGIN_SPEC, lazy=False))
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    import json

    names = [s["name"] for s in json.loads(result.output)]
    assert BUILTINS <= set(names) and "my-model" in names
    result = CliRunner().invoke(app, ["models", "predictions"])
    assert result.exit_code == 0 and "predictions:PATH" in result.output
    result = CliRunner().invoke(app, ["models", "nope"])
    assert result.exit_code == 2


@pytest.mark.parametrize("name", ["star", "visionreasoner", "segzero", "gt-box-sam"])
def test_model_arguments_come_from_one_declaration(name):
    """The listed arguments are the factory's Options fields, with the catalog's defaults and pins:
    every field is either listed or pinned, and the options the constructor builds from the listed
    defaults are exactly the catalog's defaults (nothing re-declared elsewhere can drift)."""
    import dataclasses

    from reasonseg_x.predictors.arguments import build_options
    from reasonseg_x.predictors.catalog import catalog_entry

    spec = {s.name: s for s in list_predictors(include_plugins=False)}[name]
    factory = registry._import_factory(spec)
    entry = catalog_entry(name)
    field_names = {f.name for f in dataclasses.fields(factory.Options)}
    assert {a.name for a in spec.args} | set(entry.pinned) == field_names
    assert not {a.name for a in spec.args} & set(entry.pinned)
    built = build_options(factory.Options, {a.name: a.default for a in spec.args}, model=name,
                          defaults=entry.defaults, pinned=entry.pinned)
    for key, value in {**entry.defaults, **entry.pinned}.items():
        assert getattr(built, key) == value
    if entry.pinned:
        key, value = next(iter(entry.pinned.items()))
        with pytest.raises(InvalidInputError, match=f"fixes {key}="):
            build_options(factory.Options, {key: "32" if key == "tts" else "star"}, model=name,
                          defaults=entry.defaults, pinned=entry.pinned)
    bound = bind_arguments(name, {"temperature": "0.7"} if name == "star" else {})
    assert bound.spec.factory == spec.factory


def test_catalog_lists_each_builtin_with_its_extra_and_default_checkpoint():
    from reasonseg_x.predictors.catalog import builtin_models

    entries = {e.name: e for e in builtin_models()}
    assert entries["star"].default_checkpoint == "sj9909/StAR-7B"
    assert entries["star"].extra == "models" and entries["oracle"].extra == ""
    assert {"oracle", "empty", "full", "predictions", "star", "visionreasoner", "segzero", "gt-box-sam"} <= set(entries)


def test_models_listing_is_one_line_per_model_then_its_arguments(monkeypatch):
    from typer.testing import CliRunner

    from reasonseg_x.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    _eps(monkeypatch)
    lines = CliRunner().invoke(app, ["models"]).output.splitlines()
    specs = {s.name: s for s in list_predictors(include_plugins=False)}
    assert lines[0].split(None, 1) == ["oracle", specs["oracle"].description]
    empty = next(i for i, line in enumerate(lines) if line.startswith("empty "))
    assert lines[empty + 1].split() == ["args:", "status=ok"]
    star = next(i for i, line in enumerate(lines) if line.startswith("star "))
    star_args = next(i for i in range(star, len(lines)) if lines[i].lstrip().startswith("args:"))
    assert "[extra: models]" in " ".join(lines[star:star_args])
    assert lines[star_args].split()[:2] == ["args:", "checkpoint=sj9909/StAR-7B,"]
    detail = CliRunner().invoke(app, ["models", "star"]).output
    assert "install: pip install 'reasonseg-x[models]'" in detail
    assert "cluster_agg_mode: str = 'best'  [best | consensus]" in detail


def test_a_pinned_value_is_named_when_set():
    with pytest.raises(InvalidInputError, match=r"model 'segzero' fixes tts=1; it cannot be set \(got '32'\)"):
        bind_arguments("segzero", {"tts": "32"})


# --- one binder for -a strings and Python keywords -------------------------------------------------

STAR_STRINGS = {"tts": "4", "temperature": "0.7", "top_k": "none", "keep_answers": "false", "seed": "7",
                "backend": "hf", "checkpoint": "some/ckpt"}
STAR_VALUES = {"tts": 4, "temperature": 0.7, "top_k": None, "keep_answers": False, "seed": 7, "backend": "hf",
               "checkpoint": "some/ckpt"}


def test_model_arg_strings_and_keywords_bind_to_the_same_options():
    """`-a tts=4` and `tts=4` give the same bound arguments and the same Options the constructor
    builds (the catalog's defaults filled in either way)."""
    from reasonseg_x.predictors.catalog import catalog_options
    from reasonseg_x.star.predictor import StarPredictor

    from_strings, from_values = bind_arguments("star", STAR_STRINGS), bind_arguments("star", STAR_VALUES)
    assert from_strings.args == from_values.args
    options = from_strings.options()
    assert options == from_values.options() == catalog_options("star", StarPredictor.Options, STAR_VALUES)
    assert options == catalog_options("star", StarPredictor.Options, STAR_STRINGS)
    assert options.tts == 4 and options.keep_answers is False and options.style == "star"  # the catalog's default


@pytest.mark.parametrize("value", ["segzero", "star"])
def test_a_pinned_value_is_refused_by_both_binders(value):
    """Seg-Zero pins style=segzero: setting it is refused as `-a` and as a keyword, even to the
    pinned value itself, with one message."""
    from reasonseg_x.baselines.segzero import SegZeroPredictor
    from reasonseg_x.predictors.catalog import catalog_options

    with pytest.raises(InvalidInputError) as by_string:
        bind_arguments("segzero", {"style": value})
    with pytest.raises(InvalidInputError) as by_keyword:
        catalog_options("segzero", SegZeroPredictor.Options, {"style": value})
    assert str(by_string.value) == str(by_keyword.value)
    assert f"model 'segzero' fixes style='segzero'; it cannot be set (got {value!r})" in str(by_string.value)


def test_gt_box_sam_takes_the_catalogs_defaults(monkeypatch):
    """gt-box-sam's constructor binds through the catalog like every built-in: a default the catalog
    sets reaches its options."""
    pytest.importorskip("torch")
    from dataclasses import replace

    from reasonseg_x.baselines.gt_box_sam import GtBoxSamPredictor
    from reasonseg_x.predictors import catalog
    from reasonseg_x.star.segment import segmenters

    entries = tuple(replace(e, defaults={"point": "inside", "per_component": True}) if e.name == "gt-box-sam" else e
                    for e in catalog.builtin_models())
    monkeypatch.setattr(catalog, "builtin_models", lambda: entries)
    monkeypatch.setattr(segmenters, "load_segmenter", lambda *a, **k: "a segmenter")
    predictor = GtBoxSamPredictor(device="cpu")
    assert predictor.point == "inside" and predictor.per_component is True
    assert GtBoxSamPredictor(device="cpu", point="none").point == "none"
    assert bind_arguments("gt-box-sam", {"point": "center"}).options().per_component is True


def test_a_mistyped_model_arg_suggests_the_close_name():
    with pytest.raises(InvalidInputError, match=r"no argument 'temprature' \(did you mean 'temperature'\?\)"):
        bind_arguments("star", {"temprature": "0.7"})
    from reasonseg_x.predictors.catalog import catalog_options
    from reasonseg_x.star.predictor import StarPredictor

    with pytest.raises(InvalidInputError, match=r"did you mean 'max_new_tokens'"):
        catalog_options("star", StarPredictor.Options, {"max_new_token": 12})


def test_model_names_in_other_case():
    """A name that matches one model ignoring case is that model (recorded canonically); a name
    that matches none gets the case-blind closest suggestion."""
    assert bind_arguments("StAR").name == "star" and bind_arguments("ORACLE").spec.name == "oracle"
    assert bind_arguments("Predictions:/tmp/p.jsonl").args["path"] == "/tmp/p.jsonl"
    with pytest.raises(InvalidInputError, match="Did you mean 'star'"):
        bind_arguments("STARR")
    assert registry.canonical_name("Star", ["star", "STAR"]) is None  # ambiguous: never guessed
    assert registry.canonical_name("STAR", ["star", "STAR"]) == "STAR"
