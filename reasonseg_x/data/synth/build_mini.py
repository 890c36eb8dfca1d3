"""Regenerate the shipped ``annotations/mini`` split from the renderer.

Run from a source checkout after changing the renderer (the test
``test_shipped_mini_matches_the_renderer`` says when)::

    python -m reasonseg_x.data.synth.build_mini [--out annotations/mini]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reasonseg_x.data.compact import write_compact
from reasonseg_x.data.synth.mini import mini_samples

DEFAULT_OUT = Path(__file__).resolve().parents[3] / "annotations" / "mini"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    counts = write_compact(
        {"test": mini_samples()}, args.out, overwrite=True, card_title="ReasonSeg-X mini (embedded default split)",
        description="48 procedurally rendered samples (charts, tables, price tags, shapes, icons, signs), "
                    "12 per reasoning type, shipped inside the reasonseg-x wheel as the default offline split.")
    print(f"wrote {counts} to {args.out}")


if __name__ == "__main__":
    main()
