"""Headless Chromium for the static pages' tests (leaderboard, case viewer): dump the DOM after the
page's scripts ran, or take a screenshot; skips cleanly where no Chromium is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return browser


def browser_args(tmp_path: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000"]


def dump_dom(browser: str, tmp_path: Path, url: str, *, budget_ms: int = 3000) -> str:
    """The DOM of ``url`` once its scripts ran (``--virtual-time-budget``)."""
    proc = subprocess.run([browser, *browser_args(tmp_path), f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=90, env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def artifacts_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots are kept: $REASONSEG_X_ARTIFACTS (CI sets it), else <pytest basetemp>/artifacts."""
    folder = Path(os.environ.get("REASONSEG_X_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(browser: str, url: str, tmp_path: Path, shot: Path, height: int = 1000) -> Path:
    """Take a screenshot of ``url`` at 1280 x ``height`` and check it is not blank."""
    from PIL import Image

    args = [a if not a.startswith("--window-size") else f"--window-size=1280,{height}" for a in browser_args(tmp_path)]
    shot.unlink(missing_ok=True)  # never pass on an earlier run's picture
    proc = subprocess.run([browser, *args, "--virtual-time-budget=3000", f"--screenshot={shot}", url],
                          capture_output=True, text=True, timeout=90, env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    with Image.open(shot) as img:
        assert img.size == (1280, height)
        colours = img.convert("RGB").resize((320, height // 4)).getcolors(maxcolors=100_000)
    assert colours is not None and len(colours) > 50  # not a blank page
    return shot


def with_script(page: Path, name: str, script: str, *, drop_csp: bool = False) -> Path:
    """A copy of the page with ``script`` run after the page's own code (results land in the dumped DOM).

    ``drop_csp`` removes the page's Content-Security-Policy (a script-hash policy refuses the added
    script; a test of escaping also wants no policy to hide a failure)."""
    import re

    text = page.read_text(encoding="utf-8")
    if drop_csp:
        text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    copy = page.with_name(name)
    copy.write_text(text.replace("</body>", f"<script>{script}</script>\n</body>"), encoding="utf-8")
    return copy
