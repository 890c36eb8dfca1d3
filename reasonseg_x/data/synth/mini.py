"""The curated embedded ``mini`` split: 48 rendered samples, twelve per reasoning type.

Each entry fixes the scene family, its variant and the query kind, so the split is guaranteed to
hold every reasoning type, long and short queries, samples without a target and samples with an
ignore region, whatever the random layout. The other fields come from the seeded stream.
"""

from __future__ import annotations

from collections.abc import Iterator

from reasonseg_x.data.record import GroundTruth, Sample
from reasonseg_x.data.source import Source
from reasonseg_x.data.synth.render import Recipe, render_ground_truth, sample_from_recipe

__all__ = ["MINI_SEED", "MINI_PLAN", "mini_recipes", "mini_samples", "MiniSource"]

MINI_SEED = 20260314

#: (family, variant, query kind), in id order
MINI_PLAN: tuple[tuple[str, str | None, str], ...] = (
    # compositional: charts, tables, price tags
    ("bar_chart", "second_highest", "long"), ("bar_chart", "sum", "short"),
    ("bar_chart", "after_min", "long"), ("bar_chart", "absent", "short"),
    ("table", "lookup", "short"), ("table", "column_max", "long"),
    ("table", "row_min", "short"), ("table", "lookup", "long"),
    ("price_tags", "afford_one", "long"), ("price_tags", "most_expensive", "short"),
    ("price_tags", "all_affordable", "long"), ("price_tags", "absent", "short"),
    # comparative / relational: shapes and "the tallest bar"
    ("shapes", "largest", "long"), ("shapes", "largest", "short"),
    ("shapes", "smallest", "long"), ("shapes", "extreme", "short"),
    ("shapes", "extreme", "long"), ("shapes", "twice", "short"),
    ("shapes", "twice", "long"), ("shapes", "occluded", "long"),
    ("shapes", "occluded", "short"), ("shapes", "absent", "short"),
    ("bar_chart", "tallest", "long"), ("bar_chart", "tallest", "short"),
    # purpose / functional
    ("functional", "plain:umbrella", "long"), ("functional", "plain:mug", "short"),
    ("functional", "plain:lamp", "long"), ("functional", "plain:door", "short"),
    ("functional", "plain:extinguisher", "long"), ("functional", "plain:clock", "short"),
    ("functional", "plain:ladder", "long"), ("functional", "plain:bin", "short"),
    ("functional", "occluded:chair", "long"), ("functional", "occluded:key", "short"),
    ("functional", "occluded:umbrella", "long"), ("functional", "absent", "short"),
    # commonsense / knowledge
    ("traffic_light", "red", "long"), ("traffic_light", "green", "short"),
    ("traffic_light", "amber", "long"), ("flags", "capital", "short"),
    ("flags", "capital", "long"), ("flags", "landmark", "long"),
    ("flags", "landmark", "short"), ("flags", "absent", "short"),
    ("road_signs", "present:stop", "long"), ("road_signs", "present:no entry", "short"),
    ("road_signs", "present:give way", "long"), ("road_signs", "present:hospital", "short"),
)


def mini_recipes() -> list[Recipe]:
    return [Recipe(seed=MINI_SEED, index=i, family=family, variant=variant, kind=kind, id=f"mini-{i:03d}")
            for i, (family, variant, kind) in enumerate(MINI_PLAN)]


def mini_samples() -> list[Sample]:
    """The 48 samples of ``mini`` (split ``test``, ids ``mini-000`` ...), deterministic."""
    return [sample_from_recipe(r) for r in mini_recipes()]


class MiniSource(Source):
    """``mini`` rendered on the fly (the shipped copy in ``annotations/mini/`` holds the same samples)."""

    id_rule = "mini-<index>"
    ground_truth_checks_images = True

    def __init__(self, *, skip_invalid: bool = False) -> None:
        super().__init__(skip_invalid=skip_invalid)
        self.spec = "mini"

    def splits(self) -> list[str]:
        return ["test"]

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        self.resolve_split(split)
        for recipe in mini_recipes():
            yield sample_from_recipe(recipe)

    def ground_truth(self, split: str | None = None) -> Iterator[GroundTruth]:
        self.resolve_split(split)
        for recipe in mini_recipes():
            yield render_ground_truth(recipe)

    def num_samples(self, split: str | None = None) -> int:
        self.resolve_split(split)
        return len(MINI_PLAN)
