"""Prompt texts: exact reference wording, query normalisation, example answers that parse."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.star.answer.parser import parse_answer
from reasonseg_x.star.answer.prompts import PROMPT_TEMPLATES, STYLES, VLM_FRAME, build_prompt, normalize_query

# The full StAR prompt for one query, written out once by hand from the reference script.
STAR_EXPECTED = (
    'Please find "what can i sit on" with bbox(es) and point(s). Also provide a short label for each object. '
    'First, understand and summarize what the query \u2014"what can i sit on"\u2014 is likely referring to '
    '(which object or concept). Then apply this to the image and find the matched target object(s). '
    'Return ALL matching instances; if there are no matches, return an empty list (<answer>[]</answer>). '
    'double-check none are missed. Output the thinking process in <think> </think> and final answer in '
    '<answer> </answer> tags. Output the bbox(es) and point(s) inside the interested object(s), along with '
    'a short label, in JSON format. i.e., <think> thinking process (step-by-step reasoning) here </think> '
    '<answer>[{"label": "chair", "bbox_2d": [10,100,200,210], "point_2d": [30,110]}, {"label": "train track", '
    '"bbox_2d": [225,296,706,786], "point_2d": [302,410]}]</answer>'
)


def test_star_prompt_is_exact() -> None:
    assert build_prompt("What can I sit on?") == STAR_EXPECTED
    assert build_prompt("What can I sit on?", "star") == STAR_EXPECTED


def test_visionreasoner_prompt_joins_sentences_without_spaces() -> None:
    text = build_prompt('"The red cup."', "visionreasoner")
    assert text.startswith('Please find "the red cup" with bboxs and points.Compare the difference')
    assert 'JSON format.i.e., <think> thinking process here </think><answer>[{"bbox_2d"' in text
    assert '"label"' not in text


def test_segzero_prompt_and_its_own_normalisation() -> None:
    text = build_prompt("The red cup?.", "segzero")
    assert text.startswith("Please find 'the red cup?' with bbox and points.Compare")  # strips "." only
    assert text.endswith("<answer>{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}</answer>")
    assert build_prompt("x", "seg-zero") == build_prompt("x", "segzero")


def test_star_variants_differ_only_where_the_reference_does() -> None:
    base, muse, refcoco = (build_prompt("q", s) for s in ("star", "star_muse_mmr", "star_refcoco"))
    assert "if there are no matches" in base and "if there are no matches" not in muse
    assert muse.replace("Return ALL matching instances; double-check", "") != muse
    assert "Compare the difference between object(s)" in refcoco and "First, understand" not in refcoco


def test_normalize_query() -> None:
    assert normalize_query('"Where can I sit?!"') == "where can i sit"
    assert normalize_query("A.B.", "segzero") == "a.b"


def test_every_example_answer_parses_in_its_own_style() -> None:
    styles = {"star": "star", "star_muse_mmr": "star", "star_refcoco": "star",
              "visionreasoner": "visionreasoner", "segzero": "segzero"}
    for name, template in PROMPT_TEMPLATES.items():
        parsed = parse_answer(f"<think>x</think><answer>{template.answer_example}</answer>", style=styles[name])
        assert parsed.status == "ok", (name, parsed.error)
        assert template.source


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=80), st.sampled_from(STYLES))
def test_any_query_is_inserted_verbatim_after_normalisation(query, style) -> None:
    text = build_prompt(query, style)
    assert normalize_query(query, style) in text
    assert "{Question}" not in text and "{Answer}" not in text


def test_unknown_style_and_bad_query() -> None:
    with pytest.raises(InvalidInputError, match="unknown prompt style"):
        build_prompt("x", "llava")
    with pytest.raises(InvalidInputError, match="string"):
        build_prompt(None)  # type: ignore[arg-type]


def test_vlm_frame() -> None:
    assert VLM_FRAME == (840, 840)


def test_star_package_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import reasonseg_x.star, reasonseg_x.star.answer.prompts, reasonseg_x.star.answer.parser, reasonseg_x.star.answer.coords, sys; "
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'pandas') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
