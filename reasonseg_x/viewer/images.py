"""The viewer's pictures: per sample and run a full-size view and a thumbnail (JPEG: the fastest to
write and to show), drawn by :mod:`reasonseg_x.render` in worker processes while the main process
streams the samples.

Files are named by a hash of the sample id (ids may hold any character), never by the id itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ImageJob", "RunLayer", "file_key", "thumb_name", "full_name", "all_answers_name", "render_job",
           "write_images", "iter_jobs", "THUMB_SIDE", "FULL_SIDE"]

THUMB_SIDE = 320
FULL_SIDE = 1600
RUN_LETTERS = "ab"


def file_key(sample_id: str) -> str:
    """A file-name-safe, collision-resistant name for a sample id."""
    return hashlib.sha256(sample_id.encode("utf-8")).hexdigest()[:24]


def thumb_name(key: str, run: int) -> str:
    return f"thumbs/{key}.{RUN_LETTERS[run]}.jpg"


def full_name(key: str, run: int) -> str:
    return f"full/{key}.{RUN_LETTERS[run]}.jpg"


def all_answers_name(key: str, run: int) -> str:
    """The full view that also draws the sampled answers' boxes that did not make the mask (shown on demand)."""
    return f"full/{key}.{RUN_LETTERS[run]}.all.jpg"


@dataclass(frozen=True)
class RunLayer:
    """One run's prediction on a sample: its mask (RLE or None), the boxes and points that made it, and
    those of sampled answers that did not (drawn only in the on-demand view)."""

    mask: dict[str, Any] | None
    boxes: Any = None
    points: Any = None
    dropped_boxes: Any = None
    dropped_points: Any = None


@dataclass(frozen=True)
class ImageJob:
    """Everything a worker needs to draw one sample (picklable: bytes and RLE dicts)."""

    key: str
    image: bytes
    width: int
    height: int
    target: dict[str, Any]
    ignore: dict[str, Any] | None
    runs: tuple[RunLayer, ...]
    thumb_side: int = THUMB_SIDE
    full_side: int = FULL_SIDE


def _open_image(job: ImageJob) -> tuple[Any, str | None]:
    """The sample's picture, decoded at no more than the full view's size; a grey stand-in (and why)
    when it cannot be read, so one bad file never stops the build."""
    from PIL import Image

    from reasonseg_x.render import decode_picture, fit_size

    try:
        return decode_picture(job.image, job.width, job.height, job.full_side), None
    except Exception as exc:  # noqa: BLE001 - a corrupt picture is shown as such, with the reason
        w, h = fit_size(job.width, job.height, job.full_side)
        return Image.new("RGB", (w, h), (128, 128, 128)), f"image unreadable: {exc}"


def render_job(job: ImageJob, out: str) -> tuple[str, str | None]:
    """Draw and write the thumbnails and full views of one sample; returns ``(key, problem or None)``."""
    from PIL import Image

    from reasonseg_x.atomic import save_image_atomic
    from reasonseg_x.render import compose, fit_size, mask_of

    root = Path(out)
    image, problem = _open_image(job)
    target = mask_of(job.target, job.height, job.width)
    ignore = mask_of(job.ignore, job.height, job.width)
    frame = (job.width, job.height)
    for index, layer in enumerate(job.runs):
        pred = mask_of(layer.mask, job.height, job.width)
        full = compose(image, max_side=job.full_side, target=target, ignore=ignore, pred=pred, boxes=layer.boxes,
                       points=layer.points, frame=frame)
        save_image_atomic(root / full_name(job.key, index), full, format="JPEG", quality=85)
        if layer.dropped_boxes or layer.dropped_points:
            every = compose(image, max_side=job.full_side, target=target, ignore=ignore, pred=pred,
                            boxes=layer.boxes, points=layer.points, frame=frame, dropped_boxes=layer.dropped_boxes,
                            dropped_points=layer.dropped_points)
            save_image_atomic(root / all_answers_name(job.key, index), every, format="JPEG", quality=85)
        size = fit_size(full.width, full.height, job.thumb_side)
        if max(full.size) <= 2.5 * max(size):  # shrink the full view: one drawing, strokes stay visible
            thumb = full.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        else:  # a big picture: draw again at thumbnail size so boxes and points do not vanish
            thumb = compose(image, max_side=job.thumb_side, target=target, ignore=ignore, pred=pred,
                            boxes=layer.boxes, points=layer.points, frame=frame)
        save_image_atomic(root / thumb_name(job.key, index), thumb, format="JPEG", quality=80)
    return job.key, problem


def _inline_executor() -> Executor:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1)


def write_images(jobs: Iterable[ImageJob], out: str | Path, *, total: int | None = None, workers: int | None = None,
                 progress: bool = True) -> dict[str, str]:
    """Draw every job's pictures into ``out`` (``thumbs/``, ``full/``), ``workers`` processes at a time
    (default: the CPU count), with a progress bar. Returns ``{key: problem}`` for pictures that could
    not be read (drawn as grey stand-ins)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from reasonseg_x.errors import InvalidInputError

    root = Path(out)
    (root / "thumbs").mkdir(parents=True, exist_ok=True)
    (root / "full").mkdir(parents=True, exist_ok=True)
    count = workers or os.cpu_count() or 1
    problems: dict[str, str] = {}
    executor: Executor = ProcessPoolExecutor(max_workers=count) if count > 1 else _inline_executor()
    bar = Progress(TextColumn("drawing samples"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   disable=not progress, transient=False)
    pending: set[Future[tuple[str, str | None]]] = set()

    def collect(done: Iterable[Future[tuple[str, str | None]]]) -> None:
        for future in done:
            try:
                key, problem = future.result()  # a refused write arrives as a WriteError naming its picture
            except OSError as exc:  # a full disk, a folder removed under us: say where, no traceback
                raise InvalidInputError(f"cannot write the viewer's pictures: {exc.strerror or exc}",
                                        str(root)) from None
            if problem:
                problems[key] = problem
            bar.advance(task)

    with executor, bar:
        task = bar.add_task("draw", total=total)
        for job in jobs:
            pending.add(executor.submit(render_job, job, str(root)))
            if len(pending) >= 4 * count:  # bounded: image bytes are not all held at once
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
        done, _ = wait(pending)
        collect(done)
    return problems


def iter_jobs(samples: Iterator[Any], layers: Any, *, thumb_side: int = THUMB_SIDE,
              full_side: int = FULL_SIDE) -> Iterator[ImageJob]:
    """Jobs for samples; ``layers(sample)`` gives the runs' :class:`RunLayer` tuple."""
    for sample in samples:
        try:
            raw = sample.image.read_bytes()
        except Exception:  # noqa: BLE001 - drawn as a grey stand-in with the reason
            raw = b""
        yield ImageJob(key=file_key(sample.id), image=raw, width=sample.width, height=sample.height,
                       target=sample.target, ignore=sample.ignore, runs=layers(sample),
                       thumb_side=thumb_side, full_side=full_side)
