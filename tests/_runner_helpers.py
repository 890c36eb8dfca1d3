"""Shared fixtures of the runner tests: an in-memory source with images, and scripted predictors.

Importable by subprocesses too (``sys.path`` + ``_runner_helpers:HashPredictor``), which is how
the SIGKILL and torchrun tests reach a slow predictor and a source without any real data.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from reasonseg_x import masks
from reasonseg_x.data.record import ImageRef, Sample
from reasonseg_x.data.source import Source
from reasonseg_x.predictors.protocol import Output, Query

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
TYPES = ("function_purpose", "commonsense", "comparative_relational", "compositional")
_PNG_CACHE: dict[tuple[int, int], bytes] = {}


def _png(h: int, w: int) -> bytes:
    if (h, w) not in _PNG_CACHE:
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (w, h), (120, 60, 30)).save(buf, format="PNG")
        _PNG_CACHE[(h, w)] = buf.getvalue()
    return _PNG_CACHE[(h, w)]


class FakeSource(Source):
    """``n`` deterministic samples (ids ``r000``..) of varying size, every one with a non-empty target;
    every third has an ignore region."""

    def __init__(self, n: int = 48, seed: int = 0, spec: str | None = None) -> None:
        super().__init__()
        self.spec = spec or f"fake:{n}:{seed}"
        rng = np.random.default_rng(seed)
        self._samples = []
        for k in range(n):
            h, w = 16 + int(rng.integers(0, 9)), 20 + int(rng.integers(0, 9))
            target = np.zeros((h, w), bool)
            y, x = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
            target[y:y + 4 + int(rng.integers(0, 6)), x:x + 4 + int(rng.integers(0, 6))] = True
            ignore = None
            if k % 3 == 0:
                ig = np.zeros((h, w), bool)
                ig[:2, :] = True
                ignore = masks.encode(ig & ~target)
            self._samples.append(Sample(
                id=f"r{k:03d}", image=ImageRef(data=_png(h, w), where=f"fake:{k}"), query=f"query {k}",
                height=h, width=w, target=masks.encode(target), ignore=ignore, reasoning_type=TYPES[k % 4],
                query_kind="long" if k % 2 else "short", split="test"))

    def splits(self) -> list[str]:
        return ["test"]

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        self.resolve_split(split)
        yield from self._samples


def hash_mask(query: Query) -> np.ndarray:
    """A deterministic pseudo-prediction that depends only on the id and size."""
    digest = hashlib.sha256(query.id.encode()).digest()
    m = np.zeros((query.height, query.width), bool)
    y, x = digest[0] % (query.height - 3), digest[1] % (query.width - 3)
    m[y:y + 3 + digest[2] % 8, x:x + 3 + digest[3] % 8] = True
    return m


class HashPredictor:
    """Deterministic masks; ``delay`` seconds per query make it slow enough to kill mid-run."""

    needs_ground_truth: ClassVar[bool] = False

    def __init__(self, delay: float = 0.0, log: str = "") -> None:
        self.delay = delay
        self.log = log

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        if self.log:
            with open(self.log, "a", encoding="utf-8") as fh:
                fh.write("".join(q.id + "\n" for q in queries))
        out = []
        for q in queries:
            if self.delay:
                time.sleep(self.delay)
            q.image.open()  # the real thing decodes the image
            out.append(Output(mask=hash_mask(q), raw_text=f"<answer>{q.id}</answer>", timings={"s": 0.001},
                              boxes=[[1.0, 2.0, 3.0, 4.0]]))
        return out


class FlakyPredictor:
    """Raises on any batch containing one of ``fail_ids`` (comma separated)."""

    needs_ground_truth: ClassVar[bool] = False

    def __init__(self, fail_ids: str = "r003") -> None:
        self.fail_ids = set(fail_ids.split(","))
        self.calls: list[int] = []

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        self.calls.append(len(queries))
        bad = [q.id for q in queries if q.id in self.fail_ids]
        if bad:
            raise ValueError(f"cannot handle {bad[0]}")
        return [Output(mask=hash_mask(q)) for q in queries]


class ListedFailures:
    """Raises on the ids listed (one a line) in ``fail_file`` at the time of the call, otherwise the
    hash mask: edit the file between runs to see ``--retry-errors`` recover some of them."""

    needs_ground_truth: ClassVar[bool] = False

    def __init__(self, fail_file: str = "") -> None:
        self.fail_file = fail_file

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        failing = set(Path(self.fail_file).read_text(encoding="utf-8").split()) if self.fail_file else set()
        bad = [q.id for q in queries if q.id in failing]
        if bad:
            raise ValueError(f"cannot handle {bad[0]}")
        return [Output(mask=hash_mask(q)) for q in queries]


class OOMPredictor:
    """Out of memory whenever a batch is larger than ``max_batch`` (``kind``: memory|torch|runtime)."""

    needs_ground_truth: ClassVar[bool] = False

    def __init__(self, max_batch: int = 2, kind: str = "memory") -> None:
        self.max_batch = max_batch
        self.kind = kind
        self.calls: list[int] = []

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        self.calls.append(len(queries))
        if len(queries) > self.max_batch:
            if self.kind == "memory":
                raise MemoryError()
            if self.kind == "torch":
                raise type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 2 GiB")
            raise RuntimeError("CUDA error: out of memory")
        return [Output(mask=hash_mask(q)) for q in queries]


class BadMaskPredictor:
    """Returns a broken mask: ``float``, ``size``, ``rle-size``, ``status`` or ``count``."""

    needs_ground_truth: ClassVar[bool] = False

    def __init__(self, kind: str = "float") -> None:
        self.kind = kind

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        if self.kind == "count":
            return [Output(mask=None)]
        out = []
        for q in queries:
            if self.kind == "float":
                out.append(Output(mask=hash_mask(q).astype(np.float32)))
            elif self.kind == "size":
                out.append(Output(mask=np.zeros((q.height + 1, q.width), bool)))
            elif self.kind == "rle-size":
                out.append(Output(mask=masks.empty(q.height, q.width + 2)))
            else:
                out.append(Output(mask=None, status="maybe"))
        return out


def run_fake_eval(out: str, n: int = 48, delay: float = 0.0, batch_size: int = 4, **kw: Any) -> None:
    """Entry for subprocess tests: a resumable eval of HashPredictor over FakeSource(n)."""
    from reasonseg_x.runner.evaluate import EvalConfig, run_eval

    config = EvalConfig(model="_runner_helpers:HashPredictor", out=out, model_args={"delay": str(delay)},
                        batch_size=batch_size, data=f"fake:{n}", **kw)
    outcome = run_eval(config, source=FakeSource(n))
    print(json.dumps({"predicted": outcome.stats.predicted if outcome.stats else 0,
                      "already": outcome.already_done}), flush=True)


def run_fake_eval_killed(out: str, point: str, nth: int = 1) -> None:
    """``run_fake_eval`` that SIGKILLs itself halfway through the ``nth`` write of ``run.json``
    (``point='run.json'``: the temporary is half written, the rename never happens) or halfway
    through writing ``metrics.json`` (``point='metrics'``: the kill lands during scoring)."""
    import os
    import signal

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "run.json":
        from reasonseg_x.runner import record

        real, calls = record.write_text_atomic, []

        def torn_write(path: Any, text: str) -> None:
            calls.append(path)
            if len(calls) == nth:
                Path(path).with_name(f".{Path(path).name}.tmp-{os.getpid()}").write_text(text[: len(text) // 2])
                die()
            real(path, text)

        record.write_text_atomic = torn_write
    elif point == "metrics":
        from reasonseg_x.evaluators import api

        def torn_outputs(result: Any, out_dir: Any, **_: Any) -> None:
            text = json.dumps(result.metrics)
            (Path(out_dir) / "metrics.json").write_text(text[: len(text) // 2])
            die()

        api.write_outputs = torn_outputs
    else:
        raise ValueError(point)
    run_fake_eval(out, n=12)


def prediction_lines(path: Path) -> dict[str, dict]:
    """id -> parsed line of a predictions file (asserting ids are unique)."""
    out: dict[str, dict] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        assert obj["id"] not in out, f"duplicate id {obj['id']}"
        out[obj["id"]] = obj
    return out


def subprocess_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = f"{TESTS_DIR}{os.pathsep}{REPO_DIR}" + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    return env


PYTHON = sys.executable


def distributed_main(out: str, n: int) -> None:
    """Entry under ``torch.distributed.run``: the CLI's distributed path over FakeSource(n)."""
    from reasonseg_x.cli.eval import _eval_distributed
    from reasonseg_x.runner.distributed import detect
    from reasonseg_x.runner.evaluate import EvalConfig

    env = detect()
    assert env is not None, "run me under torchrun"
    config = EvalConfig(model="_runner_helpers:HashPredictor", out=out, batch_size=3, data=f"fake:{n}")
    _eval_distributed(config, env, quiet=True, source=FakeSource(n))


if __name__ == "__main__":
    sys.path.insert(0, str(TESTS_DIR))
    distributed_main(sys.argv[1], int(sys.argv[2]))
