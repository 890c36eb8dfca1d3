"""Typed model arguments: what ``--model-arg NAME=VALUE`` may set, derived from one declaration.

A predictor declares its arguments once, in one of two ways:

- an ``Options`` dataclass attribute (the built-in models): each field's annotation is the type,
  its default the default, ``Literal[...]`` the choices, ``metadata["help"]`` the help line; the
  model catalog may override defaults and pin values per model (``baselines/models.yaml``);
- its factory's signature (plugins and ad-hoc ``module:Factory`` paths): annotations and defaults.

Everything that shows or checks arguments (``reasonseg-x models NAME``, ``eval --model NAME --help``,
string conversion, the predictor's own constructor) reads them from here.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reasonseg_x.errors import InvalidInputError

__all__ = ["ARG_TYPES", "PredictorArg", "convert_value", "arguments_of", "options_arguments",
           "signature_arguments", "build_options", "bind_values", "unknown_argument", "pinned_argument"]

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
    #: False for arguments that cannot change a prediction (where an endpoint is, how many requests
    #: are in flight): a run resumes across changes of them (see ``BoundModel.identity_args``)
    identity: bool = True

    def __post_init__(self) -> None:
        if self.type not in ARG_TYPES:
            raise ValueError(f"argument {self.name!r}: type must be one of {ARG_TYPES}, got {self.type!r}")

    def describe(self) -> str:
        """``name: type = default`` as the model list prints it."""
        text = f"{self.name}: {self.type}"
        if self.required:
            return text + " (required)"
        return f"{text} = {self.default!r}"


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
    if arg.choices and result is not None and result not in arg.choices:
        raise InvalidInputError(f"{where} must be one of {', '.join(arg.choices)}; got {value!r}")
    return result


# --- from annotations ---------------------------------------------------------------------------


def _kind_and_choices(annotation: Any, default: Any) -> tuple[str, tuple[str, ...]]:
    """(declared type, choices) of an annotation object or string."""
    if isinstance(annotation, str):
        return _kind_of_text(annotation, default), ()
    origin = typing.get_origin(annotation)
    if origin is Literal:
        values = typing.get_args(annotation)
        return "str", tuple(str(v) for v in values)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if any(_is_path_type(m) for m in members):
            return "path", ()
        if len(members) == 1:
            return _kind_and_choices(members[0], default)
        return "any", ()
    if annotation in (bool, int, float, str):
        return annotation.__name__, ()
    if _is_path_type(annotation):
        return "path", ()
    return _kind_of_text(getattr(annotation, "__name__", str(annotation)), default)


def _is_path_type(annotation: Any) -> bool:
    annotation = typing.get_origin(annotation) or annotation
    return annotation is os.PathLike or getattr(annotation, "__name__", "") in ("Path", "PurePath")


def _kind_of_text(text: str, default: Any) -> str:
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


def options_arguments(options: type, *, defaults: Mapping[str, Any] | None = None,
                      pinned: Iterable[str] = ()) -> tuple[PredictorArg, ...]:
    """The arguments an ``Options`` dataclass declares, with per-model ``defaults`` applied and
    ``pinned`` ones left out (a pinned value is the model's, not the user's)."""
    defaults = dict(defaults or {})
    hidden = set(pinned)
    hints = typing.get_type_hints(options)
    own = set(vars(options).get("__annotations__", {}))  # the class's own fields first, inherited after
    out = []
    for f in sorted(dataclasses.fields(options), key=lambda f: f.name not in own):
        if f.name in hidden:
            continue
        default = defaults.get(f.name, f.default)
        required = default is dataclasses.MISSING
        kind, choices = _kind_and_choices(hints.get(f.name, f.type), default)
        out.append(PredictorArg(f.name, kind, None if required else default, f.metadata.get("help", ""),
                                required=required, choices=choices, identity=f.metadata.get("identity", True)))
    return tuple(out)


def signature_arguments(factory: Callable[..., Any]) -> list[PredictorArg]:
    """Arguments from a factory's keyword parameters (plugins without an ``Options`` class)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return []
    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:  # unresolvable string annotations: fall back to their text
        hints = {}
    out = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
            continue
        required = p.default is inspect.Parameter.empty
        default = None if required else p.default
        kind, choices = _kind_and_choices(hints.get(p.name, p.annotation), default)
        out.append(PredictorArg(p.name, kind, default, required=required, choices=choices))
    return out


def arguments_of(factory: Callable[..., Any], *, defaults: Mapping[str, Any] | None = None,
                 pinned: Iterable[str] = ()) -> tuple[PredictorArg, ...]:
    """A factory's declared arguments: its ``Options`` dataclass when it has one, else its signature."""
    options = getattr(factory, "Options", None)
    if options is not None and dataclasses.is_dataclass(options):
        return options_arguments(options, defaults=defaults, pinned=pinned)
    return tuple(signature_arguments(factory))


def unknown_argument(model: str, key: str, known: Iterable[str]) -> InvalidInputError:
    """The error for an argument ``model`` does not take, suggesting the closest known name."""
    names = sorted(set(known))
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = ", ".join(names) if names else "none"
    return InvalidInputError(f"model {model!r} has no argument {key!r}{hint}; known arguments: {listing}")


def pinned_argument(model: str, key: str, pinned: Any, value: Any) -> InvalidInputError:
    """The error for setting a value the model fixes (catalog ``pinned``), equal to it or not:
    a pinned value is the model's, not an argument, whether it comes as ``-a`` or as a keyword."""
    return InvalidInputError(f"model {model!r} fixes {key}={pinned!r}; it cannot be set (got {value!r})")


def bind_values(args: Mapping[str, PredictorArg], given: Mapping[str, Any], *, model: str,
                pinned: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(declared arguments converted to their types, undeclared ones as given): the one rule by
    which ``-a NAME=VALUE`` strings and Python keywords are bound. A pinned name is refused."""
    pinned = pinned or {}
    bound: dict[str, Any] = {}
    undeclared: dict[str, Any] = {}
    for key, value in given.items():
        if key in pinned:
            raise pinned_argument(model, key, pinned[key], value)
        arg = args.get(key)
        if arg is None:
            undeclared[key] = value
        else:
            bound[key] = convert_value(arg, value, model=model)
    return bound, undeclared


def build_options(options: type, given: Mapping[str, Any], *, model: str,
                  defaults: Mapping[str, Any] | None = None, pinned: Mapping[str, Any] | None = None) -> Any:
    """An ``Options`` instance from keyword values (Python values or ``-a`` strings, bound by
    :func:`bind_values`): unknown names, values of the wrong type and a pinned name are errors
    naming the model."""
    pinned = dict(pinned or {})
    args = {a.name: a for a in options_arguments(options, defaults=defaults, pinned=pinned)}
    values, undeclared = bind_values(args, given, model=model, pinned=pinned)
    if undeclared:
        raise unknown_argument(model, next(iter(undeclared)), args)
    merged = {**{k: v for k, v in (defaults or {}).items() if k in args}, **values, **pinned}
    missing = [a.name for a in args.values() if a.required and a.name not in merged]
    if missing:
        raise InvalidInputError(f"model {model!r} needs argument(s) {', '.join(missing)} "
                                f"(--model-arg {missing[0]}=...)")
    return options(**merged)
