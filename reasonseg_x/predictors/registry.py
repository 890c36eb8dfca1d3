"""The predictor registry: built-in models, third-party plugins, and typed model arguments.

Every predictor is described by a :class:`PredictorSpec`: name, ``"module:attr"`` factory path, a
one-line description, declared arguments. The built-in models are data (``baselines/models.yaml``,
see :mod:`.catalog`); their arguments come from each factory's ``Options`` class (see
:mod:`.arguments`). Model modules import torch only inside functions, so ``reasonseg-x models``
lists everything on a core install.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.predictors.arguments import (
    PredictorArg,
    arguments_of,
    bind_values,
    convert_value,
    signature_arguments,
    unknown_argument,
)
from reasonseg_x.predictors.catalog import CatalogEntry, builtin_models

__all__ = [
    "ENTRY_POINT_GROUP",
    "PredictorArg",
    "PredictorSpec",
    "BoundModel",
    "list_predictors",
    "get_spec",
    "canonical_name",
    "bind_arguments",
    "load_predictor",
    "parse_model_args",
    "convert_value",
]

ENTRY_POINT_GROUP = "reasonseg_x.predictors"
#: modules of the optional extras: a model that needs one on a core install gets a one-line error
_MODEL_EXTRA_MODULES = {"torch", "torchvision", "transformers", "peft", "accelerate", "sam2",
                        "segment_anything", "cv2", "vllm", "safetensors"}

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
    #: values the model fixes (catalog ``pinned``): not arguments, but named in errors
    pinned: Mapping[str, Any] = field(default_factory=dict, compare=False)
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

    @property
    def identity_args(self) -> dict[str, Any]:
        """The arguments that make a run what it is: all but those declared ``identity=False``
        (an endpoint's address, its concurrency), so a run resumes on a moved server."""
        return {k: v for k, v in self.args.items() if getattr(self.spec.arg(k), "identity", True)}

    def options(self) -> Any:
        """The ``Options`` instance the factory builds from these arguments (None for a factory
        without an ``Options`` class): a built-in model's with the catalog's defaults and pins."""
        import dataclasses

        from reasonseg_x.predictors.arguments import build_options
        from reasonseg_x.predictors.catalog import catalog_options

        options = getattr(_import_factory(self.spec), "Options", None)
        if options is None or not dataclasses.is_dataclass(options):
            return None
        if self.spec.origin == "built-in":
            return catalog_options(self.spec.name, options, self.args)
        return build_options(options, self.args, model=self.name)

    def instantiate(self) -> Any:
        factory = _import_factory(self.spec)
        try:
            inspect.signature(factory).bind(**self.args)
        except TypeError as exc:
            raise InvalidInputError(f"model {self.name!r} ({self.spec.factory}) does not take the arguments "
                                    f"{self.args}: {exc}") from None
        except ValueError:
            pass  # no introspectable signature (a builtin or C factory): let the call decide
        try:
            predictor = factory(**self.args)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in _MODEL_EXTRA_MODULES:
                raise
            extra = self.spec.requires or "models"
            raise InvalidInputError(f"model {self.name!r} needs {exc.name}: install the extra "
                                    f"(pip install 'reasonseg-x[{extra}]')") from None
        if not callable(getattr(predictor, "predict", None)):
            raise InvalidInputError(f"model {self.name!r}: factory {self.spec.factory} returned "
                                    f"{type(predictor).__name__}, which has no predict(queries) method")
        return predictor


def _builtin_spec(entry: CatalogEntry) -> PredictorSpec:
    """A catalog entry plus the arguments its factory declares (importing the factory's module,
    which must not import torch at module level: listing works on a core install)."""
    requires = entry.extra
    try:
        factory = _import_path(entry.factory)
    except (ImportError, InvalidInputError) as exc:
        hint = f" (install the extra: pip install 'reasonseg-x[{requires}]')" if requires else ""
        return PredictorSpec(entry.name, entry.factory, entry.description, origin="built-in", requires=requires,
                             load_error=f"{type(exc).__name__}: {exc}{hint}", path_arg=entry.path_arg)
    args = arguments_of(factory, defaults=entry.defaults, pinned=entry.pinned)
    return PredictorSpec(entry.name, entry.factory, entry.description, args, path_arg=entry.path_arg,
                         requires=requires, loaded=factory, pinned=dict(entry.pinned))


@lru_cache(maxsize=None)
def _builtins() -> tuple[PredictorSpec, ...]:
    return tuple(_builtin_spec(entry) for entry in builtin_models())


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
    args = arguments_of(factory)
    return PredictorSpec(name, path, description, args, origin=origin, open_args=True, loaded=factory)


def list_predictors(*, include_plugins: bool = True) -> list[PredictorSpec]:
    """Built-ins then plugins (sorted by name). Imports no model module; a broken plugin is listed
    with its ``load_error`` instead of raising."""
    specs = list(_builtins())
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


def canonical_name(name: str, known: Iterable[str]) -> str | None:
    """The known model name ``name`` spells: itself, else the one name equal to it ignoring case
    (``StAR`` -> ``star``; the run records the canonical name), else None (two names that differ
    only in case make ``name`` ambiguous: it is then suggested, never guessed)."""
    names = list(known)
    if name in names:
        return name
    folded = [n for n in names if n.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def get_spec(name: str) -> tuple[PredictorSpec, dict[str, str]]:
    """Resolve a model name to its spec plus the argument carried in the name (``predictions:PATH``).

    Also accepts an importable ``package.module:Factory`` path, and a model name in other case
    when only one name matches (:func:`canonical_name`).
    """
    name = name.strip()
    if not name:
        raise InvalidInputError("empty model name; see `reasonseg-x models`")
    head, sep, tail = name.partition(":")
    specs = {s.name: s for s in list_predictors(include_plugins=False)}
    if head not in specs:  # only look at plugins (importing their spec modules) when needed
        specs = {s.name: s for s in list_predictors(include_plugins=True)}
    if head not in specs and not (sep and tail and _looks_like_import_path(head, tail)):
        head = canonical_name(head, specs) or head
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
    raise unknown_model(name, specs)


def unknown_model(name: str, known: Sequence[str] | Mapping[str, Any]) -> InvalidInputError:
    """The error for a model name nobody registered, suggesting the closest known name (compared
    ignoring case, so ``STARR`` suggests ``star``)."""
    names = sorted(known)
    folded = {n.casefold(): n for n in names}
    close = difflib.get_close_matches(name.partition(":")[0].casefold(), list(folded), n=1)
    hint = f" Did you mean {folded[close[0]]!r}?" if close else ""
    return InvalidInputError(f"unknown model {name!r}.{hint} Known models: {', '.join(names)} "
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
    bound, undeclared = bind_values({a.name: a for a in spec.args}, given, model=spec.name, pinned=spec.pinned)
    if undeclared:
        extra_args: dict[str, PredictorArg] = {}
        var_kw = False
        if spec.open_args:
            factory = _import_factory(spec)
            extra_args = {a.name: a for a in signature_arguments(factory)}
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
                raise unknown_argument(spec.name, key, {a.name for a in spec.args} | set(extra_args))
    missing = [a.name for a in spec.args if a.required and a.name not in bound]
    if missing:
        raise InvalidInputError(f"model {spec.name!r} needs argument(s) {', '.join(missing)} "
                                f"(--model-arg {missing[0]}=...)")
    return BoundModel(spec, spec.name, dict(sorted(bound.items())))


def load_predictor(name: str, **kwargs: Any) -> Any:
    """Build the predictor ``name`` with keyword arguments (strings are converted to declared types)."""
    return bind_arguments(name, kwargs).instantiate()
