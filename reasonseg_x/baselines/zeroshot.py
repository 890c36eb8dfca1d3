"""Any Qwen-VL checkpoint zero-shot, asked in its own grounding format: ``eval --model vlm``.

Why: a base model asked with a fine-tuned model's prompt collapses (zero-shot Qwen2.5-VL-3B
scored under VisionReasoner's prompt: 8.1 gIoU instead of 47.6), so a fair zero-shot baseline asks
each model the way it was trained to ground (``-a format=``, ``baselines/formats.yaml``) and reads
the answer in that format's coordinate frame. Everything else is StAR's pipeline: the same fast
engine or endpoint backend, the same SAM (or ``box``) stage, the same run record, which also keeps
the format and its prompt so that a zero-shot number is never mistaken for a fine-tuned one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from reasonseg_x.star.options import PipelineOptions, option
from reasonseg_x.star.pipeline import VlmSamPipeline

__all__ = ["ZeroShotOptions", "ZeroShotVlmPredictor"]


@dataclass(frozen=True, kw_only=True)
class ZeroShotOptions(PipelineOptions):
    """The pipeline's arguments plus the answer format."""

    format: str = option("auto", "answer format (baselines/formats.yaml): qwen2.5-native, qwen3-native, internvl, "
                                 "plain-boxes, star; auto = the checkpoint family's own (Qwen2.5-VL or Qwen3-VL)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.format != "auto":
            from reasonseg_x.star.answer.formats import get_format

            fixed = get_format(self.format)  # an unknown name fails before the model loads
            if self.coords != "auto" and fixed.frame != "model":  # silently ignored, it would mislead
                from reasonseg_x.errors import InvalidInputError

                raise InvalidInputError(f"coords={self.coords} has no effect with format={self.format}: its answers "
                                        f"are in its own frame ({fixed.frame}, baselines/formats.yaml); drop -a "
                                        "coords (it applies to format=star and format=auto)", "coords")


class ZeroShotVlmPredictor(VlmSamPipeline):
    """A VLM (full weights, no adapter needed) asked in one answer format, plus SAM."""

    Options: ClassVar[type[PipelineOptions]] = ZeroShotOptions
    catalog_name: ClassVar[str] = "vlm"

    def __init__(self, checkpoint: str | None = None, **options: Any) -> None:
        from reasonseg_x.star.answer.formats import format_for_model, get_format

        super().__init__(checkpoint, **options)
        name = self.options.format  # type: ignore[attr-defined]
        #: the checkpoint's own coordinate rule (the ``model`` frame of a format)
        self.model_family = self.coord_family
        self.answer_format = format_for_model(self.model_family) if name == "auto" else get_format(name)
        self.coord_family = self.answer_format.family(self.model_family)

    def prompt_for(self, query_text: str) -> str:
        return self.answer_format.build_prompt(query_text)

    def _parse(self, text: str, width: int, height: int) -> tuple[Any, list[Any]]:
        from reasonseg_x.star.answer.formats import read_answer

        return read_answer(self.answer_format, text, width, height, model_family=self.model_family,
                           rounding=self.coord_rounding)

    def run_info(self) -> dict[str, Any]:
        """The pipeline's record plus the answer format and its prompt (``zero_shot`` marks the run)."""
        return {**super().run_info(), "zero_shot": True, "answer_format": self.answer_format.describe()}
