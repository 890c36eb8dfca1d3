"""The in-memory evaluator: feed (ground truth, prediction) pairs, get the numbers of metrics.json.

Its only state is the list of per-sample records (in the spirit of torchmetrics' declared state
and detectron2's process/evaluate split): :meth:`Evaluator.update` scores each pair on RLE at
once, :meth:`Evaluator.compute` aggregates, and :meth:`Evaluator.merge` concatenates the records
of evaluators that saw disjoint samples (distributed gathering). ``reasonseg-x score``, the
runner, the case viewer and the leaderboard host all score through this class, so there is one
scoring path.

    ev = Evaluator(protocol="star")
    for gts, preds in batches:        # GroundTruth, Sample, a row of load_dataset(...) or a mapping ...
        ev.update(gts, preds)         # ... against Prediction, RLE, bool array or None (missing)
    metrics = ev.compute()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_x._version import __version__
from reasonseg_x.data.record import GROUP_KEYS, GroundTruth, Sample
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.evaluators.aggregate import aggregate
from reasonseg_x.evaluators.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES
from reasonseg_x.evaluators.protocols import Protocol, get_protocol
from reasonseg_x.evaluators.records import RecordSet, SampleRecord, merge_records
from reasonseg_x.evaluators.sample import prepare_truth, score_sample
from reasonseg_x.masks import encode, is_rle, validate_rle
from reasonseg_x.predictions import Prediction, PredictionProblem, PredictionSet, prediction_from_json
from reasonseg_x.taxonomy import Taxonomy

__all__ = ["Evaluator", "build_metrics"]

#: problems listed in metrics.json (the full list is in the result object)
MAX_LISTED_PROBLEMS = 50


def build_metrics(records: RecordSet, *, data: dict[str, Any] | None = None, predictions: dict[str, Any] | None = None,
                  n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = DEFAULT_LEVEL,
                  extra_counts: dict[str, int] | None = None, problems: list[PredictionProblem] | None = None,
                  note: str | None = None, taxonomy: Taxonomy | None = None) -> dict[str, Any]:
    """metrics.json: provenance first, then the aggregates of :func:`aggregate`."""
    protocol = get_protocol(records.protocol)
    metrics: dict[str, Any] = {
        "protocol": protocol.name,
        "protocol_description": protocol.description,
        "toolkit": "reasonseg-x",
        "version": __version__,
        "data": data or {},
    }
    if predictions:
        metrics["predictions"] = predictions
    if note:
        metrics["note"] = note
    metrics.update(aggregate(records, n_resamples=n_resamples, seed=seed, level=level, extra_counts=extra_counts,
                             taxonomy=taxonomy))
    _complete_single_source(metrics, records, data or {})
    if problems:
        metrics["problems"] = [{"where": p.where, "reason": p.reason, "id": p.id, "kind": p.kind}
                               for p in problems[:MAX_LISTED_PROBLEMS]]
        metrics["problems_total"] = len(problems)
    return metrics


def _complete_single_source(metrics: dict[str, Any], records: RecordSet, data: dict[str, Any]) -> None:
    """``by_source`` even for single-source data (one entry: the overall numbers), and the count of
    ground-truth samples without a target, so that every metrics.json has the same shape."""
    metrics["counts"]["gt_no_target"] = int(records.columns()["gt_empty"].sum()) if len(records) else 0
    given = records.group_labels("source")
    labels = {v for v in given if v is not None}
    if "by_source" in metrics or len(labels) > 1 or (labels and None in given):
        return
    name = next(iter(labels)) if labels else (str(data.get("spec") or "").split(" (")[0] or "(unlabelled)")
    metrics_overall = metrics["overall"]
    items = list(metrics.items())
    at = [key for key, _ in items].index("counts")  # beside the other groupings, before the counts
    metrics.clear()
    metrics.update(items[:at] + [("by_source", {name: dict(metrics_overall)})] + items[at:])


def _taxonomy(taxonomy: Taxonomy | str | Path | None) -> Taxonomy:
    from reasonseg_x.taxonomy import load_taxonomy, reasoning_types

    if taxonomy is None:
        return reasoning_types(open=True)
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    return load_taxonomy(str(taxonomy))


class Evaluator:
    """Protocol-exact scoring of in-memory pairs; state = the per-sample records.

    ``protocol``: a name or alias (``star``, ``visionreasoner``/``segzero``, ``lisa``, ``gres``).
    ``taxonomy``: resolves each sample's ``reasoning_type`` (codes, names, aliases -> ids) and
    orders the groups; default the shipped ReasonSeg-X taxonomy, open (unknown labels become their
    own group). ``resize``: accept masks of another size (nearest resize) instead of raising.
    ``skip_invalid``: a bad prediction is scored as a failure counted ``invalid`` and listed in
    :attr:`problems` instead of raising. ``n_resamples``/``seed``/``level``: bootstrap intervals.
    """

    def __init__(self, protocol: str | Protocol = "star", taxonomy: Taxonomy | str | Path | None = None, *,
                 resize: bool = False, skip_invalid: bool = False, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0, level: float = DEFAULT_LEVEL) -> None:
        self.protocol = get_protocol(protocol)
        self.taxonomy = _taxonomy(taxonomy)
        self.resize = resize
        self.skip_invalid = skip_invalid
        self.n_resamples, self.seed, self.level = int(n_resamples), int(seed), float(level)
        self.problems: list[PredictionProblem] = []
        self._records = RecordSet(self.protocol.name)
        self._ids: set[str] = set()

    # -- state ---------------------------------------------------------------------------------

    @property
    def records(self) -> RecordSet:
        """The per-sample records, in the order the samples were added."""
        return self._records

    def __len__(self) -> int:
        return len(self._records)

    def reset(self) -> None:
        self._records = RecordSet(self.protocol.name)
        self._ids.clear()
        self.problems.clear()

    def merge(self, other: Evaluator | RecordSet | Iterable[SampleRecord]) -> Evaluator:
        """Add the records of ``other`` (another evaluator, e.g. gathered from another rank).

        Overlapping sample ids or another protocol raise :class:`InvalidInputError`."""
        if isinstance(other, Evaluator) and other.protocol.name != self.protocol.name:
            raise InvalidInputError(f"cannot merge an evaluator of protocol {other.protocol.name!r} into "
                                    f"{self.protocol.name!r}")
        part = other.records if isinstance(other, Evaluator) else other
        merged = merge_records([self._records, part], protocol=self.protocol.name)
        self._records = merged
        self._ids = set(merged.index())
        if isinstance(other, Evaluator):
            self.problems.extend(other.problems)
        return self

    # -- scoring -------------------------------------------------------------------------------

    def add(self, gt: GroundTruth, pred: Prediction | None, *, status: str | None = None,
            where: str | None = None) -> SampleRecord:
        """Score one normalised pair and keep its record; ``pred`` None is a missing prediction,
        ``status="invalid"`` a prediction line that could not be read. ``where`` names the
        prediction in error messages."""
        if gt.id in self._ids:
            raise InvalidInputError(f"sample {gt.id!r} was already scored by this evaluator", where)
        gt = self._resolve_groups(gt)
        truth = prepare_truth(gt, self.protocol)
        try:
            record = score_sample(truth, pred, self.protocol, status=status, resize=self.resize)
        except InvalidInputError as exc:
            if not self.skip_invalid:
                raise InvalidInputError(exc.reason, where or exc.where) from None
            self.problems.append(PredictionProblem(where or exc.where or f"prediction {gt.id!r}", exc.reason, gt.id))
            record = score_sample(truth, None, self.protocol, status="invalid")
        self.add_record(record)
        return record

    def add_from(self, gt: GroundTruth, predictions: PredictionSet) -> SampleRecord:
        """Score ``gt`` against its line of a predictions file: absent is ``missing``, a line that could
        not be read ``invalid`` (what ``score``, ``eval`` and the viewer all do)."""
        pred = predictions.by_id.get(gt.id)
        status = "invalid" if pred is None and gt.id in predictions.invalid_ids else None
        return self.add(gt, pred, status=status, where=predictions.location(gt.id))

    def add_record(self, record: SampleRecord) -> None:
        """Keep a record scored elsewhere (reference outputs hold only I and U, no masks)."""
        if record.id in self._ids:
            raise InvalidInputError(f"sample {record.id!r} was already scored by this evaluator")
        self._ids.add(record.id)
        self._records.append(record)

    def update(self, ground_truths: Any, predictions: Any) -> None:
        """Score one pair or a batch.

        ``ground_truths``: a :class:`GroundTruth`, a :class:`Sample` (what ``open_source(...)``
        yields), a row of ``load_dataset(...)`` (class-label ints are mapped back to names through
        the dataset's features when the dataset itself is passed, else through the shipped
        taxonomy, as the export wrote them), a mapping ``{"id", "target", "ignore"?, "groups"? or
        "reasoning_type"/"query_kind"/"source"?}`` (masks as RLE or 2-D arrays), or a sequence (or
        a ``datasets.Dataset``) of them. ``predictions``: for each ground truth, in the same order,
        a :class:`Prediction`, an RLE, a 2-D array, a predictions-file object ``{"id", "mask",
        "status"}`` or ``None`` (missing); for a batch also a mapping ``id -> prediction`` (absent
        ids are missing) or a 3-D array stacking the masks. A batch with a bad pair raises and adds
        nothing. A columnar batch (a dict of equal-length columns, what ``dataset[0:8]`` gives) is a
        batch of its rows.
        """
        names = _label_names(getattr(ground_truths, "features", None))
        if isinstance(ground_truths, Mapping) and _is_columnar(ground_truths):
            ground_truths = _rows(ground_truths)
        if isinstance(ground_truths, (GroundTruth, Sample, Mapping)):
            pairs = [(ground_truths, predictions)]
        else:
            gts = list(ground_truths)
            if isinstance(predictions, Mapping):
                if is_rle(predictions) or "mask" in predictions:
                    raise InvalidInputError("a batch of ground truths needs one prediction each (a sequence, or a "
                                            "mapping id -> prediction), not a single prediction")
                preds = [predictions.get(self._gt_id(g, n)) for n, g in enumerate(gts)]
            elif predictions is None or (isinstance(predictions, np.ndarray) and predictions.ndim != 3):
                raise InvalidInputError("a batch of ground truths needs a sequence of predictions or a 3-D array "
                                        "of masks")
            else:
                preds = list(predictions)  # a 3-D array gives its masks
            if len(preds) != len(gts):
                raise InvalidInputError(f"{len(gts)} ground truths but {len(preds)} predictions in this batch")
            pairs = list(zip(gts, preds))
        kept, listed = len(self._records), len(self.problems)
        try:
            for n, (raw_gt, raw_pred) in enumerate(pairs):
                gt = self._ground_truth(raw_gt, f"ground truth [{n}]", names)
                where = f"prediction [{n}] (id {gt.id!r})"
                self.add(gt, self._prediction(raw_pred, gt, where), where=where)
        except BaseException:  # a batch counts whole or not at all: a retry must not meet half of it
            for record in self._records.records[kept:]:
                self._ids.discard(record.id)
            self._records = RecordSet(self.protocol.name, self._records.records[:kept])
            del self.problems[listed:]
            raise

    def compute(self, **provenance: Any) -> dict[str, Any]:
        """The content of metrics.json for the records so far. ``provenance`` (``data``,
        ``predictions``, ``extra_counts``, ``note``) is passed to :func:`build_metrics`; the
        problems met by this evaluator are listed."""
        problems = provenance.pop("problems", None)
        return build_metrics(self._records, n_resamples=self.n_resamples, seed=self.seed, level=self.level,
                             problems=self.problems if problems is None else problems, taxonomy=self.taxonomy,
                             **provenance)

    # -- input normalisation -------------------------------------------------------------------

    def _resolve_groups(self, gt: GroundTruth) -> GroundTruth:
        label = gt.groups.get("reasoning_type")
        if label is None:
            return gt
        resolved = self.taxonomy.resolve(label)
        if resolved == label:
            return gt
        groups = {k: v for k, v in gt.groups.items() if k != "reasoning_type"}
        if resolved is not None:
            groups["reasoning_type"] = resolved
        return replace(gt, groups=groups)

    @staticmethod
    def _gt_id(obj: Any, n: int) -> str:
        sample_id = (obj.id if isinstance(obj, (GroundTruth, Sample)) else obj.get("id") if isinstance(obj, Mapping)
                     else None)
        if not isinstance(sample_id, str) or not sample_id:
            raise InvalidInputError(f"a ground truth needs a non-empty string 'id', got {sample_id!r}",
                                    f"ground truth [{n}]")
        return sample_id

    def _ground_truth(self, obj: Any, where: str, names: Mapping[str, Sequence[str]]) -> GroundTruth:
        if isinstance(obj, GroundTruth):
            return obj
        if isinstance(obj, Sample):
            return obj.ground_truth()
        if not isinstance(obj, Mapping):
            raise InvalidInputError(f"expected a GroundTruth, a Sample or a mapping (a load_dataset row), got "
                                    f"{type(obj).__name__}", where)
        sample_id = self._gt_id(obj, 0)
        where = f"{where} (id {sample_id!r})"
        if "target" not in obj:
            raise InvalidInputError("missing 'target' (the target mask, RLE or 2-D array)", where)
        target = _mask(obj["target"], None, where)
        size = [int(v) for v in target["size"]]
        ignore = None if obj.get("ignore") is None else _mask(obj["ignore"], size, f"{where} ignore")
        groups = dict(obj.get("groups") or {})
        for key in GROUP_KEYS:
            if obj.get(key) is not None:
                groups[key] = _label(obj[key], names.get(key), key, where)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in groups.items()):
            raise InvalidInputError(f"groups must map names to strings, got {groups!r}", where)
        return GroundTruth(id=sample_id, height=size[0], width=size[1], target=target, ignore=ignore, groups=groups)

    @staticmethod
    def _prediction(obj: Any, gt: GroundTruth, where: str) -> Prediction | None:
        if obj is None:
            return None
        if isinstance(obj, Prediction):
            pred = obj
        elif isinstance(obj, Mapping) and not is_rle(obj):
            pred = prediction_from_json(dict(obj, id=obj.get("id", gt.id)), where)
        else:
            return Prediction(id=gt.id, mask=_mask(obj, None, where))
        if pred.id != gt.id:
            raise InvalidInputError(f"prediction id {pred.id!r} is paired with ground truth {gt.id!r}", where)
        return pred


def _column_length(value: Any) -> int | None:
    """The length of a column (a list, tuple or array), None for anything else."""
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes)):
        return len(value)
    return None


def _is_columnar(batch: Mapping[str, Any]) -> bool:
    """A dict of columns (``dataset[0:8]``) rather than one row: its ``id`` is a list of ids."""
    return _column_length(batch.get("id")) is not None


def _rows(batch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a columnar batch; a column of another length than ``id`` is refused, named."""
    n = len(batch["id"])
    for key, column in batch.items():
        length = _column_length(column)
        if length != n:
            raise InvalidInputError(f"a columnar batch needs equal-length columns: 'id' has {n} values, {key!r} "
                                    f"has {'no list of values' if length is None else length}")
    return [{key: column[i] for key, column in batch.items()} for i in range(n)]


def _label_names(features: Any) -> dict[str, Sequence[str]]:
    """Class-label names of the group columns: the dataset's features when given (a
    ``datasets.Dataset`` has them), else the shipped taxonomy's ids, which is what
    ``load_dataset`` and the compact export number (``data/compact.py``)."""
    from reasonseg_x.taxonomy import query_kinds, reasoning_types

    names: dict[str, Sequence[str]] = {"reasoning_type": reasoning_types().ids, "query_kind": query_kinds().ids}
    if isinstance(features, Mapping):
        for key in names:
            given = getattr(features.get(key), "names", None)
            if isinstance(given, (list, tuple)) and given:
                names[key] = [str(n) for n in given]
    return names


def _label(value: Any, names: Sequence[str] | None, key: str, where: str) -> Any:
    """A group label: a class-label int (a ``load_dataset`` row) becomes its name; strings stay."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and names is not None:
        if not 0 <= int(value) < len(names):
            raise InvalidInputError(f"{key} class index {int(value)} is out of range 0..{len(names) - 1}", where)
        return names[int(value)]
    return value


def _mask(obj: Any, size: Sequence[int] | None, where: str) -> Any:
    """An RLE from an RLE (validated) or a 2-D array (encoded); ``size`` is checked when given."""
    if isinstance(obj, Mapping):
        return validate_rle(dict(obj), expected_size=size, where=where)
    array = np.asarray(obj)
    if array.ndim != 2:
        raise InvalidInputError(f"a mask must be an RLE or a 2-D array, got shape {array.shape}", where)
    if size is not None and list(array.shape) != [int(size[0]), int(size[1])]:
        raise InvalidInputError(f"mask shape {list(array.shape)} differs from the target's {list(size)}", where)
    return encode(array)
