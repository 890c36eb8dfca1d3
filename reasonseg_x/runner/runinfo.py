"""What ``run.json`` says of a run: who produced a predictions file, from what, on what, and how long it took.

The run's *identity* (model, typed model arguments, data fingerprint and split, seed, shard) is
written before the first prediction. A later run into the same folder must have the same identity
or it refuses: predictions of different models or data never mix silently. The file itself is read
and written by ``runner/record.py`` only.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reasonseg_x._version import __version__
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.redaction import scrub_urls
from reasonseg_x.runner.record import RUN_FILE

__all__ = ["RunIdentity", "check_identity", "environment", "utc_now", "Stopwatch"]

#: packages whose versions a run records (read from metadata: nothing is imported)
_PACKAGES = ("numpy", "pycocotools", "pillow", "datasets", "pyarrow", "torch", "torchvision", "transformers",
             "peft", "accelerate", "sam2", "segment-anything", "vllm")


@dataclass(frozen=True)
class RunIdentity:
    """What must match for two runs' predictions to belong together.

    ``fingerprint`` is the data's input fingerprint (ids, queries, images and masks): a changed
    query or image is different data even when the masks are not.
    """

    model: str
    model_args: dict[str, Any]
    fingerprint: str
    split: str
    seed: int
    num_shards: int = 1
    shard_id: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "model_args": self.model_args, "input_fingerprint": self.fingerprint,
                "split": self.split, "seed": self.seed, "num_shards": self.num_shards, "shard_id": self.shard_id}

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str) -> RunIdentity:
        try:
            fingerprint = obj["input_fingerprint"] if "input_fingerprint" in obj else obj["data_fingerprint"]  # older
            return cls(model=str(obj["model"]), model_args=dict(obj.get("model_args") or {}),
                       fingerprint=str(fingerprint), split=str(obj["split"]), seed=int(obj["seed"]),
                       num_shards=int(obj.get("num_shards", 1)), shard_id=int(obj.get("shard_id", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"run.json has no valid 'identity' ({exc})", where) from None

    def unsharded(self) -> RunIdentity:
        return RunIdentity(self.model, self.model_args, self.fingerprint, self.split, self.seed)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_identity(existing: dict[str, Any], new: RunIdentity, directory: str | os.PathLike[str], *,
                   data_spec: str | None = None) -> None:
    """Refuse to continue a run whose identity differs, naming every difference and the way out.

    ``data_spec`` (this run's ``--data``) is shown beside a changed fingerprint, which alone says little.
    """
    where = str(Path(directory) / RUN_FILE)
    old = RunIdentity.from_json(existing["identity"], where)
    diffs = []
    now = scrub_urls(new.to_json())  # as write_record recorded it
    for key, before in old.to_json().items():
        after = now[key]
        if before != after:
            diffs.append(f"{key}: {before!r} -> {after!r}")
    old_spec = (existing.get("data") or {}).get("spec")
    if old.fingerprint != new.fingerprint and old_spec and data_spec:
        if old_spec != data_spec:
            diffs.append(f"data: {old_spec!r} -> {data_spec!r}")
        else:
            old_version = (existing.get("environment") or {}).get("toolkit_version")
            why = (f"reasonseg-x {old_version} -> {__version__} may read it differently" if old_version
                   and old_version != __version__ else "its queries, images or masks changed on disk")
            diffs.append(f"data {data_spec!r} is not what the earlier run saw ({why})")
    if diffs:
        raise InvalidInputError(
            f"{directory} holds predictions of a different run ({'; '.join(diffs)}). "
            "Predictions of different runs never mix: pass --fresh to discard them, or choose a new --out.")


def environment() -> dict[str, Any]:
    """Toolkit/software versions and hardware, without importing anything heavy."""
    env: dict[str, Any] = {
        "toolkit_version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": dict(_package_versions()),
        "hardware": _hardware(),
        "host": platform.node(),
        "argv": list(sys.argv),
    }
    return env


@functools.lru_cache(maxsize=1)
def _package_versions() -> tuple[tuple[str, str], ...]:
    """Installed versions of the packages a result depends on (metadata only: ~20 ms, so read once)."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in _PACKAGES:
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:
            continue
    return tuple(found)


def _hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
                            "memory_gib": _memory_gib()}
    torch = sys.modules.get("torch")  # only report GPUs when a model already loaded torch
    if torch is not None:
        try:
            if torch.cuda.is_available():
                count = torch.cuda.device_count()
                info["gpus"] = [torch.cuda.get_device_name(i) for i in range(count)]
                info["gpu_memory_gib"] = [round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)
                                          for i in range(count)]
                info["cuda"] = torch.version.cuda
        except Exception:  # noqa: BLE001 - hardware probing must never fail a run
            pass
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        info["cuda_visible_devices"] = visible
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, OSError, ValueError):
        return None


class Stopwatch:
    """Seconds since construction, for run.json timings."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self.start, 3)
