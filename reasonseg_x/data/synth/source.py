"""``synth:N[:SEED]``: a streamed source of N procedurally rendered samples in one split, ``test``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from reasonseg_x.data.record import GroundTruth, Sample
from reasonseg_x.data.source import Source
from reasonseg_x.data.synth.render import Recipe, render_ground_truth, render_sample
from reasonseg_x.errors import InvalidInputError

__all__ = ["SynthSource", "MAX_SAMPLES"]

#: A sanity bound on N (ids are zero-padded to six digits, so up to a million samples keep their order).
MAX_SAMPLES = 1_000_000


class SynthSource(Source):
    """N samples ``synth-<seed>-<index>``, each rendered on demand from ``(index, seed)`` alone."""

    id_rule = "synth-<seed>-<index>"
    ground_truth_checks_images = True

    def __init__(self, n: int, seed: int = 0, *, skip_invalid: bool = False) -> None:
        super().__init__(skip_invalid=skip_invalid)
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_SAMPLES:
            raise InvalidInputError(f"synth: the number of samples must be an integer in 0..{MAX_SAMPLES}, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidInputError(f"synth: the seed must be a non-negative integer, got {seed!r}")
        self.n = n
        self.seed = seed
        self.spec = f"synth:{n}:{seed}"

    def splits(self) -> list[str]:
        return ["test"]

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        self.resolve_split(split)
        for index in range(self.n):
            yield render_sample(index, self.seed)

    def samples_of(self, split: str | None, ids: Iterable[str]) -> Iterator[Sample]:
        """Only the samples of ``ids`` are rendered (a resumed run, a report's pictures): an id names its
        index; ids of another seed, out of range or not of this form are none of this source's."""
        self.resolve_split(split)
        wanted = set(ids)
        for index in sorted(self._indices(wanted)):
            sample = render_sample(index, self.seed)
            if sample.id in wanted:
                yield sample

    def _indices(self, ids: Iterable[str]) -> Iterator[int]:
        prefix = f"synth-{self.seed}-"
        for sample_id in ids:
            digits = sample_id[len(prefix):] if sample_id.startswith(prefix) else ""
            if digits.isascii() and digits.isdigit() and int(digits) < self.n:
                yield int(digits)

    def ground_truth(self, split: str | None = None) -> Iterator[GroundTruth]:
        """Masks only: the pictures are neither painted nor PNG-encoded."""
        self.resolve_split(split)
        for index in range(self.n):
            yield render_ground_truth(Recipe(seed=self.seed, index=index))

    def num_samples(self, split: str | None = None) -> int:
        self.resolve_split(split)
        return self.n

    def input_fingerprint(self, split: str | None = None) -> str:
        """Samples are a pure function of ``(index, seed)`` and the renderer: hash those, render nothing."""
        from reasonseg_x._version import __version__

        self.resolve_split(split)
        return "sha256:" + hashlib.sha256(f"{self.n}\0{self.seed}\0{__version__}".encode("utf-8")).hexdigest()[:32]

    def sample(self, index: int) -> Sample:
        """Random access to one sample (same result as the ``index``-th of :meth:`samples`)."""
        if not 0 <= index < self.n:
            raise IndexError(f"{self.spec} has samples 0..{self.n - 1}, not {index}")
        return render_sample(index, self.seed)
