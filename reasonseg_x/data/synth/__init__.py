"""The procedural renderer behind ``synth:N[:SEED]`` and the embedded ``mini`` split.

Pillow + numpy only. Each sample is a real rendered picture with an exact target mask (painted
with the same primitives as the picture), an implicit query whose reasoning type is the one it
genuinely needs, and sometimes an ignore region or no target at all.
"""

from reasonseg_x.data.synth.mini import MINI_PLAN, MiniSource, mini_samples
from reasonseg_x.data.synth.render import FAMILIES, Recipe, render_ground_truth, render_image, render_sample
from reasonseg_x.data.synth.source import SynthSource

__all__ = ["SynthSource", "MiniSource", "render_sample", "render_samples", "render_ground_truth", "render_image",
           "mini_samples", "Recipe", "FAMILIES", "MINI_PLAN"]


def render_samples(n: int, seed: int = 0):
    """Iterate over samples ``0..n-1`` of stream ``seed`` (a generator: nothing is held)."""
    for index in range(n):
        yield render_sample(index, seed)
