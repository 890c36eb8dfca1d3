"""Promptable segmenters (SAM 2, SAM 1) behind one small interface.

Why one interface with ``set_image`` + ``segment``: the image encoder is the expensive part of SAM,
so a predictor embeds each image once and then decodes *every* object prompt of *every* sampled
answer of that image in a few batched decoder calls (identical prompts are decoded once; for
transformers' SAM 2 the image-side work of the decoder is shared by all prompts of a call, see
:mod:`reasonseg_x.star.segment.sam2_decoder`). That is what keeps 32-answer test-time scaling close to the
cost of one answer on the SAM side.

Backends: transformers ``Sam2Model`` (default), transformers ``SamModel`` (SAM 1), the ``sam2``
package and the ``segment-anything`` package (both imported lazily). Per prompt: the box and its
positive point(s), multimask output, keep the highest-scoring mask (docs/protocols.md section 4).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.star.segment.base import PreparedImage, Prompt, SegmentResult, Segmenter, clip_prompt

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = [
    "Prompt",
    "SegmentResult",
    "Segmenter",
    "HFSam2Segmenter",
    "HFSamSegmenter",
    "Sam2PackageSegmenter",
    "SegmentAnythingSegmenter",
    "PreparedImage",
    "SEGMENTER_ALIASES",
    "load_segmenter",
    "resolve_segmenter",
    "needs_device",
    "clip_prompt",
]

#: Short names accepted by ``load_segmenter`` -> (backend, reference).
SEGMENTER_ALIASES: dict[str, tuple[str, str]] = {
    **{f"sam2.1-hiera-{size}": ("hf-sam2", f"facebook/sam2.1-hiera-{size}")
       for size in ("tiny", "small", "base-plus", "large")},
    **{f"sam2-hiera-{size}": ("hf-sam2", f"facebook/sam2-hiera-{size}")
       for size in ("tiny", "small", "base-plus", "large")},
    **{f"sam-vit-{size}": ("hf-sam", f"facebook/sam-vit-{size}") for size in ("base", "large", "huge")},
}


def _upsample_logits(low_res: Any, size: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """Bilinear (half-pixel centres) resize of ``[n, h, w]`` mask logits to ``size``, thresholded at 0.

    On CPU OpenCV's resize is ~4x faster than torch's and agrees with it except for float rounding
    at exact zero crossings; on GPU torch stays on the device.
    """
    height, width = size
    try:
        import cv2
    except ImportError:  # opencv is optional: torch on CPU is slower but gives the same masks
        cv2 = None
    if low_res.device.type != "cpu" or cv2 is None:
        import torch.nn.functional as F

        if out is None:
            out = np.empty((low_res.shape[0], height, width), dtype=bool)
        step = 8  # bounds the float32 full-size buffer on the device (8 x 12 MP x 4 B = 384 MB)
        for k in range(0, low_res.shape[0], step):
            up = F.interpolate(low_res[k:k + step, None].float(), (height, width), mode="bilinear",
                               align_corners=False)
            out[k:k + step] = (up[:, 0] > 0).cpu().numpy()
        return out
    logits = low_res.float().numpy()
    if out is None:
        out = np.empty((logits.shape[0], height, width), dtype=bool)
    for k in range(logits.shape[0]):
        np.greater(cv2.resize(logits[k], (width, height), interpolation=cv2.INTER_LINEAR), 0.0, out=out[k])
    return out


def _prompt_arrays(prompts: Sequence[Prompt]) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``boxes [n, 4]``, ``points [n, k, 2]`` and ``labels [n, k]`` (all positive) or None."""
    has_box, k = prompts[0].kind
    boxes = np.array([p.box for p in prompts], dtype=np.float32) if has_box else None
    if k == 0:
        return boxes, None, None
    points = np.array([p.points for p in prompts], dtype=np.float32).reshape(len(prompts), k, 2)
    return boxes, points, np.ones((len(prompts), k), dtype=np.int64)


# ----------------------------------------------------------------------------- transformers backends

class _HFSegmenterBase(Segmenter):
    def __init__(self, model_ref: str, *, device: str = "cpu", dtype: Any = None, model: Any = None,
                 processor: Any = None) -> None:
        super().__init__()
        import torch

        self.device = device
        self.dtype = dtype or torch.float32
        self.model_ref = model_ref
        from reasonseg_x.star.vlm import from_pretrained_or_error, hub_load_kwargs

        if model is None:
            model = from_pretrained_or_error(f"{self.name} segmenter", model_ref, self._model_class().from_pretrained,
                                             dtype=self.dtype, **hub_load_kwargs(model_ref))
        if processor is None:
            from transformers import AutoProcessor

            processor = from_pretrained_or_error(f"{self.name} processor", model_ref, AutoProcessor.from_pretrained,
                                                 **hub_load_kwargs(model_ref))
        self.model = model.to(device=device, dtype=self.dtype).eval()
        self.processor = processor
        self._embedding: Any = None

    prepares_ahead = True

    def _model_class(self) -> Any:
        raise NotImplementedError

    def _preprocess(self, rgb: Image.Image) -> Any:
        return self.processor(images=rgb, return_tensors="pt")  # resize + normalise: numpy on the CPU

    def _embed(self, inputs: Any) -> Any:
        import torch

        with torch.inference_mode():
            pixel_values = inputs["pixel_values"].to(device=self.device, dtype=self.dtype)
            self._embedding = self.model.get_image_embeddings(pixel_values)
        return self._embedding

    def _scale_coords(self, coords: np.ndarray) -> np.ndarray:
        """Original-image pixels -> the model's input frame (last axis x, y)."""
        raise NotImplementedError

    def _upsample(self, low_res: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Low-res logits -> bool masks at the original size (into ``out`` when given)."""
        raise NotImplementedError

    def _prompt_tensors(self, prompts: Sequence[Prompt]) -> dict[str, Any]:
        """``input_boxes`` / ``input_points`` / ``input_labels`` in the model's input frame (None when absent)."""
        import torch

        boxes, points, labels = _prompt_arrays(prompts)
        tensors: dict[str, Any] = {"input_boxes": None, "input_points": None, "input_labels": None}
        if boxes is not None:
            scaled = self._scale_coords(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
            tensors["input_boxes"] = torch.from_numpy(scaled)[None].to(self.device, self.dtype)
        if points is not None:
            tensors["input_points"] = torch.from_numpy(self._scale_coords(points))[None].to(self.device, self.dtype)
            tensors["input_labels"] = torch.from_numpy(labels)[None].to(self.device)
        return tensors

    def _decode(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        low_res, scores = self._decode_low_res(prompts)
        return self._upsample(low_res), scores

    def _decode_into(self, prompts: Sequence[Prompt], out: np.ndarray) -> np.ndarray:
        low_res, scores = self._decode_low_res(prompts)
        self._upsample(low_res, out)
        return scores

    def _decode_low_res(self, prompts: Sequence[Prompt]) -> tuple[Any, np.ndarray]:
        """The chosen (highest predicted IoU) low-resolution mask logits ``[n, h, w]`` and their scores."""
        import torch

        kwargs = {k: v for k, v in self._prompt_tensors(prompts).items() if v is not None}
        with torch.inference_mode():
            out = self.model(image_embeddings=self._embedding, multimask_output=True, **kwargs)
            iou = out.iou_scores[0].float()  # [n, 3]
            best = iou.argmax(dim=-1)
            rows = torch.arange(iou.shape[0], device=iou.device)
            low_res = out.pred_masks[0][rows, best]  # [n, h, w]
        return low_res, iou[rows, best].cpu().numpy().astype(np.float32)


class HFSam2Segmenter(_HFSegmenterBase):
    """transformers ``Sam2Model`` (SAM 2 / 2.1): the image is resized to a square input, no padding."""

    name = "hf-sam2"

    def _model_class(self) -> Any:
        from transformers import Sam2Model

        return Sam2Model

    def _input_side(self) -> tuple[int, int]:
        size = self.processor.image_processor.size
        return int(size["height"]), int(size["width"])

    def _scale_coords(self, coords: np.ndarray) -> np.ndarray:
        height, width = self.image_size
        in_h, in_w = self._input_side()
        out = coords.astype(np.float32).copy()
        out[..., 0] *= in_w / width
        out[..., 1] *= in_h / height
        return out

    def _upsample(self, low_res: Any, out: np.ndarray | None = None) -> np.ndarray:
        return _upsample_logits(low_res, self.image_size, out)

    @cached_property
    def _shared_decoder(self) -> bool:
        """Whether ``sam2_decoder`` can run this model's mask decoder (else its own forward runs)."""
        from reasonseg_x.star.segment import sam2_decoder

        return sam2_decoder.fits(self.model)

    @property
    def fallback(self) -> str | None:  # type: ignore[override]
        if self._shared_decoder:
            return None
        return "transformers' Sam2 mask decoder lacks the structure sam2_decoder mirrors; its own forward runs"

    @property
    def max_prompts_per_call(self) -> int:  # type: ignore[override]
        """``sam2_decoder`` works a few prompts at a time in reused buffers, so one call can take all
        prompts of an image and its shared image-side work is done once."""
        return 1024 if self._shared_decoder else Segmenter.max_prompts_per_call

    def _decode_low_res(self, prompts: Sequence[Prompt]) -> tuple[Any, np.ndarray]:
        """The mask decoder with the image-side work shared by all prompts (``sam2_decoder``)."""
        if not self._shared_decoder:
            return super()._decode_low_res(prompts)
        import torch

        from reasonseg_x.star.segment import sam2_decoder

        with torch.inference_mode():
            if getattr(self, "_image_pe", None) is None:  # depends on the model only
                self._image_pe = self.model.get_image_wide_positional_embeddings()
            sparse, dense = self.model.prompt_encoder(input_masks=None, **self._prompt_tensors(prompts))
            low_res, iou = sam2_decoder.best_masks(self.model, self._embedding, self._image_pe, sparse, dense)
        return low_res, iou.cpu().numpy().astype(np.float32)


class HFSamSegmenter(_HFSegmenterBase):
    """transformers ``SamModel`` (SAM 1): longest side resized to the input size, then padded."""

    name = "hf-sam"

    def _model_class(self) -> Any:
        from transformers import SamModel

        return SamModel

    def _resized(self) -> tuple[int, int]:
        height, width = self.image_size
        longest = int(self.processor.image_processor.size["longest_edge"])
        scale = longest / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    def _scale_coords(self, coords: np.ndarray) -> np.ndarray:
        height, width = self.image_size
        new_h, new_w = self._resized()
        out = coords.astype(np.float32).copy()
        out[..., 0] *= new_w / width
        out[..., 1] *= new_h / height
        return out

    def _upsample(self, low_res: Any, out: np.ndarray | None = None) -> np.ndarray:
        import torch.nn.functional as F

        pad = self.processor.image_processor.pad_size
        new_h, new_w = self._resized()
        up = F.interpolate(low_res[:, None].float(), (int(pad["height"]), int(pad["width"])), mode="bilinear",
                           align_corners=False)
        return _upsample_logits(up[:, 0, :new_h, :new_w], self.image_size, out)


# ----------------------------------------------------------------------------- package backends

class Sam2PackageSegmenter(Segmenter):
    """The ``sam2`` package's ``SAM2ImagePredictor`` (a Hub id like ``facebook/sam2.1-hiera-large``,
    a ``CONFIG.yaml`` + checkpoint pair, or a built ``SAM2Base`` model)."""

    name = "sam2"

    def __init__(self, model_ref: str | None = None, *, checkpoint: str | None = None, device: str = "cpu",
                 model: Any = None) -> None:
        super().__init__()
        try:
            from sam2.sam2_image_predictor import SAM2ImagePredictor
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise InvalidInputError(f"the sam2 backend needs the sam2 package ({exc})", "segmenter") from None
        if model is not None:
            self.predictor = SAM2ImagePredictor(model.to(device).eval())
        elif checkpoint is not None:
            from sam2.build_sam import build_sam2

            self.predictor = SAM2ImagePredictor(build_sam2(model_ref, checkpoint, device=device))
        else:
            self.predictor = SAM2ImagePredictor.from_pretrained(model_ref, device=device)
        from reasonseg_x.star import compat

        self.fallback = compat.sam2_predictor_unsupported(self.predictor)
        if self.fallback is None:  # the predictor hard-codes the 1024-input feature sizes
            compat.sam2_set_feature_sizes(self.predictor, int(self.predictor.model.image_size))
        else:
            import warnings

            warnings.warn(f"{self.fallback}: SAM 2 decodes one prompt at a time through its public predict()",
                          UserWarning, stacklevel=2)

    def _embed(self, image: Image.Image) -> Any:
        import torch

        with torch.inference_mode():
            self.predictor.set_image(np.array(image))
        if self.fallback is not None:
            return None
        from reasonseg_x.star.compat import sam2_features

        return sam2_features(self.predictor)

    def _decode(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        """The package's ``SAM2ImagePredictor._predict`` steps, upsampling only the best of the three masks."""
        import torch

        from reasonseg_x.star.compat import sam2_features, sam2_postprocess, sam2_prep_prompts

        pred = self.predictor
        model = pred.model
        boxes, points, labels = _prompt_arrays(prompts)
        if self.fallback is not None:
            return self._decode_public(boxes, points, labels, len(prompts))
        features = sam2_features(pred)
        with torch.inference_mode():
            coords, point_labels, box = sam2_prep_prompts(pred, points, labels, boxes)
            concat = None
            if box is not None:  # boxes enter the prompt encoder as two corner points (labels 2, 3)
                box_labels = torch.tensor([[2, 3]], dtype=torch.int, device=box.device).repeat(box.shape[0], 1)
                concat = (box.reshape(-1, 2, 2), box_labels)
            if coords is not None:
                concat = (coords, point_labels) if concat is None else (
                    torch.cat([concat[0], coords], dim=1), torch.cat([concat[1], point_labels], dim=1))
            sparse, dense = model.sam_prompt_encoder(points=concat, boxes=None, masks=None)
            high_res = [level[-1].unsqueeze(0) for level in features["high_res_feats"]]
            low_res, iou, _, _ = model.sam_mask_decoder(
                image_embeddings=features["image_embed"][-1].unsqueeze(0),
                image_pe=model.sam_prompt_encoder.get_dense_pe(), sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense, multimask_output=True, repeat_image=concat[0].shape[0] > 1,
                high_res_features=high_res)
            iou = iou.float()
            best = iou.argmax(dim=-1)
            rows = torch.arange(iou.shape[0], device=iou.device)
            chosen = sam2_postprocess(pred, low_res[rows, best][:, None])
            masks = chosen[:, 0] > pred.mask_threshold
        return masks.cpu().numpy(), iou[rows, best].cpu().numpy().astype(np.float32)

    def _decode_public(self, boxes: np.ndarray | None, points: np.ndarray | None, labels: np.ndarray | None,
                       count: int) -> tuple[np.ndarray, np.ndarray]:
        """The package's public ``predict``, one prompt at a time (multimask, the best IoU kept)."""
        import torch

        masks, scores = [], []
        with torch.inference_mode():
            for i in range(count):
                found, iou, _ = self.predictor.predict(
                    point_coords=None if points is None else points[i], point_labels=None if labels is None else labels[i],
                    box=None if boxes is None else boxes[i], multimask_output=True)
                best = int(np.argmax(iou))
                masks.append(np.asarray(found[best]) > 0)
                scores.append(float(iou[best]))
        return np.stack(masks), np.asarray(scores, dtype=np.float32)


class SegmentAnythingSegmenter(Segmenter):
    """The ``segment-anything`` package (SAM 1 checkpoints ``sam_vit_{b,l,h}_*.pth`` or a built ``Sam``)."""

    name = "segment-anything"

    def __init__(self, model_type: str = "vit_h", checkpoint: str | None = None, *, device: str = "cpu",
                 model: Any = None) -> None:
        super().__init__()
        try:
            from segment_anything import SamPredictor, sam_model_registry
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise InvalidInputError(f"the segment-anything backend needs its package ({exc})", "segmenter") from None
        if model is None:
            if model_type not in sam_model_registry:
                raise InvalidInputError(f"unknown SAM model type {model_type!r}; use one of "
                                        f"{', '.join(sorted(sam_model_registry))}", "segmenter")
            if checkpoint is None:
                raise InvalidInputError("segment-anything needs a checkpoint file (segment-anything:TYPE:PATH)",
                                        "segmenter")
            model = sam_model_registry[model_type](checkpoint=checkpoint)
        self.predictor = SamPredictor(model.to(device).eval())

    def _embed(self, image: Image.Image) -> Any:
        import torch

        with torch.inference_mode():
            self.predictor.set_image(np.array(image))
        return self.predictor.features

    def _decode(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        pred = self.predictor
        sam = pred.model
        boxes, points, labels = _prompt_arrays(prompts)
        with torch.inference_mode():
            point_input = None
            if points is not None:
                coords = pred.transform.apply_coords(points, pred.original_size)
                point_input = (torch.as_tensor(coords, dtype=torch.float, device=pred.device),
                               torch.as_tensor(labels, dtype=torch.int, device=pred.device))
            box_input = None
            if boxes is not None:
                box_input = torch.as_tensor(pred.transform.apply_boxes(boxes, pred.original_size),
                                            dtype=torch.float, device=pred.device)
            sparse, dense = sam.prompt_encoder(points=point_input, boxes=box_input, masks=None)
            low_res, iou = sam.mask_decoder(image_embeddings=pred.features, image_pe=sam.prompt_encoder.get_dense_pe(),
                                            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                            multimask_output=True)
            best = iou.argmax(dim=-1)
            rows = torch.arange(iou.shape[0], device=iou.device)
            chosen = low_res[rows, best][:, None]
            masks = sam.postprocess_masks(chosen, pred.input_size, pred.original_size)[:, 0] > sam.mask_threshold
        return masks.cpu().numpy().astype(bool), iou[rows, best].float().cpu().numpy().astype(np.float32)


# ----------------------------------------------------------------------------- factory

def _folder_model_type(ref: str) -> str | None:
    path = Path(ref).expanduser() / "config.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None


#: ``backend:`` prefixes accepted by :func:`load_segmenter`
SEGMENTER_BACKENDS = ("hf-sam2", "hf-sam", "sam2", "segment-anything")


def resolve_segmenter(spec: str) -> tuple[str, str]:
    """``(backend, reference)`` for a segmenter spec, without loading anything (a typo is reported
    before the VLM spends minutes loading)."""
    if spec == "box":  # torch-free: the mask is the answer's box (reasonseg_x.star.segment.box_segmenter)
        return "box", ""
    if spec in SEGMENTER_ALIASES:
        return SEGMENTER_ALIASES[spec]
    backend, _, ref = spec.partition(":")
    if backend in SEGMENTER_BACKENDS and ref:
        return backend, ref
    model_type = _folder_model_type(spec)
    if model_type in ("sam2", "sam2_video"):
        return "hf-sam2", spec
    if model_type == "sam":
        return "hf-sam", spec
    found = f" ({spec} holds a {model_type!r} model, not SAM)" if model_type else ""
    if ref and not found and not Path(spec).expanduser().exists():
        found = f" (unknown backend {backend!r}; backends: {', '.join(SEGMENTER_BACKENDS)})"
    raise InvalidInputError(
        f"unknown segmenter {spec!r}{found}: use one of {', '.join(sorted(SEGMENTER_ALIASES))}, "
        "hf-sam2:REF, hf-sam:REF, sam2:REF, segment-anything:TYPE:CKPT, a transformers SAM folder or box",
        "segmenter")


def needs_device(spec: str | Segmenter) -> bool:
    """Whether loading ``spec`` needs a torch device (every SAM does; ``box`` does not)."""
    return isinstance(spec, Segmenter) or resolve_segmenter(spec)[0] != "box"


def load_segmenter(spec: str | Segmenter = "sam2.1-hiera-large", *, device: str | None = "cpu",
                   dtype: Any = None) -> Segmenter:
    """A segmenter from a short name, ``backend:ref`` or a local transformers folder.

    ``sam2.1-hiera-large`` (default), ``sam-vit-huge``; ``hf-sam2:REF``, ``hf-sam:REF`` (Hub id or folder);
    ``sam2:HUB_ID`` or ``sam2:CONFIG.yaml:CKPT.pt`` (sam2 package); ``segment-anything:TYPE:CKPT.pth``.
    """
    if isinstance(spec, Segmenter):
        return spec
    backend, ref = resolve_segmenter(spec)
    if backend == "box":
        from reasonseg_x.star.segment.box_segmenter import BoxSegmenter

        return BoxSegmenter()
    device = device or "cpu"
    if backend == "hf-sam2":
        return HFSam2Segmenter(ref, device=device, dtype=dtype)
    if backend == "hf-sam":
        return HFSamSegmenter(ref, device=device, dtype=dtype)
    if backend == "sam2":
        config, _, checkpoint = ref.partition(":")
        return Sam2PackageSegmenter(config, checkpoint=checkpoint or None, device=device)
    model_type, _, checkpoint = ref.partition(":")
    return SegmentAnythingSegmenter(model_type, checkpoint or None, device=device)
