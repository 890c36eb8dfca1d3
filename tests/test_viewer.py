"""The case viewer: files it writes, untrusted text, and the page in real headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from _browser import artifacts_folder, dump_dom, require_chromium, screenshot, with_script

from reasonseg_x import masks
from reasonseg_x.errors import InvalidInputError

HOSTILE_TEXT = ('<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
                '</textarea><b>bold</b> & </pre>')
HOSTILE_IDS = ['he said "hi"/../../../escape', "</script><img src=x onerror=alert(1)>", "a\\b/c 'q' #h?q=1&x"]


def _bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """The mini split re-exported with three hostile sample ids."""
    from reasonseg_x.data.compact import write_compact
    from reasonseg_x.data.resolve import open_source

    samples = list(open_source("mini").samples("test"))
    for k, new_id in enumerate(HOSTILE_IDS):
        samples[k] = dataclasses.replace(samples[k], id=new_id)
    folder = tmp_path_factory.mktemp("hostile-data")
    write_compact({"test": samples}, folder)
    return folder, samples


#: the sample answered by a tts run whose first sampled answer the vote rejected (unreadable) and whose
#: second cluster lost the vote; its text, and where the outvoted object's box lies
TTS_VOTE = 10
REJECTED_TEXT = "<think>unreadable first answer</think>"
DROPPED_BOX = [10.0, 300.0, 120.0, 345.0]


def _voted_meta(box: list[float]) -> dict:
    shifted = [box[0] + 4, box[1] + 4, box[2] - 4, box[3] - 4]
    return {"vote": {"decision": "clusters", "k": 1, "clusters": [{"votes": 2, "ratio": 0.67, "kept": True},
                                                                  {"votes": 1, "ratio": 0.33, "kept": False}]},
            "candidates": [
                {"status": "parse_error", "objects": [], "raw_text": REJECTED_TEXT, "kept": False,
                 "error": "no <answer> block"},
                {"status": "ok", "kept": True, "cluster": "0", "raw_text": "second answer (kept)",
                 "objects": [{"label": "items", "bbox": shifted, "points": [], "score": 0.7, "cluster": 0}]},
                {"status": "ok", "kept": True, "cluster": "0,1", "raw_text": "third answer (kept)",
                 "objects": [{"label": "items", "bbox": box, "points": [], "score": 0.9, "cluster": 0},
                             {"label": "stray", "bbox": DROPPED_BOX, "points": [], "score": 0.5, "cluster": 1}]}]}


def _predictions(samples: list, *, perfect: bool) -> list[dict]:
    """A: every status (ok, degraded masks with boxes and points; no_target; parse_error with hostile
    text; error; missing; one tts answer set); B: the ground truth."""
    lines = []
    for i, s in enumerate(samples):
        target = masks.decode(s.target)
        if perfect:  # the star protocol merges the ignore region into the target
            full = target | masks.decode(s.ignore) if s.ignore is not None else target
            lines.append({"id": s.id, "mask": masks.encode(full), "status": "ok", "raw_text": "fine"})
            continue
        if i in (0, 1, 2) or i % 6 == 0:
            lines.append({"id": s.id, "mask": None, "status": "parse_error", "raw_text": HOSTILE_TEXT})
        elif i % 6 == 1:
            lines.append({"id": s.id, "mask": None, "status": "error", "meta": {"error": "CUDA out of memory <b>"}})
        elif i % 6 == 2:
            lines.append({"id": s.id, "mask": None, "status": "no_target", "raw_text": "nothing there"})
        elif i % 6 == 3:
            continue  # missing
        else:
            keep = (np.arange(target.shape[0]) % (i % 4 + 2)) != 0
            meta = {"boxes": [_bbox(target)] if target.any() else [], "points": [[5, 5]]}
            if i == 5:
                meta["candidates"] = [{"status": "ok", "objects": [{"label": "bar", "bbox": [1, 1, 9, 9], "points": [[4, 4]]}],
                                       "raw_text": HOSTILE_TEXT, "cluster": 0, "kept": True},
                                      {"status": "parse_error", "objects": [], "raw_text": "garbage", "cluster": None}]
            raw = f"answer {i}"
            if i == TTS_VOTE:
                meta, raw = _voted_meta(_bbox(target)), REJECTED_TEXT
            lines.append({"id": s.id, "mask": masks.encode(target & keep[:, None]), "status": "ok",
                          "raw_text": raw, "meta": meta})
    return lines


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(dataset: tuple[Path, list], tmp_path_factory: pytest.TempPathFactory) -> dict:
    from reasonseg_x.viewer.build import build_viewer

    folder, samples = dataset
    tmp = tmp_path_factory.mktemp("viewer")
    a = _write(tmp / "a.jsonl", _predictions(samples, perfect=False))
    b = _write(tmp / "b.jsonl", _predictions(samples, perfect=True))
    single = build_viewer(a, tmp / "single", data=str(folder), workers=2, progress=False)
    pair = build_viewer(a, tmp / "pair", run2=b, data=str(folder), workers=1, progress=False)
    return {"single": single, "pair": pair, "samples": samples, "tmp": tmp}


def _data(page: Path) -> dict:
    html = page.read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="viewer-data">(.*?)</script>', html, re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_files_stay_inside_the_folder_and_are_named_by_hash(built: dict) -> None:
    root = built["single"].parent
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    n = len(built["samples"])
    assert len(files) == 2 + 2 * n + 1  # page, marker, pictures, the on-demand view of outvoted boxes
    assert all(re.fullmatch(r"(thumbs/[0-9a-f]{24}\.a\.jpg|full/[0-9a-f]{24}\.a(\.all)?\.jpg|index\.html|"
                            r"viewer\.json)", f) for f in files)
    assert not list(root.parent.glob("escape*")) and not (root.parent.parent / "escape").exists()
    pair_root = built["pair"].parent
    assert len(list((pair_root / "thumbs").iterdir())) == 2 * n and len(list((pair_root / "full").iterdir())) == 2 * n + 1


def test_untrusted_text_is_data_not_markup(built: dict) -> None:
    html = built["single"].read_text(encoding="utf-8")
    assert html.count("</script>") == 2 and "<img" not in html and "</textarea>" not in html
    data = _data(built["single"])
    by_id = {c["id"]: c for c in data["cases"]}
    assert set(HOSTILE_IDS) <= set(by_id)
    assert by_id[HOSTILE_IDS[0]]["runs"][0]["raw"] == HOSTILE_TEXT and by_id[HOSTILE_IDS[0]]["runs"][0]["status"] == "parse_error"
    statuses = {c["runs"][0]["status"] for c in data["cases"]}
    assert statuses == {"ok", "no_target", "parse_error", "error", "missing"}
    tts = next(c for c in data["cases"] if c["runs"][0].get("answers"))
    assert tts["runs"][0]["answers"][0]["kept"] is True and tts["runs"][0]["answers"][0]["raw"] == HOSTILE_TEXT


def test_summary_has_per_type_deltas(built: dict) -> None:
    data = _data(built["pair"])
    rows = {r["key"]: r for r in data["summary"]}
    assert rows[""]["n"] == len(built["samples"]) and len(rows) == 7  # overall, 4 types, 2 query kinds
    assert {"query_kind:long", "query_kind:short"} <= set(rows)
    for row in rows.values():
        assert row["runs"][1]["giou"] == 100.0 and row["runs"][0]["giou"] < 100.0


def test_predictions_of_other_data_are_refused(built: dict, tmp_path: Path) -> None:
    from reasonseg_x.viewer.build import build_viewer

    run = tmp_path / "run"
    run.mkdir()
    (run / "predictions.jsonl").write_text('{"id": "synth-000000", "mask": null, "status": "error"}\n')
    with pytest.raises(InvalidInputError, match="pass --data"):
        build_viewer(run, tmp_path / "v")
    with pytest.raises(InvalidInputError, match="prediction ids is a sample of synth:3"):
        build_viewer(built["tmp"] / "a.jsonl", tmp_path / "v2", data="synth:3", progress=False)


def test_malformed_prediction_lines_are_reported_not_dropped(dataset: tuple[Path, list], tmp_path: Path) -> None:
    from reasonseg_x.viewer.build import build_viewer

    folder, samples = dataset
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": samples[0].id, "mask": None, "status": "no_target"}) + "\n"
                   + json.dumps({"id": samples[1].id, "mask": {"size": [2, 2], "counts": "!!"}}) + "\nnot json\n",
                   encoding="utf-8")
    heard: list[str] = []
    page = build_viewer(bad, tmp_path / "v", data=str(folder), workers=1, progress=False, on_note=heard.append)
    assert heard and heard[0].startswith("bad: 2 malformed prediction line(s)") and "bad.jsonl:2" in heard[0]
    data = _data(page)
    assert heard[0] in data["notes"]
    statuses = {c["id"]: c["runs"][0]["status"] for c in data["cases"]}
    assert statuses[samples[1].id] == "invalid" and statuses[samples[0].id] == "no_target"


def test_cli_show_on_an_eval_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from reasonseg_x.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--model", "oracle", "--data", "synth:6", "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["show", str(tmp_path / "run"), "--out", str(tmp_path / "view"), "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    data = _data(tmp_path / "view" / "index.html")
    assert len(data["cases"]) == 6 and {c["runs"][0]["iou"] for c in data["cases"]} == {1.0}
    missing = runner.invoke(app, ["show", str(tmp_path / "nope"), "--out", str(tmp_path / "v2")])
    assert missing.exit_code == 2 and "no such run folder" in missing.output
    # the run's predictions.jsonl names the run, as for score and submit: no --data needed
    result = runner.invoke(app, ["show", str(tmp_path / "run" / "predictions.jsonl"), "--out", str(tmp_path / "v3"),
                                 "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    again = _data(tmp_path / "v3" / "index.html")
    assert again["cases"] == data["cases"] and again["runs"] == data["runs"]


# --- headless Chromium ------------------------------------------------------------------------


class _Dom(HTMLParser):
    """Cards in list order, the body's attributes, images and scripts, and the raw answers shown."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str] = {}
        self.cards: list[dict[str, str]] = []
        self.scripts = 0
        self.bad_images = 0
        self.pre: list[str] = []
        self._in_pre = False
        self.answers: list[dict[str, str]] = []
        self.full: list[dict[str, str]] = []
        self.ids: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        elif tag == "article" and "data-id" in a:
            self.cards.append(a)
        elif tag == "script":
            self.scripts += 1
        elif tag == "img" and ("onerror" in a or a.get("src") == "x"):
            self.bad_images += 1
        elif tag == "pre":
            self._in_pre = True
            self.pre.append("")
        if tag == "li" and "data-verdict" in a:
            self.answers.append(a)
        if tag == "img" and "full" in a.get("class", "").split():
            self.full.append(a)
        if a.get("id"):
            self.ids[a["id"]] = a

    def handle_data(self, data: str) -> None:
        if self._in_pre:
            self.pre[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre = False


def _dom(tmp_path: Path, url: str) -> _Dom:
    parser = _Dom()
    parser.feed(dump_dom(require_chromium(), tmp_path, url))
    return parser


def test_page_opens_from_file_and_lists_worst_first(built: dict, tmp_path: Path) -> None:
    dom = _dom(tmp_path, built["single"].as_uri())
    n = len(built["samples"])
    assert dom.body["data-visible"] == str(n) and len(dom.cards) == n  # one page of 60
    ious = [float(c["data-iou"]) for c in dom.cards]
    assert ious == sorted(ious) and ious[-1] > ious[0]
    assert dom.bad_images == 0 and dom.scripts == 2


#: run in a copy of the page: applies each filter in turn (real change/input events) and records the
#: visible count, the cards shown and their types and statuses as attributes of <body>
_FILTERS = """
function set(id, v, ev) { var s = document.getElementById(id); s.value = v; s.dispatchEvent(new Event(ev || "change")); }
function reset() { set("f-type", ""); set("f-status", ""); set("f-min", "0"); set("f-search", "", "input"); }
function snap(name) {
  var cards = Array.prototype.slice.call(document.querySelectorAll("#cases article"));
  var uniq = function (attr) { return cards.map(function (c) { return c.getAttribute(attr); })
    .filter(function (v, i, a) { return a.indexOf(v) === i; }).sort().join(","); };
  document.body.setAttribute("data-" + name, [document.body.getAttribute("data-visible"), cards.length,
    uniq("data-type"), uniq("data-status")].join("|"));
}
SCENARIOS.forEach(function (sc) { reset(); sc[1].forEach(function (step) { set(step[0], step[1], step[2]); }); snap(sc[0]); });
"""


def test_filters_change_the_visible_list(built: dict, tmp_path: Path) -> None:
    data = _data(built["single"])
    cases = data["cases"]
    query = cases[10]["query"]
    word = max(query.split(), key=len).lower()
    scenarios = [["type", [["f-type", "commonsense"]]], ["status", [["f-status", "parse_error"]]],
                 ["both", [["f-type", "commonsense"], ["f-status", "parse_error"]]],
                 ["search", [["f-search", word, "input"]]], ["iou", [["f-min", "50"]]]]
    script = "var SCENARIOS = " + json.dumps(scenarios) + ";" + _FILTERS
    dom = _dom(tmp_path, with_script(built["single"], "filters.html", script, drop_csp=True).as_uri())

    def seen(name: str) -> tuple[int, int, set[str], set[str]]:
        visible, shown, types, statuses = dom.body[f"data-{name}"].split("|")
        return int(visible), int(shown), set(types.split(",")), set(statuses.split(","))

    by_type = sum(1 for c in cases if c.get("type") == "commonsense")
    assert seen("type")[:3] == (by_type, by_type, {"commonsense"}) and 0 < by_type < len(cases)
    parse_errors = sum(1 for c in cases if c["runs"][0]["status"] == "parse_error")
    assert seen("status")[:2] == (parse_errors, parse_errors) and seen("status")[3] == {"parse_error"}
    both = sum(1 for c in cases if c.get("type") == "commonsense" and c["runs"][0]["status"] == "parse_error")
    assert seen("both")[0] == both and seen("both")[2] <= {"commonsense"}
    hits = sum(1 for c in cases if word in (c["query"] + "\n" + c["id"]).lower())
    assert seen("search")[0] == hits >= 1
    assert seen("iou")[0] == sum(1 for c in cases if (c["runs"][0]["iou"] or 0) >= 0.5)
@pytest.mark.parametrize("sample_id", HOSTILE_IDS)
def test_deep_link_opens_that_sample_and_shows_its_answer_as_text(built: dict, tmp_path: Path, sample_id: str) -> None:
    dom = _dom(tmp_path, built["single"].as_uri() + "#" + quote(sample_id, safe=""))
    assert dom.body.get("data-open") == sample_id
    assert HOSTILE_TEXT in dom.pre and dom.bad_images == 0 and dom.scripts == 2


def test_hostile_text_runs_nothing_even_without_the_page_policy(built: dict, tmp_path: Path) -> None:
    """Without the Content-Security-Policy, opening every hostile sample (and the tts answers) still runs
    nothing: the text is shown, never parsed as markup."""
    data = _data(built["single"])
    tts = next(c["id"] for c in data["cases"] if c["runs"][0].get("answers"))
    ids = json.dumps([*HOSTILE_IDS, tts]).replace("</", "<\\/")  # the test's own script must stay intact
    script = ("var ids = " + ids + ";"
              "ids.forEach(function (id) { history.replaceState(null, '', '#' + encodeURIComponent(id));"
              " window.dispatchEvent(new HashChangeEvent('hashchange')); });"
              "document.querySelectorAll('details').forEach(function (d) { d.open = true; });"
              "document.body.setAttribute('data-title', document.title);")
    page = with_script(built["single"], "nocsp.html", script, drop_csp=True)
    dom = _dom(tmp_path, page.as_uri())
    assert dom.body["data-title"] != "pwned" and dom.bad_images == 0 and dom.scripts == 3
    assert dom.body.get("data-open") == tts and HOSTILE_TEXT in dom.pre


def test_keyboard_moves_through_the_list(built: dict, tmp_path: Path) -> None:
    keys = ("function key(k) { document.dispatchEvent(new KeyboardEvent('keydown', {key: k})); }"
            "key('j'); key('j'); key('k'); key('Enter');")
    page = with_script(built["single"], "keys.html", keys, drop_csp=True)
    dom = _dom(tmp_path, page.as_uri())
    assert dom.body.get("data-open") == dom.cards[1]["data-id"]


def test_side_by_side_sorted_by_difference(built: dict, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                           record_property) -> None:  # type: ignore[no-untyped-def]
    dom = _dom(tmp_path, built["pair"].as_uri())
    assert dom.body["data-mode"] == "pair" and dom.body["data-sort"] == "loss"
    diffs = [float(c["data-diff"]) for c in dom.cards]
    assert diffs == sorted(diffs) and len(diffs) == len(built["samples"])
    wins = with_script(built["pair"], "wins.html", 'var s = document.getElementById("f-sort"); s.value = "win";'
                       ' s.dispatchEvent(new Event("change"));', drop_csp=True)
    diffs = [float(c["data-diff"]) for c in _dom(tmp_path, wins.as_uri()).cards]
    assert diffs == sorted(diffs, reverse=True) and diffs[0] > 0
    artifacts = artifacts_folder(tmp_path_factory)
    browser = require_chromium()
    for name, url in (("viewer.png", built["single"].as_uri()), ("viewer-pair.png", built["pair"].as_uri()),
                      ("viewer-detail.png", built["pair"].as_uri() + "#" + quote(built["samples"][10].id))):
        shot = screenshot(browser, url, tmp_path, artifacts / name)
        record_property("screenshot", str(shot))


def test_ten_thousand_samples_stay_responsive(tmp_path: Path) -> None:
    """A page of 10,000 cases (pictures absent: only the page is measured) renders one page of cards,
    and a filter change re-lists all 10,000 in well under a second."""
    from reasonseg_x.viewer.build import render_page

    kinds = ("function_purpose", "commonsense", "comparative_relational", "compositional")
    cases = [{"id": f"s{i:05d}", "key": f"{i:024x}", "query": f"query number {i} about the {kinds[i % 4]}",
              "w": 640, "h": 480, "type": kinds[i % 4], "kind": "long" if i % 3 else "short",
              "runs": [{"iou": (i * 7919 % 1000) / 1000, "status": "ok" if i % 11 else "parse_error",
                        "raw": "x" * 200}]} for i in range(10_000)]
    page = tmp_path / "index.html"
    page.write_text(render_page({"title": "big", "runs": [{"name": "r", "protocol": "star"}],
                                 "types": [{"id": k, "code": k[:4], "name": k} for k in kinds],
                                 "summary": [], "cases": cases}), encoding="utf-8")
    timing = ('var t0 = performance.now(); var s = document.getElementById("f-type"); s.value = "commonsense";'
              's.dispatchEvent(new Event("change")); var n = document.body.getAttribute("data-visible");'
              's.value = ""; s.dispatchEvent(new Event("change"));'
              'document.body.setAttribute("data-ms", String(performance.now() - t0));'
              'document.body.setAttribute("data-filtered", n);')
    dom = _dom(tmp_path, with_script(page, "timed.html", timing, drop_csp=True).as_uri())
    assert dom.body["data-visible"] == "10000" and len(dom.cards) == 60 and dom.body["data-filtered"] == "2500"
    assert float(dom.body["data-ms"]) < 1000
    ious = [float(c["data-iou"]) for c in dom.cards]
    assert ious == sorted(ious) and ious[0] == 0.0


def test_runs_are_shown_with_their_own_scores_and_data(tmp_path: Path) -> None:
    """Two eval runs: their per_sample.jsonl is what the page shows; runs on other data are refused;
    --protocol scores afresh."""
    from typer.testing import CliRunner

    from reasonseg_x.cli import app
    from reasonseg_x.viewer.build import build_viewer

    runner = CliRunner()
    for model, data, name in (("oracle", "mini", "oracle"), ("empty", "mini", "empty"), ("empty", "synth:4", "other")):
        result = runner.invoke(app, ["eval", "--model", model, "--data", data, "--out", str(tmp_path / name), "-q"])
        assert result.exit_code == 0, result.output
    page = build_viewer(tmp_path / "oracle", tmp_path / "v", run2=tmp_path / "empty", workers=1, progress=False)
    data = _data(page)
    per_sample = {json.loads(line)["id"]: json.loads(line)["iou"]
                  for line in (tmp_path / "empty" / "per_sample.jsonl").read_text().splitlines()}
    assert {c["id"]: c["runs"][1]["iou"] for c in data["cases"]} == per_sample
    assert data["runs"][0]["model"] == "oracle" and data["summary"][0]["runs"][0]["giou"] == 100.0
    with pytest.raises(InvalidInputError, match="different data"):
        build_viewer(tmp_path / "oracle", tmp_path / "v2", run2=tmp_path / "other", workers=1, progress=False)
    # under visionreasoner an empty answer on a sample without a target scores 0 (star: 1)
    other = _data(build_viewer(tmp_path / "empty", tmp_path / "v3", protocol="segzero", workers=1, progress=False))
    assert other["runs"][0]["protocol"] == "visionreasoner"
    no_target = [c for c in other["cases"] if per_sample[c["id"]] == 1.0]
    assert no_target and all(c["runs"][0]["iou"] == 0.0 for c in no_target)


def test_a_score_out_folder_finds_its_predictions(built: dict, dataset: tuple[Path, list], tmp_path: Path) -> None:
    """`score --out DIR` keeps scores only: the viewer follows metrics.json to the predictions file."""
    from typer.testing import CliRunner

    from reasonseg_x.cli import app

    folder, samples = dataset
    preds = built["tmp"] / "b.jsonl"
    scored = tmp_path / "scored"
    result = CliRunner().invoke(app, ["score", "--data", str(folder), "--predictions", str(preds), "--out", str(scored),
                                      "-q", "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["show", str(scored), "--out", str(tmp_path / "v"), "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    data = _data(tmp_path / "v" / "index.html")
    assert len(data["cases"]) == len(samples) and all(c["runs"][0]["iou"] == 1.0 for c in data["cases"])


# --- a viewer that does not mislead ------------------------------------------------------------


def _tts_case(built: dict) -> dict:
    sample_id = built["samples"][TTS_VOTE].id
    return next(c for c in _data(built["single"])["cases"] if c["id"] == sample_id)


def test_tts_answers_the_vote_kept_come_first_and_rejected_ones_are_marked(built: dict, tmp_path: Path) -> None:
    """The first sampled answer was unreadable and the vote rejected it: the page leads with the answers
    it kept, marks the rejected one, and shows no "raw answer" that is candidate 0."""
    case = _tts_case(built)
    answers = case["runs"][0]["answers"]
    assert [(a["n"], a["verdict"]) for a in answers] == [(2, "kept"), (3, "kept"), (1, "rejected")]
    dom = _dom(tmp_path, built["single"].as_uri() + "#" + quote(case["id"], safe=""))
    assert dom.body.get("data-open") == case["id"]
    assert [(a["data-n"], a["data-verdict"]) for a in dom.answers] == [("2", "kept"), ("3", "kept"), ("1", "rejected")]
    assert dom.pre[0] == "second answer (kept)" and dom.pre.index(REJECTED_TEXT) == 2  # last, and only there
    assert dom.pre.count(REJECTED_TEXT) == 1


def test_boxes_that_lost_the_vote_are_drawn_only_on_demand(built: dict, tmp_path: Path) -> None:
    """One box per kept cluster in the thumbnail and the full view; the outvoted object's box and the
    kept cluster's duplicate only in the on-demand view (dashed), which the page's checkbox shows."""
    from PIL import Image

    case = _tts_case(built)
    run = case["runs"][0]
    assert len(run["boxes"]) == 1 and DROPPED_BOX in run["dropped_boxes"] and len(run["dropped_boxes"]) == 2
    root = built["single"].parent
    x1, y1, x2, _ = (int(v) for v in DROPPED_BOX)

    def top_edge(name: str) -> np.ndarray:  # the dropped box's top stroke, where the dashes would be
        with Image.open(root / name) as img:
            return np.asarray(img.convert("RGB")).astype(int)[y1, x1 + 2:x2 - 2]

    plain, every = top_edge(f"full/{case['key']}.a.jpg"), top_edge(f"full/{case['key']}.a.all.jpg")
    yellow = (plain[:, 0] > 200) & (plain[:, 1] > 190) & (plain[:, 2] < 90)
    assert not yellow.any()  # not drawn as a box that made the mask
    changed = np.abs(every - plain).max(axis=1) > 60
    assert changed.mean() > 0.4 and (every[changed].min(axis=1) > 200).any() and (every.max(axis=1) < 60).any()
    script = ("document.querySelector('input.show-all').click();"
              "document.body.setAttribute('data-src', document.querySelector('img.full').getAttribute('src'));")
    page = with_script(built["single"], "toggle.html", script, drop_csp=True)
    dom = _dom(tmp_path, page.as_uri() + "#" + quote(case["id"], safe=""))
    assert dom.full[0]["data-view"] == "all" and dom.body["data-src"] == f"full/{case['key']}.a.all.jpg"
    plain_dom = _dom(tmp_path, built["single"].as_uri() + "#" + quote(case["id"], safe=""))
    assert plain_dom.full[0]["src"] == f"full/{case['key']}.a.jpg" and plain_dom.full[0]["data-view"] == "kept"


def test_filters_that_match_nothing_say_so(built: dict, tmp_path: Path) -> None:
    script = ('var s = document.getElementById("f-search"); s.value = "no sample says this"; '
              's.dispatchEvent(new Event("input"));'
              'var m = document.getElementById("no-match");'
              'document.body.setAttribute("data-message", m ? m.textContent : "");'
              'm.querySelector("button").click();')
    dom = _dom(tmp_path, with_script(built["single"], "nomatch.html", script, drop_csp=True).as_uri())
    assert dom.body["data-message"].startswith("No sample matches these filters")
    assert dom.body["data-visible"] == str(len(built["samples"])) and "no-match" not in dom.ids  # cleared
    assert dom.ids["f-search"].get("value", "") == ""


def test_show_refuses_to_replace_another_runs_viewer(built: dict, dataset: tuple[Path, list], tmp_path: Path) -> None:
    """`show --out` into a folder holding another run's viewer (or other files) is refused, as every
    other command refuses, unless --overwrite; the same run's viewer is rebuilt in place."""
    from typer.testing import CliRunner

    from reasonseg_x.cli import app

    folder, _ = dataset
    runner = CliRunner()
    view = tmp_path / "view"
    a, b = built["tmp"] / "a.jsonl", built["tmp"] / "b.jsonl"
    common = ["--data", str(folder), "-q", "-j", "1"]
    assert runner.invoke(app, ["show", str(a), "--out", str(view), *common]).exit_code == 0
    stale = view / "thumbs" / ("f" * 24 + ".a.jpg")
    stale.write_bytes(b"old")
    assert runner.invoke(app, ["show", str(a), "--out", str(view), *common]).exit_code == 0  # same run: rebuilt
    assert not stale.exists()  # no picture outlives its page
    refused = runner.invoke(app, ["show", str(b), "--out", str(view), *common])
    assert refused.exit_code == 2 and "--overwrite" in refused.output and "viewer of other runs" in refused.output
    assert _data(view / "index.html")["runs"][0]["name"] == "a"  # untouched
    replaced = runner.invoke(app, ["show", str(b), "--out", str(view), *common, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert _data(view / "index.html")["runs"][0]["name"] == "b"
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    refused = runner.invoke(app, ["show", str(a), "--out", str(other), *common])
    assert refused.exit_code == 2 and "other files" in refused.output and (other / "mine.txt").read_text() == "keep me"


def test_answer_verdicts_follow_the_vote() -> None:
    """Kept first; a no-object majority keeps the empty answers; without a recorded vote nothing is
    called kept or outvoted; a segmenter's scored mask candidates are no answers."""
    from reasonseg_x.viewer.cases import _answers

    no_object = {"decision": "no-object majority"}
    got = _answers([{"status": "ok", "objects": [{"bbox": [1, 2, 3, 4]}], "kept": False},
                    {"status": "no_target", "objects": [], "kept": False},
                    {"status": "parse_error", "objects": [], "kept": False}], no_object)
    assert [(a["n"], a["verdict"]) for a in got] == [(2, "kept"), (1, "outvoted"), (3, "rejected")]
    plain = _answers([{"status": "ok", "objects": []}, {"status": "parse_error", "objects": []}], None)
    assert [a["verdict"] for a in plain] == ["unknown", "rejected"]
    assert _answers([{"score": 0.9}, {"score": 0.5}], None) is None


def test_raw_text_of_a_tts_run_without_kept_texts_is_its_first_answers(dataset: tuple[Path, list],
                                                                       tmp_path: Path) -> None:
    """When the run kept no sampled texts, its raw_text (the first answer's) is shown with that answer,
    marked as the vote judged it, not as "the raw answer"."""
    from reasonseg_x.viewer.build import build_viewer

    folder, samples = dataset
    meta = _voted_meta([1.0, 1.0, 9.0, 9.0])
    for cand in meta["candidates"]:
        cand.pop("raw_text")
    line = {"id": samples[5].id, "mask": None, "status": "no_target", "raw_text": REJECTED_TEXT, "meta": meta}
    page = build_viewer(_write(tmp_path / "p.jsonl", [line]), tmp_path / "v", data=str(folder), workers=1,
                        progress=False)
    case = next(c for c in _data(page)["cases"] if c["id"] == samples[5].id)
    answers = case["runs"][0]["answers"]
    assert [(a["n"], a["verdict"], a.get("raw")) for a in answers] == [(2, "kept", None), (3, "kept", None),
                                                                       (1, "rejected", REJECTED_TEXT)]
