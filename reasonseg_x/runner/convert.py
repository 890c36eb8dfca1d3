"""Turn a predictor's :class:`Output` into a :class:`Prediction` line, checking it on the way.

A predictor bug (wrong mask size, a float mask, an unknown status) must stop the run with a
message naming the predictor and the sample, not turn into silently wrong numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reasonseg_x import masks
from reasonseg_x.errors import InvalidInputError, InvalidMaskError
from reasonseg_x.predictions import FAILURE_STATUSES, STATUSES, Prediction
from reasonseg_x.predictors.protocol import Output, Query

__all__ = ["output_to_prediction", "error_prediction", "to_jsonable"]


def output_to_prediction(output: Any, query: Query, *, predictor: str) -> Prediction:
    """Validate one output against its query and convert it (bool arrays become RLE)."""
    where = f"predictor {predictor!r}, sample {query.id!r}"
    if not isinstance(output, Output) and not (hasattr(output, "mask") and hasattr(output, "status")):
        raise InvalidInputError(f"predict() returned {type(output).__name__}, expected an Output", where)
    status = output.status
    if status not in STATUSES:
        raise InvalidInputError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}", where)
    mask = None if status in FAILURE_STATUSES else _check_mask(output.mask, query, where)
    meta: dict[str, Any] = {}
    for key in ("boxes", "points", "candidates", "timings"):
        value = getattr(output, key, None)
        if value is not None:
            meta[key] = to_jsonable(value)
    extra = getattr(output, "meta", None)
    if isinstance(extra, dict):
        meta.update(to_jsonable(extra))
    error = getattr(output, "error", None)
    if status == "error" or error:
        meta["error"] = str(error) if error else "predictor reported an error without a message"
    raw_text = output.raw_text
    if raw_text is not None and not isinstance(raw_text, str):
        raise InvalidInputError(f"raw_text must be a string, got {type(raw_text).__name__}", where)
    return Prediction(id=query.id, mask=mask, status=status, raw_text=raw_text, meta=meta)


def error_prediction(query_id: str, message: str) -> Prediction:
    """A prediction recording that the predictor failed on this sample."""
    return Prediction(id=query_id, mask=None, status="error", meta={"error": message})


def _check_mask(mask: Any, query: Query, where: str) -> masks.RLE | None:
    if mask is None:
        return None
    if isinstance(mask, dict):
        return masks.validate_rle(mask, expected_size=(query.height, query.width), where=where)
    if not isinstance(mask, np.ndarray):
        if hasattr(mask, "detach") and hasattr(mask, "cpu"):  # a torch tensor
            mask = mask.detach().cpu().numpy()
        else:
            raise InvalidMaskError(f"mask must be a boolean numpy array or an RLE dict, got {type(mask).__name__}",
                                   where)
    if mask.dtype != np.bool_:
        raise InvalidMaskError(f"mask has dtype {mask.dtype}, expected bool (threshold it, e.g. mask > 0.5)", where)
    if mask.shape != (query.height, query.width):
        raise InvalidMaskError(f"mask shape {tuple(mask.shape)} differs from the image size "
                               f"({query.height}, {query.width}) (height, width)", where)
    return masks.encode(mask)


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays unwrapped, 2-D bool arrays as RLE, NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype == np.bool_ and value.ndim == 2:
            return masks.encode(value)
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "tolist"):  # torch tensors and friends
        return to_jsonable(value.tolist())
    return str(value)
