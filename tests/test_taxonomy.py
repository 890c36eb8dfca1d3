"""Taxonomy files and alias resolution."""

from __future__ import annotations

import pytest

from reasonseg_x.errors import UnknownLabelError
from reasonseg_x.taxonomy import Taxonomy, available_taxonomies, load_taxonomy, query_kinds, reasoning_types, sources

RAW = ["function_purpose", "commonsense", "comparative_relational", "compositional"]


def test_reasoning_types_are_the_published_raw_strings_in_order() -> None:
    tax = reasoning_types()
    assert tax.ids == RAW
    assert [c.code for c in tax.categories] == ["P/F", "C/KI", "C/R", "C/MH"]
    assert all(c.definition for c in tax.categories)


@pytest.mark.parametrize(
    "label, expected",
    [("P/F", "function_purpose"), ("purpose / functional", "function_purpose"), ("COMMONSENSE", "commonsense"),
     ("C/KI", "commonsense"), ("Comparative / Relational", "comparative_relational"), ("c/mh", "compositional"),
     ("multi-hop", "compositional"), (" compositional ", "compositional")],
)
def test_aliases_resolve_case_insensitively(label: str, expected: str) -> None:
    assert reasoning_types().resolve(label) == expected


def test_unknown_label_lists_known_ones() -> None:
    with pytest.raises(UnknownLabelError) as info:
        reasoning_types().resolve("spatial")
    message = str(info.value)
    assert "spatial" in message and all(raw in message for raw in RAW)


def test_open_taxonomy_keeps_unknown_labels() -> None:
    tax = reasoning_types(open=True)
    assert tax.resolve("spatial") == "spatial"
    assert tax.resolve("C/R") == "comparative_relational"
    assert tax.sort_key("spatial") > tax.sort_key("compositional")
    assert tax.category("spatial").name == "spatial"


def test_empty_labels_are_unlabelled() -> None:
    assert reasoning_types().resolve(None) is None
    assert reasoning_types().resolve("  ") is None


def test_other_groupings_share_the_mechanism() -> None:
    assert query_kinds().resolve("True") == "long" and query_kinds().resolve("false") == "short"
    assert sources().resolve("MUSE_test_few") == "muse-few"
    assert sources().resolve("mmr_test_part") == "mmr-part"
    assert {"reasonseg_x", "query_kind", "source"} <= set(available_taxonomies())


def test_conflicting_aliases_are_rejected() -> None:
    with pytest.raises(ValueError, match="claimed by both"):
        Taxonomy.from_dict({"name": "x", "categories": [{"id": "a", "aliases": ["z"]}, {"id": "b", "aliases": ["Z"]}]})


def test_custom_taxonomy_file(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: colour\ncategories:\n  - {id: red, aliases: [rouge]}\n  - {id: blue}\n")
    assert load_taxonomy(str(path)).resolve("Rouge") == "red"
