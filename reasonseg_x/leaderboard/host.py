"""Host side: score untrusted bundles against the private ground truth and store the results.

Each bundle goes through the same gate: safe extraction (or folder check), strict
``submission.json``, checksum, dataset fingerprint equal to the host's ground truth, then the
author-side validator against the host's own manifest. Only then is it scored by the evaluator
and stored. A bundle already scored against the same ground truth and protocol is not scored
again (idempotent resubmission). One bad bundle never stops the others: it is logged as a
rejection with its reason.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x.errors import ReasonSegXError
from reasonseg_x.leaderboard.bundle import PREDICTIONS_FILE, open_bundle, sha256_file
from reasonseg_x.leaderboard.manifest import Manifest, manifest_from_source
from reasonseg_x.output_paths import prepare_folder
from reasonseg_x.leaderboard.safety import DEFAULT_LIMITS, Limits
from reasonseg_x.leaderboard.store import LeaderboardStore
from reasonseg_x.leaderboard.submission import validate_predictions
from reasonseg_x.predictions import Prediction

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.data.source import Source

__all__ = ["HostOutcome", "GroundTruthContext", "Scorer", "evaluator_scorer", "score_bundle", "score_bundles"]

#: ``(source, split, predictions, protocol) -> metrics.json dict``
Scorer = Callable[["Source", str, Sequence[Prediction], str], dict[str, Any]]


def evaluator_scorer(source: Source, split: str, predictions: Sequence[Prediction], protocol: str) -> dict[str, Any]:
    """Score with the toolkit's evaluator (strict: the bundle was already validated to be complete)."""
    from reasonseg_x.evaluators.api import score_predictions

    return score_predictions(source, split, list(predictions), protocol=protocol, strict=True).metrics


@dataclass(frozen=True)
class GroundTruthContext:
    """The host's ground truth, loaded once for a batch of bundles."""

    source: Source
    split: str
    manifest: Manifest

    @classmethod
    def load(cls, source: Source, split: str | None = None) -> GroundTruthContext:
        name = source.resolve_split(split)
        return cls(source=source, split=name, manifest=manifest_from_source(source, name))

    @property
    def fingerprint(self) -> str:
        return self.manifest.fingerprint


@dataclass(frozen=True)
class HostOutcome:
    """What happened to one bundle: ``verified`` (scored now), ``unchanged`` (already scored), ``rejected``
    (the bundle broke a rule) or ``error`` (the host failed on it; logged with the rejections).
    ``reason`` says why; on a verified bundle it is a note (e.g. the same predictions as another)."""

    source: str
    status: str
    reason: str = ""
    model_name: str | None = None
    submission_id: int | None = None
    evaluation_id: int | None = None
    giou: float | None = None
    ciou: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _overall(store: LeaderboardStore, evaluation_id: int) -> tuple[float | None, float | None]:
    row = store.conn.execute("SELECT giou, ciou FROM results WHERE evaluation_id = ? AND group_key = 'overall'",
                             (evaluation_id,)).fetchone()
    return (row["giou"], row["ciou"]) if row else (None, None)


def score_bundle(path: str | os.PathLike[str], gt: GroundTruthContext, store: LeaderboardStore, *,
                 protocol: str = "star", rescore: bool = False, limits: Limits = DEFAULT_LIMITS,
                 workdir: str | os.PathLike[str] | None = None, scorer: Scorer | None = None) -> HostOutcome:
    """Gate, score and store one untrusted bundle; never raises for a bad bundle (it is rejected)."""
    from reasonseg_x._version import __version__

    name = str(path)
    scorer = scorer or evaluator_scorer
    if workdir is not None:
        prepare_folder(workdir, "the scratch folder (--workdir)")
    scratch = Path(tempfile.mkdtemp(prefix="rsx-bundle-", dir=workdir))
    try:
        opened = open_bundle(path, scratch, limits)
        info = opened.info
        if info.dataset.fingerprint != gt.fingerprint:
            raise ReasonSegXError(
                f"bundle was validated against {info.dataset.data}:{info.dataset.split} "
                f"({info.dataset.fingerprint}); the host's ground truth is {gt.source.spec}:{gt.split} "
                f"({gt.fingerprint})")
        submission_id = store.find_submission(opened.digest)
        if submission_id is not None and not rescore:
            existing = store.find_evaluation(submission_id, gt.fingerprint, protocol)
            if existing is not None:
                return HostOutcome(name, "unchanged", "already scored (same bundle digest)", info.model_name,
                                   submission_id, existing, *_overall(store, existing))
        report = validate_predictions(opened.predictions_path, gt.manifest, limits=limits)
        report.path = PREDICTIONS_FILE  # not the scratch folder an archive was extracted into
        report.raise_for_problems()
        metrics = scorer(gt.source, gt.split, list(report.predictions.values()), protocol)
        raw = (opened.root / "submission.json").read_text(encoding="utf-8")
        with store.transaction():
            submission_id, _ = store.add_submission(opened.digest, info.to_json(), raw)
            evaluation_id, _ = store.add_evaluation(
                submission_id, gt_spec=gt.source.spec, gt_split=gt.split, gt_fingerprint=gt.fingerprint,
                protocol=protocol, metrics=metrics, toolkit_version=__version__, replace=rescore)
        twins = store.same_predictions(submission_id)
        note = ("same predictions as " + ", ".join(f"submission {i} ({n!r})" for i, n in twins[:3])) if twins else ""
        return HostOutcome(name, "verified", note, info.model_name, submission_id, evaluation_id,
                           *_overall(store, evaluation_id))
    except ReasonSegXError as exc:
        return _reject(store, path, "rejected", _without_prefix(str(exc), name))
    except Exception as exc:  # a bug must not stop the batch, nor pass silently: logged as an error
        return _reject(store, path, "error", f"internal error while scoring: {exc.__class__.__name__}: {exc}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _without_prefix(message: str, name: str) -> str:
    """The outcome already names the bundle: drop a leading ``<bundle>: `` from the message."""
    return message[len(name) + 2:] if message.startswith(f"{name}: ") else message


def _reject(store: LeaderboardStore, path: str | os.PathLike[str], status: str, reason: str) -> HostOutcome:
    p = Path(path)
    digest = sha256_file(p) if p.is_file() and not p.is_symlink() else None
    store.add_rejection(p.name, reason, digest)
    return HostOutcome(str(path), status, reason)


def score_bundles(paths: Iterable[str | os.PathLike[str]], gt: GroundTruthContext, store: LeaderboardStore,
                  **kwargs: Any) -> list[HostOutcome]:
    """Score several bundles in turn (see :func:`score_bundle`)."""
    return [score_bundle(p, gt, store, **kwargs) for p in paths]


def outcomes_json(outcomes: Sequence[HostOutcome]) -> str:
    return json.dumps([o.to_json() for o in outcomes], indent=1)
