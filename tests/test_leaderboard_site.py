"""The static site: data embedding, reported rows, and the page itself in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _leaderboard_helpers import FakeSource, make_bundle

from reasonseg_x.leaderboard.host import GroundTruthContext, score_bundles
from reasonseg_x.leaderboard.site import board_data, load_reported, render_html, render_site
from reasonseg_x.leaderboard.store import LeaderboardStore

HOSTILE = '</script><img src=x onerror="document.title=\'pwned\'">&amp;'


def _build_db(tmp_path: Path) -> Path:
    source = FakeSource(16)
    bundles = [make_bundle(tmp_path, source, name="Perfect model", out="a",
                           meta={"base_model": "Qwen2.5-VL-7B-Instruct", "parameter_count": 7_000_000_000}),
               make_bundle(tmp_path, source, name="Half model", quality=0.5, out="b",
                           meta={"tts": {"method": "majority_vote", "n": 32}}),
               make_bundle(tmp_path, source, name=HOSTILE, quality=0.2, out="c")]
    db = tmp_path / "lb.sqlite"
    with LeaderboardStore(db) as store:
        outcomes = score_bundles(bundles, GroundTruthContext.load(source), store)
    assert all(o.status == "verified" for o in outcomes)
    return db


def test_reported_rows_are_table_1() -> None:
    rows = {r["model"]: r for r in load_reported()}
    assert len(rows) == 9
    star = rows["StAR-32B + MV"]
    assert star["kind"] == "reported" and star["overall"]["giou"] == 64.1 and star["overall"]["ciou"] == 60.8
    assert star["types"]["compositional"] == {"giou": 47.9, "ciou": 50.3, "giou_ci": None, "ciou_ci": None, "n": None}
    assert star["tts"] == "MV@32" and star["other"]["ReasonSeg test"] == {"giou": 72.7, "ciou": 68.1}
    assert rows["LISA-13B (ft)"]["types"]["function_purpose"]["ciou"] == 30.6


def test_board_data_has_verified_entries_with_intervals(tmp_path: Path) -> None:
    db = _build_db(tmp_path)
    with LeaderboardStore(db) as store:
        data = board_data(store)
    verified = [e for e in data["entries"] if e["kind"] == "verified"]
    assert [e["model"] for e in verified] == ["Perfect model", "Half model", HOSTILE]
    perfect = verified[0]
    assert perfect["overall"]["giou"] == 100.0 and perfect["overall"]["n"] == 16 and perfect["params"] == 7e9
    half = verified[1]
    lo, hi = half["overall"]["giou_ci"]
    assert lo <= half["overall"]["giou"] <= hi and half["tts"] == "MV@32"
    assert [t["code"] for t in data["types"]] == ["P/F", "C/KI", "C/R", "C/MH"]


def test_untrusted_names_cannot_break_out_of_the_data_block(tmp_path: Path) -> None:
    db = _build_db(tmp_path)
    page = render_site(db, tmp_path / "site")
    html = page.read_text()
    assert "</script><img" not in html and "<img" not in html
    assert html.count("</script>") == 2  # the data block and the code block, nothing injected
    data = json.loads((tmp_path / "site" / "data.json").read_text())
    assert HOSTILE in [e["model"] for e in data["entries"]]
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html


def test_render_without_database_shows_reported_only(tmp_path: Path) -> None:
    page = render_site(None, tmp_path / "site")
    assert "StAR-8B + MV" in page.read_text()
    html = render_html({"title": "<b>t</b>", "entries": [], "types": []})
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in html


# --- headless Chromium ------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Rows(HTMLParser):
    """Rows of the board's tbody: model name and data-value of every metric cell."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.attrs: dict[str, str] = {}
        self.head: list[str] = []
        self._in_head = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.attrs = a
        if tag == "tr" and "data-model" in a:
            self.rows.append({"model": a["data-model"], "kind": a.get("data-kind", "")})
        if tag == "td" and self.rows and "data-value" in a:
            self.rows[-1][a["data-col"]] = a["data-value"]
        if tag == "th":
            self._in_head, self._text = True, []
        if tag == "img":
            raise AssertionError("an <img> element was injected into the page")

    def handle_data(self, data: str) -> None:
        if self._in_head:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_head = False
            self.head.append("".join(self._text).strip())


def _browser_args(tmp_path: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000"]


def _dump(browser: str, tmp_path: Path, url: str) -> _Rows:
    proc = subprocess.run([browser, *_browser_args(tmp_path), "--virtual-time-budget=3000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=90, env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    parser = _Rows()
    parser.feed(proc.stdout)
    assert parser.rows, f"no table rows in the dumped DOM:\n{proc.stdout[:2000]}"
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    tmp = tmp_path_factory.mktemp("site")
    page = render_site(_build_db(tmp), tmp / "site")
    return browser, page


def test_page_renders_and_sorts_by_overall(site: tuple[str, Path], tmp_path: Path) -> None:
    browser, page = site
    dom = _dump(browser, tmp_path, page.as_uri() + "#metric=giou&sort=overall&dir=desc")
    assert len(dom.rows) == 3 + 9
    assert {r["kind"] for r in dom.rows} == {"verified", "reported"}
    values = [float(r["overall"]) for r in dom.rows]
    assert values == sorted(values, reverse=True) and dom.rows[0]["model"] == "Perfect model"
    assert dom.attrs["data-metric"] == "giou" and "Overall gIoU" in " ".join(dom.head)
    assert HOSTILE in [r["model"] for r in dom.rows]  # shown as text, no element injected


def test_sorting_by_other_columns(site: tuple[str, Path], tmp_path: Path) -> None:
    browser, page = site
    by_name = _dump(browser, tmp_path, page.as_uri() + "#sort=model&dir=asc")
    names = [r["model"].lower() for r in by_name.rows]
    assert names == sorted(names)
    by_type = _dump(browser, tmp_path, page.as_uri() + "#metric=giou&sort=compositional&dir=asc")
    values = [float(r["compositional"]) for r in by_type.rows if r.get("compositional")]
    assert values == sorted(values) and len(values) == 12
    verified_only = _dump(browser, tmp_path, page.as_uri() + "#reported=0")
    assert [r["kind"] for r in verified_only.rows] == ["verified"] * 3
    paper_only = _dump(browser, tmp_path, page.as_uri() + "#data=RS-X%20test%2C%20paper")
    assert [r["kind"] for r in paper_only.rows] == ["reported"] * 9


def test_toggle_switches_to_ciou(site: tuple[str, Path], tmp_path: Path) -> None:
    browser, page = site
    giou = _dump(browser, tmp_path, page.as_uri() + "#metric=giou&sort=overall")
    ciou = _dump(browser, tmp_path, page.as_uri() + "#sort=ciou")  # shortcut: cIoU, sorted by overall
    assert ciou.attrs["data-metric"] == "ciou" and "Overall cIoU" in " ".join(ciou.head)
    g = {r["model"]: float(r["overall"]) for r in giou.rows}
    c = {r["model"]: float(r["overall"]) for r in ciou.rows}
    assert g["StAR-8B"] == 57.9 and c["StAR-8B"] == 50.1  # Table 1, RS-X test
    order = [r["model"] for r in ciou.rows]
    assert [c[m] for m in order] == sorted(c.values(), reverse=True)


def test_screenshot(site: tuple[str, Path], tmp_path: Path) -> None:
    from PIL import Image

    browser, page = site
    folder = Path(os.environ.get("REASONSEG_X_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "leaderboard.png"
    proc = subprocess.run([browser, *_browser_args(tmp_path), f"--screenshot={shot}",
                           page.as_uri() + "#metric=giou&sort=overall&dir=desc"],
                          capture_output=True, text=True, timeout=90, env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    with Image.open(shot) as img:
        assert img.size == (1280, 1000)
        colours = img.convert("RGB").resize((320, 250)).getcolors(maxcolors=100_000)
    assert colours is not None and len(colours) > 50  # not a blank page
