"""Turn ``(index, seed)`` into one :class:`~reasonseg_x.data.record.Sample`, deterministically.

Every random choice comes from ``numpy.random.default_rng([seed, index])``, so any sample can be
regenerated alone and ``synth:100000`` streams without holding anything. The picture is only
painted (and PNG-encoded) when someone reads the image; ground truth paints the label image only.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from reasonseg_x import masks as rle
from reasonseg_x.data.record import GroundTruth, ImageRef, Sample
from reasonseg_x.data.synth import charts, functional, knowledge, prices, shapes, tables
from reasonseg_x.data.synth.canvas import Canvas
from reasonseg_x.data.synth.scene import Scene

__all__ = ["FAMILIES", "render_sample", "render_ground_truth", "render_image", "render_scene", "Recipe", "SOURCE"]

SOURCE = "synth"
SceneFn = Callable[..., Scene]

#: family -> (painter, weight). Weights keep the four reasoning types roughly balanced:
#: compositional (charts, tables, prices), comparative (shapes, some charts), function (icons),
#: commonsense (lights, flags, signs).
FAMILIES: dict[str, tuple[SceneFn, float]] = {
    "bar_chart": (charts.bar_chart, 1.0),
    "table": (tables.table, 0.8),
    "price_tags": (prices.price_tags, 0.8),
    "shapes": (shapes.shape_scene, 2.2),
    "functional": (functional.functional_scene, 2.4),
    "traffic_light": (knowledge.traffic_light, 0.6),
    "flags": (knowledge.flags, 1.0),
    "road_signs": (knowledge.road_signs, 1.0),
}
_BACKGROUNDS = ((246, 244, 238), (236, 240, 246), (244, 238, 230), (238, 246, 238), (250, 250, 250))


@dataclass(frozen=True)
class Recipe:
    """Everything that determines one sample: the random stream and optional forced choices."""

    seed: int
    index: int
    family: str | None = None
    variant: str | None = None
    kind: str | None = None  # "long" / "short"
    id: str | None = None
    split: str = "test"

    @property
    def sample_id(self) -> str:
        return self.id or f"synth-{self.seed}-{self.index:06d}"


def render_scene(recipe: Recipe, *, pixels: bool = True) -> tuple[Scene, Canvas, str, list[str]]:
    """Paint the scene of ``recipe``; returns the scene, the canvas, the query kind and the queries."""
    rng = np.random.default_rng([recipe.seed, recipe.index])
    width = int(rng.integers(40, 81)) * 8
    height = int(rng.integers(30, 61)) * 8
    names = list(FAMILIES)
    weights = np.array([FAMILIES[n][1] for n in names])
    family = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    kind = "long" if rng.random() < 0.5 else "short"
    nphrases = int(rng.integers(1, 4))
    background = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
    family = recipe.family or family
    kind = recipe.kind or kind
    canvas = Canvas(width, height, background, pixels=pixels)
    scene = FAMILIES[family][0](rng, canvas, recipe.variant)
    phrasings = scene.phrasings(kind)
    queries = phrasings[: max(1, min(nphrases, len(phrasings)))]
    return scene, canvas, kind, queries


def _masks(scene: Scene, canvas: Canvas) -> tuple[rle.RLE, rle.RLE | None]:
    target = rle.encode(canvas.mask(scene.targets))
    ignore = rle.encode(canvas.mask(scene.ignores)) if scene.ignores else None
    return target, ignore


def render_image(recipe: Recipe) -> bytes:
    """PNG bytes of the picture of ``recipe`` (painted on demand)."""
    _, canvas, _, _ = render_scene(recipe, pixels=True)
    assert canvas.image is not None
    buf = io.BytesIO()
    canvas.image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _groups(scene: Scene, kind: str) -> dict[str, str]:
    return {"reasoning_type": scene.reasoning_type, "query_kind": kind, "source": SOURCE}


def render_ground_truth(recipe: Recipe) -> GroundTruth:
    """Masks, size and groups of ``recipe`` without painting or encoding the picture."""
    scene, canvas, kind, _ = render_scene(recipe, pixels=False)
    target, ignore = _masks(scene, canvas)
    return GroundTruth(recipe.sample_id, canvas.height, canvas.width, target, ignore, _groups(scene, kind))


def sample_from_recipe(recipe: Recipe) -> Sample:
    """The full sample of ``recipe``; its image is rendered lazily when read."""
    scene, canvas, kind, queries = render_scene(recipe, pixels=False)
    target, ignore = _masks(scene, canvas)
    image = ImageRef(loader=partial(render_image, recipe), where=f"synth:{recipe.seed}/{recipe.sample_id}")
    return Sample(
        id=recipe.sample_id, image=image, query=queries[0], height=canvas.height, width=canvas.width,
        target=target, ignore=ignore, queries=tuple(queries), query_kind=kind,
        reasoning_type=scene.reasoning_type, source=SOURCE, split=recipe.split,
        meta={"family": scene.family, "variant": scene.variant, "answer": scene.answer,
              "seed": recipe.seed, "index": recipe.index,
              "objects": [canvas.names[o] for o in scene.targets]},
    )


def render_sample(index: int, seed: int = 0) -> Sample:
    """Sample ``index`` of the stream ``seed``: pure, deterministic, independent of other samples."""
    if index < 0:
        raise ValueError(f"sample index must be >= 0, got {index}")
    return sample_from_recipe(Recipe(seed=int(seed), index=int(index)))
