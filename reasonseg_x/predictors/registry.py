"""The predictor registry: built-in models, third-party plugins, and typed model arguments.

Every predictor is described by a :class:`PredictorSpec`: static metadata (name, ``"module:attr"``
factory path, a one-line description, declared arguments). Listing models only reads these specs,
so ``reasonseg-x models`` never imports a model module or torch.

Third-party packages register predictors in the entry-point group ``reasonseg_x.predictors``::

    [project.entry-points."reasonseg_x.predictors"]
    my-model = "my_package.registry:MY_MODEL_SPEC"

The entry point should point at a :class:`PredictorSpec` defined in a light module (no torch at
import time); its ``factory`` names the heavy class, imported only when the model is loaded.
An entry point may also point straight at a factory (a class or function): its docstring's first
line becomes the description and its keyword parameters the arguments (listing then imports that
module). The entry point's name is the model's name; built-in names cannot be overridden.

A model can also be named ad hoc as ``package.module:Factory`` (an importable path), which is
how tests and one-off experiments plug in a predictor without packaging it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from reasonseg_x.errors import InvalidInputError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PredictorArg",
    "PredictorSpec",
    "BoundModel",
    "list_predictors",
    "get_spec",
    "bind_arguments",
    "load_predictor",
    "parse_model_args",
    "convert_value",
]

ENTRY_POINT_GROUP = "reasonseg_x.predictors"

#: argument types a spec may declare; values given as strings are converted to these
ARG_TYPES = ("str", "int", "float", "bool", "path", "any")
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}
_NONE = {"none", "null"}


@dataclass(frozen=True)
class PredictorArg:
    """One keyword argument of a predictor's factory, as ``--model-arg NAME=VALUE`` sets it."""

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    required: bool = False
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in ARG_TYPES:
            raise ValueError(f"argument {self.name!r}: type must be one of {ARG_TYPES}, got {self.type!r}")

    def describe(self) -> str:
        """``name: type = default`` as the model list prints it."""
        text = f"{self.name}: {self.type}"
        if self.required:
            return text + " (required)"
        return f"{text} = {self.default!r}"


@dataclass(frozen=True)
class PredictorSpec:
    """Static description of a predictor: enough to list it and check arguments without importing it.

    ``factory`` is ``"module:attr"``, called with the bound keyword arguments. ``path_arg`` lets
    the name carry one argument after a colon (``predictions:PATH`` sets ``path``). ``open_args``
    accepts undeclared arguments that the factory's signature takes (checked at load time).
    """

    name: str
    factory: str
    description: str
    args: tuple[PredictorArg, ...] = ()
    path_arg: str | None = None
    origin: str = "built-in"
    requires: str = ""
    open_args: bool = False
    load_error: str | None = None
    #: the factory object itself when discovery already imported it (factory-style plugins)
    loaded: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def arg(self, name: str) -> PredictorArg | None:
        for arg in self.args:
            if arg.name == name:
                return arg
        return None


@dataclass(frozen=True)
class BoundModel:
    """A model name resolved to its spec plus fully typed arguments: what a run's identity records."""

    spec: PredictorSpec
    name: str
    args: dict[str, Any] = field(default_factory=dict)

    def instantiate(self) -> Any:
        factory = _import_factory(self.spec)
        try:
            inspect.signature(factory).bind(**self.args)
        except TypeError as exc:
            raise InvalidInputError(f"model {self.name!r} ({self.spec.factory}) does not take the arguments "
                                    f"{self.args}: {exc}") from None
        except ValueError:
            pass  # no introspectable signature (a builtin or C factory): let the call decide
        predictor = factory(**self.args)
        if not callable(getattr(predictor, "predict", None)):
            raise InvalidInputError(f"model {self.name!r}: factory {self.spec.factory} returned "
                                    f"{type(predictor).__name__}, which has no predict(queries) method")
        return predictor


def _a(name: str, type: str = "str", default: Any = None, help: str = "", **kw: Any) -> PredictorArg:
    return PredictorArg(name, type, default, help, **kw)


_DEVICE_ARGS = (
    _a("device", default="auto", help="'auto', 'cpu', 'cuda', 'cuda:N' (under torchrun: the local rank's GPU)"),
    _a("dtype", default="auto", help="'auto' (bf16 on GPU, float32 on CPU), 'bfloat16', 'float16', 'float32'"),
)
_SEGMENTER = _a("segmenter", default="sam2.1-hiera-large",
                help="SAM backend (sam2.1-hiera-large, sam-vit-h, ...) or a local folder")
_BATCH = _a("batch_size", "int", None, "generation batch inside the model (default: the runner's --batch-size)")
_TTS = (
    _a("tts", "int", 1, "answers per query: 1 = greedy, N > 1 = N sampled answers aggregated"),
    _a("aggregator", default="majority_vote", help="how N answers combine (see reasonseg_x.tts)"),
    _a("seed", "int", 42, "sampling seed for tts > 1"),
)


def _max_tokens(default: int) -> PredictorArg:
    return _a("max_new_tokens", "int", default, "generation budget per answer")


_BUILTINS: tuple[PredictorSpec, ...] = (
    PredictorSpec("oracle", "reasonseg_x.baselines.oracle:OraclePredictor",
                  "The ground-truth mask (ignore merged in): gIoU = cIoU = 1.0 where targets exist; a pipeline check."),
    PredictorSpec("empty", "reasonseg_x.baselines.constant:EmptyPredictor",
                  "An empty mask for every sample: the floor of every protocol.",
                  (_a("status", default="ok", help="'ok' (empty mask) or 'no_target' (the model says nothing matches)",
                      choices=("ok", "no_target")),)),
    PredictorSpec("full", "reasonseg_x.baselines.constant:FullPredictor",
                  "The whole image for every sample: measures how much of the images targets cover."),
    PredictorSpec("predictions", "reasonseg_x.baselines.replay:ReplayPredictor",
                  "Replays a predictions file (predictions:PATH) through the runner, e.g. to re-shard or re-score.",
                  (_a("path", "path", help="the predictions.jsonl (or PNG folder) to replay", required=True),
                   _a("skip_invalid", "bool", False, "count malformed lines as failures instead of stopping")),
                  path_arg="path"),
    PredictorSpec("star", "reasonseg_x.star.predictor:StarPredictor",
                  "StAR: a LoRA-tuned Qwen-VL reasons, answers boxes+points, SAM 2.1 segments; optional majority vote.",
                  (_a("checkpoint", default="sj9909/StAR-7B", help="LoRA adapter (Hub id or folder): StAR-7B/8B/32B"),
                   _a("base_model", default=None, help="base VLM (default: the one the adapter names)"),
                   *_TTS,
                   _a("temperature", "float", 1.0, "sampling temperature for tts > 1"),
                   _a("top_p", "float", 0.9, "nucleus sampling for tts > 1"),
                   _a("merge_lora", "bool", False, "merge the adapter into the weights (faster generation)"),
                   _a("cluster_agg_mode", default="best", choices=("best", "consensus"),
                      help="majority vote: a kept cluster's mask is its best member or a score-weighted pixel vote"),
                   _a("no_object_vote_threshold", "float", 0.5, "majority vote: share of 'no object' votes that wins"),
                   _a("mask_iou_cluster_threshold", "float", 0.85, "majority vote: mask IoU that joins a cluster"),
                   _a("cluster_vote_threshold", "float", 0.2, "majority vote: least vote ratio a cluster keeps"),
                   _a("backend", default="hf", choices=("hf", "vllm"), help="sampling backend (vllm: optional extra)"),
                   _SEGMENTER, _max_tokens(1024), _BATCH, *_DEVICE_ARGS),
                  requires="models", open_args=True),
    PredictorSpec("visionreasoner", "reasonseg_x.baselines.visionreasoner:VisionReasonerPredictor",
                  "VisionReasoner-7B (Qwen2.5-VL) with SAM: the paper's strongest open baseline.",
                  (_a("checkpoint", default="Ricky06662/VisionReasoner-7B", help="model weights (Hub id or folder)"),
                   *_TTS, _SEGMENTER, _max_tokens(2048), _BATCH, *_DEVICE_ARGS),
                  requires="models", open_args=True),
    PredictorSpec("segzero", "reasonseg_x.baselines.segzero:SegZeroPredictor",
                  "Seg-Zero-7B (Qwen2.5-VL) with SAM: one object, box plus two points.",
                  (_a("checkpoint", default="Ricky06662/Seg-Zero-7B", help="model weights (Hub id or folder)"),
                   _SEGMENTER, _max_tokens(1024), _BATCH, *_DEVICE_ARGS),
                  requires="models", open_args=True),
    PredictorSpec("gt-box-sam", "reasonseg_x.baselines.gt_box_sam:GtBoxSamPredictor",
                  "SAM prompted with the ground-truth box and a point inside: the localisation upper bound.",
                  (_SEGMENTER, *_DEVICE_ARGS,
                   _a("point", default="center", help="positive point: the box centre, a point inside the mask, or none",
                      choices=("center", "inside", "none")),
                   _a("per_component", "bool", False, "one prompt per connected component of the target")),
                  requires="models", open_args=True),
)


# --- discovery --------------------------------------------------------------------------------


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _spec_from_entry_point(ep: Any) -> PredictorSpec:
    origin = f"plugin {ep.value}"
    dist = getattr(ep, "dist", None)
    if dist is not None and getattr(dist, "name", None):
        origin = f"plugin {dist.name} ({ep.value})"
    try:
        target = ep.load()
    except Exception as exc:  # a broken plugin must not break listing
        return PredictorSpec(ep.name, ep.value, "(failed to load)", origin=origin,
                             load_error=f"{type(exc).__name__}: {exc}")
    if isinstance(target, PredictorSpec):
        return replace(target, name=ep.name, origin=origin)
    if callable(target):
        return _spec_from_factory(ep.name, target, ep.value, origin)
    return PredictorSpec(ep.name, ep.value, "(invalid entry point)", origin=origin,
                         load_error=f"entry point {ep.value} is a {type(target).__name__}, "
                                    "expected a PredictorSpec or a factory")


def _spec_from_factory(name: str, factory: Callable[..., Any], path: str, origin: str) -> PredictorSpec:
    doc = inspect.getdoc(factory) or ""
    description = doc.strip().splitlines()[0] if doc.strip() else f"{path}"
    args = tuple(_args_from_signature(factory))
    return PredictorSpec(name, path, description, args, origin=origin, open_args=True, loaded=factory)


def _args_from_signature(factory: Callable[..., Any]) -> Iterable[PredictorArg]:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return []
    out = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
            continue
        required = p.default is inspect.Parameter.empty
        default = None if required else p.default
        out.append(PredictorArg(p.name, _type_of(p.annotation, default), default, required=required))
    return out


def _type_of(annotation: Any, default: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    text = str(text).replace("typing.", "")
    for kind in ("bool", "int", "float"):
        if text == kind or text.startswith(kind + " |") or text.endswith("| " + kind):
            return kind
    if "Path" in text:
        return "path"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if text in ("str", "str | None", "Optional[str]", "None | str") or isinstance(default, str):
        return "str"
    return "any"  # unannotated or an object parameter: strings pass through, objects are not checked


def list_predictors(*, include_plugins: bool = True) -> list[PredictorSpec]:
    """Built-ins then plugins (sorted by name). Imports no model module; a broken plugin is listed
    with its ``load_error`` instead of raising."""
    specs = list(_BUILTINS)
    if include_plugins:
        taken = {s.name for s in specs}
        plugins = []
        for ep in _entry_points():
            if ep.name in taken:
                continue  # built-in names win; a plugin cannot shadow them
            taken.add(ep.name)
            plugins.append(_spec_from_entry_point(ep))
        specs.extend(sorted(plugins, key=lambda s: s.name))
    return specs


def get_spec(name: str) -> tuple[PredictorSpec, dict[str, str]]:
    """Resolve a model name to its spec plus the argument carried in the name (``predictions:PATH``).

    Also accepts an importable ``package.module:Factory`` path.
    """
    name = name.strip()
    if not name:
        raise InvalidInputError("empty model name; see `reasonseg-x models`")
    head, sep, tail = name.partition(":")
    specs = {s.name: s for s in list_predictors(include_plugins=False)}
    if head not in specs:  # only look at plugins (importing their spec modules) when needed
        specs = {s.name: s for s in list_predictors(include_plugins=True)}
    if head in specs:  # a model name wins over an import path of the same spelling
        spec = specs[head]
        if spec.load_error:
            raise InvalidInputError(f"model {head!r} ({spec.origin}) failed to load: {spec.load_error}")
        if sep:
            if spec.path_arg is None:
                raise InvalidInputError(f"model {head!r} takes no ':VALUE' suffix (got {name!r})")
            if not tail:
                raise InvalidInputError(f"model {head!r} needs a value after the colon, e.g. {head}:PATH")
            return spec, {spec.path_arg: tail}
        return spec, {}
    if sep and tail and _looks_like_import_path(head, tail):
        factory = _import_path(name)
        spec = _spec_from_factory(name, factory, name, origin="import path")
        return spec, {}
    known = sorted(specs)
    close = difflib.get_close_matches(head, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise InvalidInputError(f"unknown model {name!r}.{hint} Known models: {', '.join(known)} "
                            "(or an importable 'package.module:Factory').")


def _looks_like_import_path(module: str, attr: str) -> bool:
    parts = module.split(".")
    return all(p.isidentifier() for p in parts) and all(p.isidentifier() for p in attr.split("."))


def _import_path(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise InvalidInputError(f"cannot import {module_name!r} for model factory {path!r}: {exc}") from None
        raise
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InvalidInputError(f"module {module_name!r} has no attribute {attr!r} (model factory {path!r})") from None
    return obj


def _import_factory(spec: PredictorSpec) -> Callable[..., Any]:
    if spec.loaded is not None:
        return spec.loaded
    extra = f" (install the extra: pip install 'reasonseg-x[{spec.requires}]')" if spec.requires else ""
    try:
        factory = _import_path(spec.factory)
    except InvalidInputError as exc:
        raise InvalidInputError(f"model {spec.name!r}: {exc}{extra}") from None
    except ImportError as exc:
        raise InvalidInputError(f"model {spec.name!r} cannot be imported ({spec.factory}): {exc}{extra}") from None
    if not callable(factory):
        raise InvalidInputError(f"model {spec.name!r}: {spec.factory} is not callable")
    return factory


# --- arguments --------------------------------------------------------------------------------


def parse_model_args(items: Sequence[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` (the ``--model-arg`` options) into a dict; later duplicates are an error."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise InvalidInputError(f"--model-arg expects KEY=VALUE, got {item!r}")
        if key in out:
            raise InvalidInputError(f"--model-arg {key} given twice ({out[key]!r} and {value!r})")
        out[key] = value
    return out


def convert_value(arg: PredictorArg, value: Any, *, model: str = "") -> Any:
    """Convert a ``--model-arg`` string (or check a Python value) to the argument's declared type."""
    where = f"model {model!r} argument {arg.name!r}" if model else f"argument {arg.name!r}"
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _NONE and not arg.required and (arg.type != "str" or arg.default is None):
            return None
        try:
            if arg.type == "int":
                result: Any = int(text)
            elif arg.type == "float":
                result = float(text)
            elif arg.type == "bool":
                low = text.lower()
                if low not in _TRUE | _FALSE:
                    raise ValueError("expected true/false")
                result = low in _TRUE
            elif arg.type == "path":
                result = os.path.expanduser(text)
            else:  # str, any
                result = value
        except ValueError:
            raise InvalidInputError(f"{where} expects {arg.type}, got {value!r}") from None
    else:
        result = value
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "str": isinstance(value, str),
            "path": isinstance(value, (str, os.PathLike)),
            "any": True,
        }[arg.type]
        if value is None and not arg.required:
            ok = True
        if not ok:
            raise InvalidInputError(f"{where} expects {arg.type}, got {value!r}")
        if arg.type == "path" and value is not None:
            result = os.fspath(value)
        if arg.type == "float" and value is not None:
            result = float(value)
    if arg.choices and result not in arg.choices:
        raise InvalidInputError(f"{where} must be one of {', '.join(arg.choices)}; got {value!r}")
    return result


def bind_arguments(name: str, args: Mapping[str, Any] | None = None) -> BoundModel:
    """Resolve ``name`` and type its arguments without importing a built-in model's module.

    Unknown arguments are rejected with the list of known ones. For specs with ``open_args``,
    arguments not declared but accepted by the factory's signature are allowed (this imports it).
    """
    spec, carried = get_spec(name)
    given = dict(args or {})
    for key, value in carried.items():
        if key in given and given[key] != value:
            raise InvalidInputError(f"model {name!r} sets {key}={value!r}; --model-arg {key}={given[key]!r} conflicts")
        given[key] = value
    bound: dict[str, Any] = {}
    undeclared = {}
    for key, value in given.items():
        arg = spec.arg(key)
        if arg is None:
            undeclared[key] = value
        else:
            bound[key] = convert_value(arg, value, model=spec.name)
    if undeclared:
        extra_args: dict[str, PredictorArg] = {}
        var_kw = False
        if spec.open_args:
            factory = _import_factory(spec)
            extra_args = {a.name: a for a in _args_from_signature(factory)}
            try:
                var_kw = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
            except (TypeError, ValueError):
                var_kw = False
        for key, value in undeclared.items():
            if key in extra_args:
                bound[key] = convert_value(extra_args[key], value, model=spec.name)
            elif var_kw:
                bound[key] = value
            else:
                known = sorted({a.name for a in spec.args} | set(extra_args))
                listing = ", ".join(known) if known else "none"
                raise InvalidInputError(f"model {spec.name!r} has no argument {key!r}; known arguments: {listing}")
    missing = [a.name for a in spec.args if a.required and a.name not in bound]
    if missing:
        raise InvalidInputError(f"model {spec.name!r} needs argument(s) {', '.join(missing)} "
                                f"(--model-arg {missing[0]}=...)")
    return BoundModel(spec, spec.name, dict(sorted(bound.items())))


def load_predictor(name: str, **kwargs: Any) -> Any:
    """Build the predictor ``name`` with keyword arguments (strings are converted to declared types)."""
    return bind_arguments(name, kwargs).instantiate()
