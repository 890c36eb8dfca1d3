"""SAM segmenters: one embedding per image, batched decoding of all prompts, best-of-multimask, clipping."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

# third-party deprecation noise (peft/transformers/torch.jit), not ours
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

from _star_tiny import random_image, tiny_checkpoints  # noqa: E402

from reasonseg_x.errors import InvalidInputError  # noqa: E402
from reasonseg_x.star.segment.segmenters import (HFSam2Segmenter, HFSamSegmenter, Prompt, Segmenter,  # noqa: E402
                                         clip_prompt, load_segmenter)

PROMPTS = [Prompt((10, 20, 200, 250), ((50, 60),)), Prompt((30, 5, 120, 90), ((60, 40),)),
           Prompt((0, 0, 436, 299), ((218, 150),)), Prompt(None, ((5, 5),)), Prompt((1, 1, 50, 50)),
           Prompt(None, ((1, 1), (30, 30)))]


@pytest.fixture(scope="module", params=["hf-sam2", "hf-sam"])
def hf_segmenter(request):
    ckpt = tiny_checkpoints()
    return load_segmenter(str(ckpt.sam2 if request.param == "hf-sam2" else ckpt.sam), device="cpu")


def _package_segmenters():
    out = []
    try:
        import sam2  # noqa: F401
        out.append("sam2")
    except ImportError:
        pass
    try:
        import segment_anything  # noqa: F401
        out.append("segment-anything")
    except ImportError:
        pass
    return out


@pytest.fixture(scope="module", params=["hf-sam2", "hf-sam", *_package_segmenters()])
def segmenter(request):
    ckpt = tiny_checkpoints()
    if request.param == "hf-sam2":
        return load_segmenter(str(ckpt.sam2), device="cpu")
    if request.param == "hf-sam":
        return load_segmenter(f"hf-sam:{ckpt.sam}", device="cpu")
    import _star_tiny

    if request.param == "sam2":
        from reasonseg_x.star.segment.segmenters import Sam2PackageSegmenter

        return Sam2PackageSegmenter(model=_star_tiny.build_sam2_package_model())
    from reasonseg_x.star.segment.segmenters import SegmentAnythingSegmenter

    return SegmentAnythingSegmenter(model=_star_tiny.build_segment_anything_model())


def test_masks_and_scores_have_the_image_size(segmenter):
    segmenter.set_image(random_image(437, 300))
    masks, scores = segmenter.segment(PROMPTS)
    assert masks.shape == (len(PROMPTS), 300, 437) and masks.dtype == bool
    assert scores.shape == (len(PROMPTS),) and np.all(np.isfinite(scores))


def test_batched_decoding_equals_one_by_one(segmenter):
    segmenter.set_image(random_image(437, 300, seed=1))
    batched, batched_scores = segmenter.segment(PROMPTS)
    for i, prompt in enumerate(PROMPTS):
        single, score = segmenter.segment([prompt])
        assert np.mean(single[0] != batched[i]) < 1e-3
        assert score[0] == pytest.approx(batched_scores[i], abs=1e-4)


def test_interleaved_kinds_and_small_calls_keep_every_prompt_its_own_mask(segmenter, monkeypatch):
    """Distinct prompts are decoded grouped by kind and in chunks; each prompt still gets its mask."""
    segmenter.set_image(random_image(437, 300, seed=6))
    expected = {p: segmenter.segment([p]) for p in PROMPTS}
    monkeypatch.setattr(type(segmenter), "max_prompts_per_call", 2)
    mixed = [PROMPTS[1], Prompt(), PROMPTS[3], PROMPTS[0], PROMPTS[1], PROMPTS[5], PROMPTS[2], Prompt(),
             PROMPTS[4], PROMPTS[3], PROMPTS[0]]
    masks, scores = segmenter.segment(mixed)
    for i, p in enumerate(mixed):
        if p == Prompt():
            assert not masks[i].any() and scores[i] == 0
            continue
        single, score = expected[p]
        assert np.mean(single[0] != masks[i]) < 1e-3 and score[0] == pytest.approx(scores[i], abs=1e-4)


def test_many_answers_decode_in_few_calls(segmenter):
    segmenter.set_image(random_image(320, 240, seed=2))
    rng = np.random.default_rng(0)
    prompts = []
    for _ in range(32):  # 32 sampled answers of 1-3 objects, many repeated
        for _ in range(int(rng.integers(1, 4))):
            x, y = float(rng.integers(0, 6) * 40), float(rng.integers(0, 4) * 40)
            prompts.append(Prompt((x, y, x + 60, y + 50), ((x + 30, y + 25),)))
    before = segmenter.calls
    masks, scores = segmenter.segment(prompts)
    assert segmenter.calls - before == 1  # all distinct prompts of one kind in one decoder call
    assert masks.shape[0] == len(prompts)
    first = {p: i for i, p in reversed(list(enumerate(prompts)))}
    for i, p in enumerate(prompts):  # duplicates get identical results
        assert np.array_equal(masks[i], masks[first[p]]) and scores[i] == scores[first[p]]


def test_empty_prompt_and_no_prompts(segmenter):
    segmenter.set_image(random_image(64, 48))
    masks, scores = segmenter.segment([Prompt()])
    assert not masks.any() and scores[0] == 0
    masks, scores = segmenter.segment([])
    assert masks.shape == (0, 48, 64) and scores.shape == (0,)


def test_out_of_image_prompts_are_clipped(hf_segmenter):
    hf_segmenter.set_image(random_image(100, 80, seed=3))
    outside, s1 = hf_segmenter.segment([Prompt((-50, -20, 500, 400), ((300, -7),))])
    inside, s2 = hf_segmenter.segment([Prompt((0, 0, 99, 79), ((99, 0),))])
    assert np.array_equal(outside, inside) and s1[0] == pytest.approx(s2[0])
    assert clip_prompt(Prompt((90, 70, -5, 10), ((1e9, -1e9),)), 100, 80) == Prompt((0.0, 10.0, 90.0, 70.0), ((99.0, 0.0),))


def test_nan_prompt_is_refused_and_infinite_one_clipped(hf_segmenter):
    hf_segmenter.set_image(random_image(100, 80, seed=3))
    with pytest.raises(InvalidInputError, match="NaN coordinate"):
        hf_segmenter.segment([Prompt((float("nan"), 0, 50, 50), ((10, 10),))])
    masks, scores = hf_segmenter.segment([Prompt((0, 0, float("inf"), float("-inf")), ((10, 10),))])
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("kind", ["sam2", "sam"])
def test_keeps_the_highest_scoring_multimask_output(kind):
    """Scores match the model called through its own processor (same coordinate scaling)."""
    ckpt = tiny_checkpoints()
    seg = load_segmenter(str(getattr(ckpt, kind)), device="cpu")
    image = random_image(200, 160, seed=4)
    seg.set_image(image)
    _, scores = seg.segment([Prompt((20, 30, 150, 120), ((60, 70),))])
    inputs = seg.processor(images=image, input_boxes=[[[20, 30, 150, 120]]], input_points=[[[[60, 70]]]],
                           input_labels=[[[1]]], return_tensors="pt")
    with torch.no_grad():
        out = seg.model(**inputs, multimask_output=True)
    assert scores[0] == pytest.approx(float(out.iou_scores.max()), abs=1e-5)


def test_segment_before_set_image_fails():
    ckpt = tiny_checkpoints()
    seg = load_segmenter(str(ckpt.sam), device="cpu")
    assert isinstance(seg, HFSamSegmenter) and isinstance(seg, Segmenter)
    with pytest.raises(RuntimeError, match="set_image"):
        seg.segment([Prompt((0, 0, 1, 1))])


def test_factory_names(tmp_path):
    ckpt = tiny_checkpoints()
    assert isinstance(load_segmenter(f"hf-sam2:{ckpt.sam2}"), HFSam2Segmenter)
    with pytest.raises(InvalidInputError, match="unknown segmenter"):
        load_segmenter(str(tmp_path))
    with pytest.raises(InvalidInputError, match="backend"):
        load_segmenter("nonsense:thing")
    with pytest.raises(InvalidInputError, match="checkpoint"):
        load_segmenter("segment-anything:vit_b")


@pytest.mark.parametrize("package", _package_segmenters())
def test_package_backends_match_the_packages_own_predict(package):
    """Batched decoding with one upsampled mask per prompt gives what the package's predict() gives."""
    import _star_tiny

    from reasonseg_x.star.segment.segmenters import Sam2PackageSegmenter, SegmentAnythingSegmenter

    if package == "sam2":
        seg = Sam2PackageSegmenter(model=_star_tiny.build_sam2_package_model())
    else:
        seg = SegmentAnythingSegmenter(model=_star_tiny.build_segment_anything_model())
    image = random_image(150, 110, seed=6)
    seg.set_image(image)
    prompts = [Prompt((10, 15, 90, 80), ((40, 50),)), Prompt((60, 5, 140, 100), ((100, 50),))]
    masks, scores = seg.segment(prompts)
    for k, p in enumerate(prompts):
        ref_masks, ref_scores, _ = seg.predictor.predict(point_coords=np.array(p.points), point_labels=np.array([1]),
                                                         box=np.array(p.box), multimask_output=True)
        best = int(np.argmax(ref_scores))
        assert scores[k] == pytest.approx(float(ref_scores[best]), abs=1e-4)
        assert np.mean(masks[k] != ref_masks[best].astype(bool)) < 1e-3


def test_cpu_upsampling_agrees_with_torch_bilinear():
    import torch.nn.functional as F

    from reasonseg_x.star.segment.segmenters import _upsample_logits

    logits = torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(0))
    fast = _upsample_logits(logits, (300, 437))
    ref = (F.interpolate(logits[:, None], (300, 437), mode="bilinear", align_corners=False)[:, 0] > 0).numpy()
    assert fast.shape == (3, 300, 437) and np.mean(fast != ref) < 1e-4


def test_segmenter_specs_resolve_without_loading(tmp_path):
    from reasonseg_x.star.segment.segmenters import resolve_segmenter

    ckpt = tiny_checkpoints()
    assert resolve_segmenter("sam2.1-hiera-large") == ("hf-sam2", "facebook/sam2.1-hiera-large")
    assert resolve_segmenter(str(ckpt.sam)) == ("hf-sam", str(ckpt.sam))
    assert resolve_segmenter("segment-anything:vit_b:/x.pth") == ("segment-anything", "vit_b:/x.pth")
    with pytest.raises(InvalidInputError, match="qwen2_5_vl' model, not SAM"):
        resolve_segmenter(str(ckpt.qwen25))
    with pytest.raises(InvalidInputError, match="cannot load the hf-sam2 segmenter: .*model.safetensors"):
        load_segmenter(f"hf-sam2:{tmp_path}")


@pytest.mark.parametrize("prompts_per_pass,pixels_per_tile", [(1, 256), (3, 37), (4, 512), (64, 100)])
def test_tiled_decoder_logits_equal_the_model_forward(prompts_per_pass, pixels_per_tile):
    """Partial prompt passes and partial pixel tiles give the model's own low-res logits and IoU."""
    from reasonseg_x.star.segment import sam2_decoder

    ckpt = tiny_checkpoints()
    seg = load_segmenter(str(ckpt.sam2), device="cpu")
    seg.set_image(random_image(437, 300, seed=7))
    prompts = [Prompt((5 + 9 * i, 4 + 5 * i, 120 + 11 * i, 90 + 7 * i), ((40 + 8 * i, 30 + 6 * i),)) for i in range(10)]
    with torch.inference_mode():
        tensors = {k: v for k, v in seg._prompt_tensors(prompts).items() if v is not None}
        own = seg.model(image_embeddings=seg._embedding, multimask_output=True, **tensors)
        iou = own.iou_scores[0]
        best = iou.argmax(dim=-1)
        rows = torch.arange(len(prompts))
        sparse, dense = seg.model.prompt_encoder(input_masks=None, **seg._prompt_tensors(prompts))
        image_pe = seg.model.get_image_wide_positional_embeddings()
        logits, scores = sam2_decoder.best_masks(seg.model, seg._embedding, image_pe, sparse, dense,
                                                 prompts_per_pass=prompts_per_pass, pixels_per_tile=pixels_per_tile)
    expected = own.pred_masks[0][rows, best]
    assert logits.shape == expected.shape
    assert torch.allclose(scores, iou[rows, best], atol=1e-5)
    assert (logits - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max().item())


def test_shared_image_decoder_equals_the_model_forward():
    """sam2_decoder shares the image-side work across prompts; logits and scores stay the model's own."""
    from reasonseg_x.star.segment import sam2_decoder
    from reasonseg_x.star.segment.segmenters import _HFSegmenterBase

    ckpt = tiny_checkpoints()
    seg = load_segmenter(str(ckpt.sam2), device="cpu")
    assert sam2_decoder.fits(seg.model) and not sam2_decoder.fits(torch.nn.Linear(2, 2))
    seg.set_image(random_image(437, 300, seed=5))
    for kind in ({p.kind for p in PROMPTS} - {(False, 0)}):
        group = [p for p in PROMPTS if p.kind == kind] * 3  # several prompts per call
        group = [Prompt(p.box and tuple(v + i for v in p.box), tuple((x + i, y) for x, y in p.points))
                 for i, p in enumerate(group)]
        shared_masks, shared_scores = seg._decode(group)
        own_low_res, own_scores = _HFSegmenterBase._decode_low_res(seg, group)  # the model's own forward
        own_masks = seg._upsample(own_low_res)
        assert np.abs(shared_scores - own_scores).max() < 1e-5
        assert np.mean(shared_masks != own_masks) < 1e-4
