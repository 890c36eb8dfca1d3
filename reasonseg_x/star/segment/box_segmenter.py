"""The torch-free segmenter ``box``: an object's mask is its box, filled.

Why: with generation on an endpoint (``backend=openai``), a core install without the models
extra can then run a model end to end (answer mask = the union of its boxes), and a SAM-free
figure says how much SAM adds over the model's own localisation. SAM stays the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from reasonseg_x.star.segment.base import PreparedImage, Prompt, Segmenter

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["BoxSegmenter", "box_mask"]


def box_mask(box: Sequence[float], height: int, width: int, out: np.ndarray | None = None) -> np.ndarray:
    """Pixels ``x1..x2`` x ``y1..y2`` (inclusive, coordinates rounded to the nearest pixel) of an
    ``H x W`` image; the corners are already clipped into the image (``clip_prompt``)."""
    mask = np.zeros((height, width), dtype=bool) if out is None else out
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    mask[max(y1, 0):max(y2 + 1, 0), max(x1, 0):max(x2 + 1, 0)] = True
    return mask


class BoxSegmenter(Segmenter):
    """Box prompts become filled boxes (score 1); a prompt without a box gives an empty mask (score 0)."""

    name = "box"
    max_prompts_per_call = 1 << 16

    def prepare_image(self, image: Image.Image) -> PreparedImage:
        return PreparedImage((image.height, image.width), None)  # no pixels needed: skip the RGB conversion

    def _embed(self, inputs: Any) -> Any:
        return None

    def _decode_into(self, prompts: Sequence[Prompt], out: np.ndarray) -> np.ndarray:
        height, width = self.image_size
        scores = np.zeros(len(prompts), dtype=np.float32)
        for row, prompt in enumerate(prompts):  # ``out`` arrives zeroed: only boxes are written
            if prompt.box is not None:
                box_mask(prompt.box, height, width, out[row])
                scores[row] = 1.0
        return scores

    def _decode(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        height, width = self.image_size
        masks = np.zeros((len(prompts), height, width), dtype=bool)
        return masks, self._decode_into(prompts, masks)
