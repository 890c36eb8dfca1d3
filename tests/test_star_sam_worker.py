"""The SAM stage's worker: jobs in order on one thread, each image's CPU work done a few images ahead."""

from __future__ import annotations

import threading
import time

from reasonseg_x.star.pipeline import _SamWorker


class _Segmenter:
    """Records what was prepared, when, and how many prepared images were waiting at most."""

    prepares_ahead = True
    device = "cpu"

    def __init__(self, failing: set[int] = frozenset()) -> None:
        self.failing = failing
        self.lock = threading.Lock()
        self.waiting = 0
        self.most_waiting = 0
        self.threads: set[str] = set()

    def prepare_image(self, image: int) -> tuple[str, int]:
        if image in self.failing:
            raise OSError(f"image {image} is truncated")
        time.sleep(0.002)
        with self.lock:
            self.threads.add(threading.current_thread().name)
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
        return ("prepared", image)

    def taken(self) -> None:
        with self.lock:
            self.waiting -= 1


def test_jobs_run_in_order_with_their_own_prepared_image_and_bounded_lookahead():
    segmenter = _Segmenter()
    order: list[int] = []

    def finish(query, image, prepared, extra):
        if prepared is not None:
            segmenter.taken()
        time.sleep(0.003)  # the GPU side of SAM: the preparing threads run ahead meanwhile
        order.append(query)
        return query, image, prepared, extra

    with _SamWorker(segmenter) as worker:
        futures = [worker.submit(finish, q, q * 10, "x") for q in range(40)]
        results = [f.result() for f in futures]
    assert order == list(range(40))
    assert results == [(q, q * 10, ("prepared", q * 10), "x") for q in range(40)]
    assert segmenter.most_waiting <= _SamWorker.LOOKAHEAD + 1  # memory stays bounded
    assert all(name.startswith("sam-prepare") for name in segmenter.threads)


def test_an_image_that_fails_to_prepare_is_handed_over_unprepared():
    segmenter = _Segmenter(failing={30})
    with _SamWorker(segmenter) as worker:
        results = [f.result() for f in [worker.submit(lambda q, image, prepared: (image, prepared), q, q * 10)
                                        for q in range(6)]]
    assert results[3] == (30, None)  # set_image gets the image itself and reports its error there
    assert results[2] == (20, ("prepared", 20))


def test_a_segmenter_without_cpu_work_gets_no_preparing_threads():
    class Plain:
        device = "cpu"

    with _SamWorker(Plain()) as worker:
        assert worker.prepare_pool is None
        assert worker.submit(lambda q, image, prepared: prepared, 0, "img").result() is None
