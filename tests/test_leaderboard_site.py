"""The static site: data embedding, reported rows, and the page itself in headless Chromium."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _browser import artifacts_folder, chromium, dump_dom, require_chromium, screenshot, with_script
from _leaderboard_helpers import FakeSource, make_bundle

from reasonseg_x.leaderboard.host import GroundTruthContext, score_bundles
from reasonseg_x.leaderboard.site import board_data, load_reported, public_data_name, render_html, render_site
from reasonseg_x.leaderboard.store import LeaderboardStore

HOSTILE = '</script><img src=x onerror="document.title=\'pwned\'">&amp;'


#: a crowded board: long names of every shape, long base models, mixed parameter counts and TTS
LONG_NAMES = [
    "Qwen2.5-VL-72B-Instruct + LoRA r=128 + SAM 2.1 Hiera-L + majority vote over 64 samples (ablation 3)",
    "x" * 200, "tiny", "StAR-7B reproduction (host run)", "VisionReasoner-7B (re-scored by the host)",
    "LISA-13B-llama2-v1-explanatory (fine-tuned on ReasonSeg train + ReasonSeg-X train)", "Seg-Zero-7B",
    "gt-box-sam upper bound", "an-unbroken-identifier-without-any-spaces-at-all-0123456789-abcdefghijklmnop",
    "Model 10", "Model 11 with a fairly long but ordinary name", "Model 12",
]


def _build_db(tmp_path: Path, crowded: bool = False) -> Path:
    """A host's board: bundles scored on its copy of ReasonSeg-X test (a private path), and one on other data."""
    source = FakeSource(16, spec="/srv/private/ReasonSegX_test")
    if crowded:
        bundles = [make_bundle(tmp_path, source, name=name, quality=0.2 + 0.06 * i, out=f"b{i}", meta={
            "base_model": "Qwen/Qwen2.5-VL-72B-Instruct-with-a-very-long-base-model-identifier" if i % 3 else None,
            "parameter_count": [7_000_000_000, 72_000_000_000, 350_000_000][i % 3],
            "tts": {"method": "majority_vote", "n": 64} if i % 2 else None}) for i, name in enumerate(LONG_NAMES)]
    else:
        bundles = [make_bundle(tmp_path, source, name="Perfect model", out="a",
                               meta={"base_model": "Qwen2.5-VL-7B-Instruct", "parameter_count": 7_000_000_000}),
                   make_bundle(tmp_path, source, name="Half model", quality=0.5, out="b",
                               meta={"tts": {"method": "majority_vote", "n": 32}}),
                   make_bundle(tmp_path, source, name=HOSTILE, quality=0.2, out="c")]
    db = tmp_path / "lb.sqlite"
    other = FakeSource(8, seed=3, spec="mini")
    with LeaderboardStore(db) as store:
        outcomes = score_bundles(bundles, GroundTruthContext.load(source), store)
        outcomes += score_bundles([make_bundle(tmp_path, other, name="Oracle on other data", out="other")],
                                  GroundTruthContext.load(other), store)
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


#: docs/protocols.md section 6 (the paper's Table 1), RS-X test overall and per type, gIoU/cIoU
TABLE_1 = {
    "LISA-13B (ft)": "25.1/26.0 27.9/30.6 28.2/29.2 26.8/25.8 13.8/16.8",
    "VisionReasoner-7B": "42.2/33.8 50.1/45.1 50.7/39.0 39.4/31.1 24.5/23.8",
    "SAM 3 Agent (Qwen2.5-VL 72B)": "49.8/40.3 57.8/50.5 55.5/45.4 49.6/34.0 30.8/35.1",
    "StAR-7B": "49.2/43.6 58.2/52.2 60.2/52.4 45.7/40.4 28.0/28.8",
    "StAR-7B + MV": "50.3/44.9 60.6/56.9 61.8/54.4 46.2/40.1 27.9/30.5",
    "StAR-8B": "57.9/50.1 69.1/55.9 66.2/60.3 54.4/45.0 37.0/41.4",
    "StAR-8B + MV": "59.6/53.1 69.0/58.6 68.5/66.4 56.7/47.9 39.5/41.7",
    "StAR-32B": "61.7/59.2 71.7/71.6 66.7/66.9 58.2/50.8 47.2/51.5",
    "StAR-32B + MV": "64.1/60.8 74.0/69.6 70.2/71.0 60.7/54.2 47.9/50.3",
}


def test_reported_rows_match_every_number_of_table_1() -> None:
    rows = {r["model"]: r for r in load_reported()}
    assert list(rows) == list(TABLE_1)
    for model, text in TABLE_1.items():
        types = ("function_purpose", "commonsense", "comparative_relational", "compositional")
        blocks = [rows[model]["overall"]] + [rows[model]["types"][t] for t in types]
        assert [f"{b['giou']}/{b['ciou']}" for b in blocks] == text.split(), model


def test_data_names_group_rows_and_hide_host_paths() -> None:
    """ReasonSeg-X in any spelling joins the paper's rows; other local paths lose their folders."""
    paper = load_reported()[0]["data"]
    assert paper == "ReasonSeg-X test"
    for spec in ("/srv/private/ReasonSegX_test/", "reasonseg-x", "sj9909/ReasonSegX_test", "data/ReasonSegX_test"):
        assert public_data_name(spec, "test") == paper, spec
    assert public_data_name("/srv/private/ReasonSegX_val", "test") == "ReasonSegX_val:test"  # another split
    assert public_data_name("/srv/private/board-gt", "test") == "board-gt:test"
    assert public_data_name("C:\\data\\rsx", "val") == "rsx:val"
    assert public_data_name("sj9909/MUSE_val", "test") == "sj9909/MUSE_val:test"
    assert public_data_name("synth:40", "test") == "synth:40:test"


def test_board_data_has_verified_entries_with_intervals(tmp_path: Path) -> None:
    db = _build_db(tmp_path)
    with LeaderboardStore(db) as store:
        data = board_data(store)
    verified = [e for e in data["entries"] if e["kind"] == "verified"]
    assert [e["model"] for e in verified] == ["Perfect model", "Half model", HOSTILE, "Oracle on other data"]
    assert [e["data"] for e in verified] == ["ReasonSeg-X test"] * 3 + ["mini:test"]
    assert "/srv/private" not in json.dumps(data)
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


def test_reported_rows_only_beside_their_own_protocol(tmp_path: Path) -> None:
    """The paper's numbers are StAR-protocol numbers: a board of another protocol does not show them."""
    star = render_site(None, tmp_path / "star").read_text()
    assert "StAR-8B + MV" in star and "Protocol: star (ignore pixels merged into the target" in star
    other = board_data(None, protocol="visionreasoner")
    assert other["entries"] == [] and other["protocol_text"].startswith("Protocol: visionreasoner (")


def test_render_without_database_shows_reported_only(tmp_path: Path) -> None:
    page = render_site(None, tmp_path / "site")
    assert "StAR-8B + MV" in page.read_text()
    html = render_html({"title": "<b>t</b>", "entries": [], "types": []})
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in html


# --- headless Chromium ------------------------------------------------------------------------


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


def _dump(browser: str, tmp_path: Path, url: str) -> _Rows:
    html = dump_dom(browser, tmp_path, url)
    parser = _Rows()
    parser.feed(html)
    assert parser.rows, f"no table rows in the dumped DOM:\n{html[:2000]}"
    return parser


def _browser_and_page(tmp_path_factory: pytest.TempPathFactory, crowded: bool) -> tuple[str, Path]:
    """The browser (or a skip: CI installs Debian's chromium) and a rendered board."""
    browser = require_chromium()
    tmp = tmp_path_factory.mktemp("crowded" if crowded else "site")
    return browser, render_site(_build_db(tmp, crowded=crowded), tmp / "site")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    return _browser_and_page(tmp_path_factory, crowded=False)


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


def test_one_data_at_a_time(site: tuple[str, Path], tmp_path: Path) -> None:
    """By default the board shows the data with most verified entries (beside the paper's rows);
    entries on other data are one click (or `#data=...`) away, never ranked among them."""
    browser, page = site
    default = _dump(browser, tmp_path, page.as_uri())
    assert "Oracle on other data" not in [r["model"] for r in default.rows] and len(default.rows) == 12
    other = _dump(browser, tmp_path, page.as_uri() + "#data=mini%3Atest")
    assert [r["model"] for r in other.rows] == ["Oracle on other data"]
    everything = _dump(browser, tmp_path, page.as_uri() + "#data=all")
    assert len(everything.rows) == 13


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


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts_folder(tmp_path_factory)


def _screenshot(browser: str, page: Path, tmp_path: Path, shot: Path, view: str, height: int = 1000) -> Path:
    return screenshot(browser, page.as_uri() + view, tmp_path, shot, height)


def test_screenshot(site: tuple[str, Path], tmp_path: Path, artifacts: Path,
                    record_property) -> None:  # type: ignore[no-untyped-def]
    browser, page = site
    shot = _screenshot(browser, page, tmp_path, artifacts / "leaderboard.png", "#metric=giou&sort=overall&dir=desc")
    record_property("screenshot", str(shot))


def _with_script(page: Path, name: str, script: str) -> Path:
    return with_script(page, name, script, drop_csp=True)  # the page's policy refuses an added script


def test_the_policy_allows_only_the_pages_own_script(tmp_path: Path) -> None:
    import re

    from reasonseg_x._html import script_hash

    html = render_site(_build_db(tmp_path), tmp_path / "site").read_text()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";")[0]
    assert len(scripts) == 1 and f"script-src '{script_hash(scripts[0])}'" in policy
    assert "default-src 'none'" in policy and "base-uri 'none'" in policy and "form-action 'none'" in policy


def test_in_chromium_the_board_runs_and_an_injected_script_does_not(site: tuple[str, Path], tmp_path: Path) -> None:
    """The page's own script draws the table under its hash policy; a script added beside it (as an
    injection would be) is refused, so it cannot mark the page."""
    browser, page = site
    dom = _dump(browser, tmp_path, with_script(page, "injected.html",
                                               'document.body.setAttribute("data-injected", "ran");').as_uri())
    assert len(dom.rows) == 12 and "data-injected" not in dom.attrs


def test_clicking_headers_and_the_toggle(site: tuple[str, Path], tmp_path: Path) -> None:
    """Real clicks: C/MH header (descending), again (ascending), then the cIoU button."""
    browser, page = site
    clicks = ('document.querySelector("th[data-key=compositional] button").click();'
              'document.querySelector("th[data-key=compositional] button").click();'
              'document.getElementById("metric-ciou").click();')
    dom = _dump(browser, tmp_path, _with_script(page, "clicked.html", clicks).as_uri())
    assert dom.attrs["data-metric"] == "ciou" and dom.attrs["data-sort"] == "compositional:asc"
    values = [float(r["compositional"]) for r in dom.rows]
    assert values == sorted(values) and len(values) == 12
    assert dict(zip([r["model"] for r in dom.rows], values))["StAR-32B + MV"] == 50.3  # C/MH cIoU in Table 1


#: run in a copy of the page: records layout measurements as attributes of <body> for --dump-dom
_MEASURE = """
(function () {
  var wrap = document.querySelector(".table-wrap"), tallest = 0;
  document.querySelectorAll("#board-body tr").forEach(function (tr) {
    tallest = Math.max(tallest, tr.getBoundingClientRect().height);
  });
  document.body.setAttribute("data-overflow-x", String(wrap.scrollWidth - wrap.clientWidth));
  document.body.setAttribute("data-tallest-row", String(Math.round(tallest)));
  document.body.setAttribute("data-legend", String(document.querySelectorAll("#chart-svg [class^=legend-]").length));
  document.body.setAttribute("data-whiskers", String(document.querySelectorAll("#chart-svg line.ci").length));
})();
"""


@pytest.fixture(scope="module")
def crowded_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    return _browser_and_page(tmp_path_factory, crowded=True)


def test_crowded_board_keeps_its_layout(crowded_site: tuple[str, Path], tmp_path: Path, artifacts: Path,
                                        record_property) -> None:  # type: ignore[no-untyped-def]
    """12 verified entries with long names at 1280 px: no sideways scrolling, names wrap to two lines."""
    browser, page = crowded_site
    measured = _with_script(page, "measured.html", _MEASURE)
    dom = _dump(browser, tmp_path, measured.as_uri() + "#metric=ciou&sort=overall&dir=desc&data=all")  # widest
    assert len(dom.rows) == len(LONG_NAMES) + 9 + 1 and "Data" in dom.head
    assert {r["model"] for r in dom.rows if r["kind"] == "verified"} == {*LONG_NAMES, "Oracle on other data"}
    assert int(dom.attrs["data-overflow-x"]) <= 0, "the table scrolls sideways at 1280 px"
    assert int(dom.attrs["data-tallest-row"]) <= 64, "a long name or base model is not clamped to two lines"
    assert dom.attrs["data-legend"] == "8" and int(dom.attrs["data-whiskers"]) > 0
    shot = _screenshot(browser, page, tmp_path, artifacts / "leaderboard-crowded.png", "#metric=ciou&sort=overall",
                       height=1800)
    record_property("screenshot", str(shot))


def test_verified_entries_link_to_their_viewers(tmp_path: Path) -> None:
    """`leaderboard viewers` builds a viewer per verified bundle into the site; `render` links it; a bundle
    the board never verified gets none."""
    from typer.testing import CliRunner

    from reasonseg_x.cli import app
    from reasonseg_x.data.resolve import open_source

    source = open_source("mini")
    good = make_bundle(tmp_path, source, name="Linked <b>model</b>", quality=0.5, out="good")
    stranger = make_bundle(tmp_path, source, name="Unscored", out="stranger")
    db = tmp_path / "lb.sqlite"
    with LeaderboardStore(db) as store:
        assert score_bundles([good], GroundTruthContext.load(source), store)[0].status == "verified"
    site = tmp_path / "site"
    runner = CliRunner()
    result = runner.invoke(app, ["leaderboard", "viewers", str(good), str(stranger), "--gt", "mini", "--db", str(db),
                                 "--out", str(site)])
    assert result.exit_code == 0, result.output
    assert "built" in result.output and "skipped" in result.output
    result = runner.invoke(app, ["leaderboard", "render", "--db", str(db), "--out", str(site)])
    assert result.exit_code == 0, result.output
    data = json.loads((site / "data.json").read_text())
    linked = [e for e in data["entries"] if e.get("viewer")]
    assert [e["model"] for e in linked] == ["Linked <b>model</b>"]
    assert (site / linked[0]["viewer"]).is_file() and len(list((site / "viewers").iterdir())) == 1
    # titled by the submitted model (escaped), not by the bundle's file name "predictions"
    viewer_html = (site / linked[0]["viewer"]).read_text(encoding="utf-8")
    assert "<title>Cases: Linked &lt;b&gt;model&lt;/b&gt;</title>" in viewer_html and "predictions" not in viewer_html
    again = runner.invoke(app, ["leaderboard", "viewers", str(good), "--gt", "mini", "--db", str(db), "--out", str(site)])
    assert again.exit_code == 0 and "built" in again.output, again.output  # the host rebuilds its own viewers
    browser = chromium()
    if browser is not None:
        html = dump_dom(browser, tmp_path, (site / "index.html").as_uri() + "#reported=0")
        assert f'href="{linked[0]["viewer"]}"' in html and "<b>model" not in html
