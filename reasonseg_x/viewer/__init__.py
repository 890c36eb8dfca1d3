"""The case viewer: a static page showing every prediction of a run (or two) on its picture.

``reasonseg-x show RUN [RUN2] --out DIR``; see :func:`reasonseg_x.viewer.build.build_viewer`.
"""

from __future__ import annotations

__all__ = ["build_viewer"]


def build_viewer(*args, **kwargs):  # type: ignore[no-untyped-def]
    """See :func:`reasonseg_x.viewer.build.build_viewer` (imported lazily)."""
    from reasonseg_x.viewer.build import build_viewer as build

    return build(*args, **kwargs)
