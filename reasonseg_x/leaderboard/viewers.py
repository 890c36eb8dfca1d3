"""Case viewers of verified leaderboard entries, built on the host from the bundles it holds.

The site links an entry to ``viewers/<key>/index.html`` when that folder exists beside its page;
``key`` is the first 16 hex digits of the bundle digest (the submission's identity in the store),
so the link is built from the host's own data, never from a submitted string. A viewer shows the
ground truth next to each prediction: build them only for data whose masks are public.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reasonseg_x.errors import ReasonSegXError
from reasonseg_x.output_paths import prepare_folder

__all__ = ["VIEWERS_DIR", "viewer_key", "viewer_link", "ViewerOutcome", "build_bundle_viewers"]

VIEWERS_DIR = "viewers"


def viewer_key(bundle_digest: str) -> str:
    return "".join(c for c in bundle_digest.lower() if c in "0123456789abcdef")[:16]


def viewer_link(site: str | os.PathLike[str], bundle_digest: str) -> str | None:
    """The page-relative link to an entry's viewer, when the host built one into ``site``."""
    key = viewer_key(bundle_digest)
    if len(key) == 16 and (Path(site) / VIEWERS_DIR / key / "index.html").is_file():
        return f"{VIEWERS_DIR}/{key}/index.html"
    return None


@dataclass(frozen=True)
class ViewerOutcome:
    source: str
    status: str  # built | skipped | rejected
    reason: str = ""
    link: str | None = None


def build_bundle_viewers(bundles: Iterable[str | os.PathLike[str]], gt_spec: str, site: str | os.PathLike[str],
                         store: object, *, split: str | None = None, protocol: str = "star",
                         workdir: str | os.PathLike[str] | None = None, progress: bool = False) -> list[ViewerOutcome]:
    """For each bundle already verified in ``store``, write its viewer into ``site/viewers/<key>/``.

    Bundles are opened with the same safety gate as scoring; one bad bundle never stops the others.
    """
    from reasonseg_x.leaderboard.bundle import open_bundle
    from reasonseg_x.viewer.build import build_viewer

    root = prepare_folder(Path(site) / VIEWERS_DIR, "the viewers folder")
    outcomes = []
    for path in bundles:
        scratch = Path(tempfile.mkdtemp(prefix="rsx-viewer-", dir=workdir))
        try:
            opened = open_bundle(path, scratch)
            if store.find_submission(opened.digest) is None:  # type: ignore[attr-defined]
                outcomes.append(ViewerOutcome(str(path), "skipped", "not a verified entry of this board (score it "
                                                                    "first)"))
                continue
            key = viewer_key(opened.digest)
            # titled by the submitted model (not "predictions", the bundle's file name); the folder is
            # this submission's own (its key is the bundle digest), so a rebuild replaces it
            build_viewer(opened.predictions_path, root / key, data=gt_spec, split=split, protocol=protocol,
                         progress=progress, name=opened.info.model_name, overwrite=True)
            outcomes.append(ViewerOutcome(str(path), "built", link=f"{VIEWERS_DIR}/{key}/index.html"))
        except ReasonSegXError as exc:
            outcomes.append(ViewerOutcome(str(path), "rejected", str(exc)))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return outcomes
