"""The arrows that must never exist (docs/architecture.md), checked on the source with ``ast``.

- ``data`` and ``evaluators`` never import torch, transformers or a predictor;
- ``tts`` never imports torch; ``data`` never imports ``evaluators``;
- no layer imports ``cli``;
- no module inside the package takes a name from ``reasonseg_x/__init__.py`` (only submodules);
- no import cycles between the modules of ``star/``, ``predictors/`` and ``runner/``;
- the scoring path starts without torch, transformers or datasets in ``sys.modules``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reasonseg_x"
HEAVY = ("torch", "torchvision", "transformers", "peft", "accelerate", "sam2", "segment_anything", "vllm")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(*parts: str) -> list[Path]:
    root = PACKAGE.joinpath(*parts)
    if root.suffix == ".py":
        return [root] if root.exists() else []
    return sorted(root.rglob("*.py"))


def _offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in files:
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    return bad


@pytest.mark.parametrize("layer", ["data", "evaluators", "masks.py", "taxonomy.py", "predictions.py"])
def test_scoring_layers_import_no_model_code(layer: str) -> None:
    forbidden = HEAVY + ("reasonseg_x.predictors", "reasonseg_x.star", "reasonseg_x.baselines", "reasonseg_x.runner")
    assert _offenders(_files(layer), forbidden) == []


def test_data_does_not_import_evaluators() -> None:
    assert _offenders(_files("data"), ("reasonseg_x.evaluators",)) == []


def test_star_does_not_import_baselines() -> None:
    """baselines/ builds on star/ (VisionReasoner, Seg-Zero, gt-box-sam), never the other way."""
    assert _offenders(_files("star"), ("reasonseg_x.baselines",)) == []


def test_tts_is_numpy_only() -> None:
    assert _offenders(_files("tts.py"), HEAVY) == []


def test_nothing_imports_cli() -> None:
    files = [p for p in _files("") if "cli" not in p.relative_to(PACKAGE).parts]
    assert _offenders(files, ("reasonseg_x.cli",)) == []


def test_scoring_cli_starts_without_heavy_imports() -> None:
    code = ("import sys; from reasonseg_x.cli import app; import reasonseg_x.evaluators; "
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'pandas') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""



def _root_names_taken(path: Path) -> list[str]:
    """Names a module takes from the package root that are not submodules (``from reasonseg_x import
    __version__``): the root resolves its names lazily from submodules, so such an arrow is a cycle."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [alias.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "reasonseg_x" and node.level == 0
            for alias in node.names
            if not (PACKAGE / alias.name).is_dir() and not (PACKAGE / f"{alias.name}.py").is_file()]


def test_no_module_takes_names_from_the_package_root() -> None:
    bad = [f"{path.relative_to(PACKAGE.parent)} takes {name!r}" for path in _files("")
           for name in _root_names_taken(path)]
    assert bad == []


def test_root_rule_sees_a_root_name(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from reasonseg_x import __version__, masks\n", encoding="utf-8")
    assert _root_names_taken(module) == ["__version__"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports anywhere (module level, inside functions, under
    TYPE_CHECKING), relative imports resolved, ``from package import module`` counted as the module."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in candidates if name in known and name != here)
    return found


@pytest.mark.parametrize("folder", ["star", "predictors", "runner"])
def test_no_import_cycles_between_modules(folder: str) -> None:
    """No two modules import each other, directly or around a longer loop (function-level imports
    included: a deferred import hides a cycle, it does not remove it). docs/architecture.md"""
    files = {_module_name(p): p for p in _files(folder)}
    graph = {name: _imported_modules(path, set(files)) for name, path in files.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_sees_function_level_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "reasonseg_x" / "loop"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from reasonseg_x.loop import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "reasonseg_x"
    try:
        with pytest.raises(AssertionError, match="reasonseg_x.loop.a -> reasonseg_x.loop.b -> reasonseg_x.loop.a"):
            test_no_import_cycles_between_modules("loop")
    finally:
        PACKAGE = saved


RECORD = PACKAGE / "runner" / "record.py"
_FILE_CALLS = {"read_text", "read_bytes", "open", "write_text", "write_bytes", "unlink", "exists", "is_file"}


def _is_run_file(node: ast.AST) -> bool:
    """``"run.json"``, ``RUN_FILE`` or ``record.RUN_FILE``."""
    return ((isinstance(node, ast.Constant) and node.value == "run.json")
            or (isinstance(node, ast.Name) and node.id == "RUN_FILE")
            or (isinstance(node, ast.Attribute) and node.attr == "RUN_FILE"))


def _run_json_touches(path: Path) -> list[str]:
    """Where a module spells the file name ``run.json`` as code, or opens, reads, writes or probes a
    path ending in it (``folder / RUN_FILE``) instead of asking the run record."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value == "run.json" and id(node) not in docstrings:
            found.append(f"line {node.lineno}: the literal 'run.json'")
        elif isinstance(node, ast.Call):
            func = node.func
            target = func.value if isinstance(func, ast.Attribute) and func.attr in _FILE_CALLS else None
            if target is not None and isinstance(target, ast.BinOp) and _is_run_file(target.right):
                found.append(f"line {node.lineno}: .{func.attr}() on a run.json path")
            if isinstance(func, ast.Name) and func.id == "open" and node.args and isinstance(node.args[0], ast.BinOp) \
                    and _is_run_file(node.args[0].right):
                found.append(f"line {node.lineno}: open() of a run.json path")
    return found


def test_only_the_run_record_touches_run_json() -> None:
    """One reader and writer of run.json (runner/record.py): every command agrees on what a run was."""
    bad = [f"{path.relative_to(PACKAGE.parent)} {where}" for path in _files("") if path != RECORD
           for where in _run_json_touches(path)]
    assert bad == []


def test_run_json_rule_sees_a_reader(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Reads run.json."""\nimport json\nRUN = "run.json"\n'
                      "def f(d):\n    return json.loads((d / RUN_FILE).read_text())\n", encoding="utf-8")
    assert [w.split(":")[0] for w in _run_json_touches(module)] == ["line 3", "line 5"]


@pytest.mark.parametrize("layer", ["data", "evaluators", "star"])
def test_lower_layers_never_import_rewards(layer: str) -> None:
    """rewards/ builds on star/answer, star/segment and evaluators, never the other way."""
    assert _offenders(_files(layer), ("reasonseg_x.rewards",)) == []


def test_rewards_take_heavy_libraries_only_through_the_segmenters() -> None:
    """A reward without SAM (the box segmenter, the box-and-point presets) runs on a core install."""
    assert _offenders(_files("rewards"), HEAVY) == []
