"""Which device and dtype a model runs on: ``auto`` resolved against what torch sees.

Kept apart from model loading so that the segmenters, gt-box-sam and the generation backends share
one rule, and so that a core install (no torch) gets the "install the models extra" error here
instead of a traceback.
"""

from __future__ import annotations

import os
from typing import Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.star.options import DTYPE_NAMES, check_device_name, check_dtype_name

__all__ = ["DTYPE_NAMES", "check_dtype_name", "import_torch", "resolve_device", "resolve_dtype"]


def import_torch() -> Any:
    """``torch``, or the one-line error a core install should see."""
    try:
        import torch
    except ModuleNotFoundError:
        raise InvalidInputError("this needs torch: install the models extra "
                                "(pip install 'reasonseg-x[models]')") from None
    return torch


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` (all visible GPUs: large models are spread over them) when a GPU is
    visible, else ``cpu``; under a distributed launcher (``WORLD_SIZE`` > 1) -> this rank's GPU.
    An unknown device, or a GPU asked for where none is visible, is an error at once."""
    check_device_name(device)
    torch = import_torch()
    if device.startswith("cuda"):
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= visible:
            raise InvalidInputError(f"device={device} but {visible or 'no'} GPU(s) are visible to torch", "device")
    if device != "auto":
        return device
    if not torch.cuda.is_available():
        return "cpu"
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return f"cuda:{torch.cuda.current_device()}"
    return "cuda"


def resolve_dtype(dtype: str | Any = "auto", device: str = "cpu") -> Any:
    """``auto`` -> bfloat16 on GPU, float32 on CPU (CPU bf16 matmuls are slow and lossy)."""
    torch = import_torch()
    if not isinstance(dtype, str):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    check_dtype_name(dtype)
    return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
            "half": torch.float16, "fp32": torch.float32, "float32": torch.float32, "float": torch.float32}[dtype]
