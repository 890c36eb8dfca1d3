"""Shared fixtures: the tiny StAR checkpoints and models (module-scoped; built on first use, so
modules that never ask for them, and core installs without torch, never build them)."""

from __future__ import annotations

from typing import Any

import pytest

from _star_tiny import TinyCheckpoints, tiny_checkpoints


@pytest.fixture(scope="module")
def ckpt() -> TinyCheckpoints:
    """The tiny checkpoints (built once per process)."""
    return tiny_checkpoints()


@pytest.fixture(scope="module")
def vlm(ckpt: TinyCheckpoints) -> Any:
    """The tiny Qwen2.5-VL with its LoRA adapter in the old key layout, on CPU."""
    from reasonseg_x.star.vlm import load_vlm

    return load_vlm(str(ckpt.lora_old), device="cpu")


@pytest.fixture(scope="module")
def sam(ckpt: TinyCheckpoints) -> Any:
    """The tiny SAM 2 segmenter, on CPU."""
    from reasonseg_x.star.segment.segmenters import load_segmenter

    return load_segmenter(str(ckpt.sam2), device="cpu")
