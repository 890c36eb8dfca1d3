"""Shared by the reward tests: a segmenter that counts image embeddings."""

from __future__ import annotations

from reasonseg_x.star.segment.box_segmenter import BoxSegmenter


class CountingBox(BoxSegmenter):
    """The box segmenter, counting image embeddings (``set_image`` calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = 0

    def set_image(self, image):  # noqa: ANN001, ANN201
        self.embeddings += 1
        return super().set_image(image)
