"""``run_eval``: one model over one split (or shard), resumable, then scored like ``reasonseg-x score``.

Order of work, chosen so that nothing already paid for is lost or mixed:
1. resolve the model name and type its arguments (no model import yet);
2. list the split's ids and fingerprint its ground truth, pick the ``--limit`` prefix and the shard;
3. lock the run folder, compare ``run.json``'s identity with this run's (refuse on a difference),
   recover ``predictions.jsonl`` (drop a torn tail), write ``run.json`` *before* predicting;
4. load the model only if samples remain, predict them in source order, append per batch;
5. check the file covers exactly this run's ids, mark ``run.json`` complete, score.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonseg_x.atomic import writing
from reasonseg_x.data.source import Source
from reasonseg_x.errors import InvalidInputError, ReasonSegXError, WriteError
from reasonseg_x.predictions import RUN_PREDICTIONS
from reasonseg_x.predictors.registry import BoundModel, bind_arguments
from reasonseg_x.runner.loop import LoopStats, predict_samples
from reasonseg_x.runner.rundir import default_run_dir
from reasonseg_x.runner.record import Coverage, read_record, remove_record, skipped_detail, write_record
from reasonseg_x.runner.runinfo import RunIdentity, Stopwatch, check_identity, environment, utc_now
from reasonseg_x.runner.shards import Shard
from reasonseg_x.runner.store import PredictionStore, holds_predictions, read_stored_lines, remove_stale_temporaries

__all__ = ["EvalConfig", "EvalOutcome", "run_eval", "holding_run_folder", "open_data", "score_run", "resolve_out",
           "data_fingerprint", "PREDICTIONS_FILE", "DEFAULT_BATCH_SIZE"]

PREDICTIONS_FILE = RUN_PREDICTIONS  # the run folder's file, named once in reasonseg_x.predictions
DEFAULT_BATCH_SIZE = 8
LOCK_FILE = ".reasonseg-x.lock"


class Progress(AbstractContextManager):
    """What the runner reports to: ``advance(n)`` after each batch."""

    def advance(self, n: int) -> None:  # pragma: no cover - interface
        pass

    def __exit__(self, *exc: object) -> None:
        return None


#: ``factory(total, completed, description) -> Progress``
ProgressFactory = Callable[[int, int, str], Progress]


@dataclass
class EvalConfig:
    """The options of ``reasonseg-x eval`` (``model_args`` values may be strings: they get typed)."""

    model: str
    #: the run folder; None: :func:`default_run_dir` (``runs/<model>-<data>[-<split>]``)
    out: str | Path | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    data: str = "mini"
    split: str | None = None
    protocol: str = "star"
    batch_size: int | None = None
    limit: int | None = None
    seed: int = 0
    num_shards: int = 1
    shard_id: int = 0
    fresh: bool = False
    strict: bool = False
    skip_invalid: bool = False
    open_taxonomy: bool = False
    retry_errors: bool = False
    score: bool = True


@dataclass
class EvalOutcome:
    run_dir: Path
    predictions_path: Path
    run_info: dict[str, Any]
    already_done: int
    stats: LoopStats | None
    result: Any = None
    source: Source | None = None
    split: str = ""


def resolve_out(config: EvalConfig, bound: BoundModel) -> Path:
    """``config.out``, or the default run folder this model, data and split name."""
    if config.out is not None:
        return Path(config.out)
    return default_run_dir(bound.name, bound.identity_args, config.data, config.split, path_arg=bound.spec.path_arg)


def open_data(spec: str, *, skip_invalid: bool = False, open_taxonomy: bool = False) -> Source:
    from reasonseg_x.data.resolve import open_source

    return open_source(spec, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)


def make_run_dir(directory: Path) -> None:
    """Create a run folder, or say plainly why it cannot be one."""
    if directory.exists() and not directory.is_dir():
        raise InvalidInputError(f"--out {directory} is a file, not a folder; choose a folder (it is created)")
    try:
        with writing(directory):
            directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create the run folder {directory}: {exc.strerror or exc}") from None


def lock_run_dir(run_dir: Path) -> Any:
    """Hold an exclusive lock on a run folder (a second writer would interleave lines)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(run_dir / LOCK_FILE), timeout=0)
    try:
        with writing(run_dir / LOCK_FILE):
            lock.acquire()
    except Timeout:
        raise ReasonSegXError(f"another reasonseg-x process is writing to {run_dir}; wait for it or use another --out") \
            from None
    return lock


@contextmanager
def holding_run_folder(directory: str | Path) -> Iterator[None]:
    """Hold a run folder's lock while another command (``score -o RUN``) writes into it, if it is one.

    A folder ``eval`` or ``merge`` ever wrote to carries the lock file; while a run holds it, this
    refuses (naming the folder) instead of writing scores of a half-written predictions file. Other
    folders get no lock file.
    """
    folder = Path(directory)
    if not (folder / LOCK_FILE).exists():
        yield
        return
    lock = lock_run_dir(folder)
    try:
        yield
    finally:
        lock.release()


def _seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            torch.manual_seed(seed)
        except Exception:  # noqa: BLE001
            pass


def _clear_run(run_dir: Path) -> None:
    with writing(run_dir / PREDICTIONS_FILE):
        (run_dir / PREDICTIONS_FILE).unlink(missing_ok=True)
    remove_record(run_dir)


def data_fingerprint(source: Source, split: str) -> str:
    """What a run's identity pins of the data: the model's inputs (ids, queries, images) and the masks.

    The ground-truth fingerprint alone misses an edited query or a swapped image, and would mix
    predictions made on different inputs. Cheap: file digests, or the spec of generated data.
    """
    method = getattr(source, "input_fingerprint", None)
    return method(split) if callable(method) else source.fingerprint(split)


def run_eval(config: EvalConfig, *, source: Source | None = None, progress: ProgressFactory | None = None,
             bound: BoundModel | None = None) -> EvalOutcome:
    """Predict (resuming what is on disk) and score; see the module docstring for the order of work."""
    total_clock = Stopwatch()
    shard = Shard(config.shard_id, config.num_shards)
    if config.batch_size is not None and config.batch_size < 1:
        raise InvalidInputError(f"--batch-size must be >= 1, got {config.batch_size}")
    if config.score:  # an unknown protocol must stop the run before the model does any work
        from reasonseg_x.evaluators.protocols import get_protocol

        get_protocol(config.protocol)
    bound = bound or bind_arguments(config.model, config.model_args)
    out_dir = resolve_out(config, bound)
    run_dir = out_dir / shard.dirname if shard.count > 1 else out_dir
    if source is None:
        source = open_data(config.data, skip_invalid=config.skip_invalid, open_taxonomy=config.open_taxonomy)
    split = source.resolve_split(config.split)
    n_split, selected, mine = Coverage(config.limit, shard).select(source, split)
    if not selected:
        raise source.empty_split_error(split)
    fingerprint = data_fingerprint(source, split)
    identity = RunIdentity(bound.name, bound.identity_args, fingerprint, split, int(config.seed), shard.count, shard.index)

    data_s = total_clock.seconds()

    make_run_dir(out_dir)
    make_run_dir(run_dir)
    lock = lock_run_dir(run_dir)
    try:
        remove_stale_temporaries(run_dir)  # left by a kill inside an atomic write; we hold the lock
        if config.fresh:
            _clear_run(run_dir)
        predictions_path = run_dir / PREDICTIONS_FILE
        record = read_record(run_dir)
        existing = None if record is None else record.info
        if existing is None:
            if predictions_path.exists() and predictions_path.stat().st_size > 0:
                raise InvalidInputError(f"{predictions_path} exists but {run_dir} has no run.json, so its origin is "
                                        "unknown; pass --fresh to discard it, or choose a new --out")
        elif holds_predictions(predictions_path):
            check_identity(existing, identity, run_dir, data_spec=source.spec or config.data)
        else:
            existing = None  # a run that failed before predicting anything: nothing to mix, start anew
        store = PredictionStore(predictions_path)
        stored = store.recover()
        mine_set = set(mine)
        foreign = [i for i in stored.lines if i not in mine_set]
        if foreign:
            raise InvalidInputError(
                f"{predictions_path} holds {len(foreign)} predictions outside this run's {len(mine)} samples "
                f"(e.g. {foreign[0]!r}): it was run with {_limit_text((existing or {}).get('data', {}).get('limit'))}, "
                f"this run asks for {_limit_text(config.limit)}. Rerun with the earlier --limit (or a larger one), "
                "pass --fresh to start over, or choose a new --out")
        retried = 0
        if config.retry_errors:
            failed = {i for i, status in stored.statuses.items() if status == "error"}
            if failed:
                stored = store.drop(stored, failed)
                retried = len(failed)
        info = _start_info(existing, identity, bound, source, config, split, len(selected), len(mine), shard)
        session: dict[str, Any] = {"started": utc_now(), "resumed_from": len(stored.lines), "data_s": data_s}
        if retried:
            session["retried_errors"] = retried
        info["sessions"].append(session)
        write_record(run_dir, info)

        remaining = [i for i in mine if i not in stored.lines]
        stats: LoopStats | None = None
        if remaining:
            stats = _predict(bound, source, split, remaining, store, config, session, info, run_dir, progress,
                             total=len(mine), done=len(stored.lines))
        final = read_stored_lines(predictions_path)
        declared = set(stats.declared_missing) if stats is not None else set()
        missing = [i for i in mine if i not in final.lines and i not in declared]
        skipped: list[str] = []
        if missing and config.skip_invalid and source.skipped:  # bad rows that only samples() detects (images)
            skipped, missing = missing, []
        if missing:
            info["status"] = "failed"
            info["error"] = f"{len(missing)} ids were never predicted (source yielded fewer samples than ids)"
            write_record(run_dir, info)
            raise InvalidInputError(f"the source did not yield {len(missing)} of this run's samples "
                                    f"(e.g. {missing[0]!r}); its samples() and ground_truth() disagree")
        info["counts"] = _counts(final, len(mine))
        info.pop("not_written", None)
        if declared or skipped:  # merge and score need the ids: they are absent from the file on purpose
            info["not_written"] = {"declared_missing": sorted(declared), "skipped_rows": sorted(skipped)}
            if skipped:
                info["not_written"]["skipped_where"] = skipped_detail(source.skipped)
            info["counts"].update(declared_missing=len(declared), skipped_rows=len(skipped))
        info["status"] = "complete"
        session["finished"] = utc_now()
        info["updated"] = session["finished"]
        write_record(run_dir, info)

        outcome = EvalOutcome(run_dir, predictions_path, info, len(stored.lines), stats, source=source, split=split)
        if config.score:
            clock = Stopwatch()
            coverage = Coverage(config.limit, shard, frozenset(skipped))
            outcome.result = score_run(run_dir, source, split, coverage, protocol=config.protocol,
                                       strict=config.strict, seed=config.seed, selected=(n_split, mine))
            session["score_s"] = clock.seconds()
        session["total_s"] = total_clock.seconds()
        write_record(run_dir, info)
    finally:
        lock.release()
    return outcome


def _counts(stored: Any, expected: int) -> dict[str, Any]:
    """run.json's ``counts``: how many of this run's samples the predictions file holds, by status."""
    statuses: dict[str, int] = {}
    for status in stored.statuses.values():
        statuses[status] = statuses.get(status, 0) + 1
    return {"expected": expected, "written": len(stored.lines), "statuses": dict(sorted(statuses.items()))}


def _limit_text(limit: int | None) -> str:
    return f"--limit {limit}" if limit is not None else "no --limit (the whole split)"


def _start_info(existing: dict[str, Any] | None, identity: RunIdentity, bound: BoundModel, source: Source,
                config: EvalConfig, split: str, n_selected: int, n_mine: int, shard: Shard) -> dict[str, Any]:
    info = dict(existing) if existing else {"kind": "eval", "created": utc_now(), "sessions": []}
    info.update({
        "status": "running",
        "identity": identity.to_json(),
        "model": {"name": bound.name, "factory": bound.spec.factory, "args": bound.args, "origin": bound.spec.origin},
        "data": {"spec": source.spec or config.data, "split": split, "input_fingerprint": identity.fingerprint,
                 "limit": config.limit, "n_selected": n_selected, "open_taxonomy": config.open_taxonomy,
                 "skip_invalid": config.skip_invalid,
                 "shard": {"index": shard.index, "count": shard.count, "n": n_mine,
                           "rule": "sorted ids, position j -> shard j % count"}},
        "protocol": config.protocol,
        "seed": int(config.seed),
        "environment": environment(),
        "updated": utc_now(),
    })
    info.pop("error", None)
    info.setdefault("sessions", [])
    return info


def _predict(bound: BoundModel, source: Source, split: str, remaining: list[str], store: PredictionStore,
             config: EvalConfig, session: dict[str, Any], info: dict[str, Any], run_dir: Path,
             progress: ProgressFactory | None, *, total: int, done: int) -> LoopStats:
    predictor = None
    try:
        load = Stopwatch()
        predictor = bound.instantiate()
        session["load_model_s"] = load.seconds()
        info["environment"] = environment()  # again: the model may have brought up GPUs
        _seed_everything(int(config.seed))
        batch_size = config.batch_size or getattr(predictor, "default_batch_size", None) or DEFAULT_BATCH_SIZE
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"model {bound.name!r}: default_batch_size must be an int >= 1, got {batch_size!r}")
        session["batch_size"] = int(batch_size)
        samples = source.samples_of(split, remaining)  # a resumed run reads (renders) only what is left
        bar = progress(total, done, bound.name) if progress else nullcontext()
        clock = Stopwatch()
        with bar as reporter:
            advance = getattr(reporter, "advance", None)
            stats = predict_samples(predictor, samples, store, name=bound.name, batch_size=int(batch_size),
                                    on_batch=advance)
        elapsed = clock.seconds()
        _record_predictor_info(session, predictor)
        session.update(stats.to_json())
        session["wall_s"] = elapsed
        session["samples_per_s"] = round(stats.predicted / elapsed, 3) if elapsed > 0 else None
        if stats.first_errors:
            session["first_errors"] = stats.first_errors
        return stats
    except BaseException as exc:
        info["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        info["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        _record_predictor_info(session, predictor)
        session["finished"] = utc_now()
        store.close()
        try:  # what the next run resumes from
            info["counts"] = _counts(read_stored_lines(store.path), total)
        except ReasonSegXError:
            pass
        try:
            write_record(run_dir, info)
        except WriteError:  # the folder that refused the predictions may refuse run.json too: the
            pass            # predictions file alone decides what the next run resumes from
        raise
    finally:
        store.close()


def _record_predictor_info(session: dict[str, Any], predictor: Any) -> None:
    """``session["predictor"]``: what a predictor's optional ``run_info()`` reports (e.g. an endpoint's
    model id and request parameters); a failing hook is noted, never fatal."""
    hook = getattr(predictor, "run_info", None)
    if not callable(hook):
        return
    try:
        session["predictor"] = hook()
    except Exception as exc:  # noqa: BLE001 - a report must not fail the run
        session["predictor"] = {"run_info_error": f"{type(exc).__name__}: {exc}"}


def score_run(run_dir: Path, source: Source, split: str, coverage: Coverage, *, protocol: str, strict: bool,
              seed: int, selected: tuple[int | None, list[str]] | None = None) -> Any:
    """Score ``run_dir/predictions.jsonl`` on the samples ``coverage`` names, exactly as ``reasonseg-x
    score -p RUN`` does, writing its outputs there (``selected``: see :meth:`Coverage.restrict`)."""
    from reasonseg_x.evaluators.api import score_predictions, write_outputs
    from reasonseg_x.predictions import read_predictions

    scored = coverage.restrict(source, split, selected=selected)
    predictions = read_predictions(Path(run_dir) / PREDICTIONS_FILE)
    result = score_predictions(scored, split, predictions, protocol=protocol, strict=strict, seed=seed)
    write_outputs(result, run_dir, source=scored)
    return result
