"""scripts/prepare_downstream.py: markup cleaning and alignment checks on small OSIS snippets."""

import importlib.util

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location(
    "prepare_downstream", REPO / "scripts" / "prepare_downstream.py"
)
prepare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prepare)


def test_a_footnote_becomes_a_space_not_glue():
    raw = (
        '<w lemma="strong:H0430">God</w><note placement="foot"><reference type="annotateRef">'
        "1:1 </reference>The Hebrew word.</note><w>created</w> the earth. "
    )
    assert prepare.clean_osis(raw) == "God created the earth."


def test_reina_valera_added_words_stay_separate_but_suffixes_stay_attached():
    raw = (
        '<w lemma="x">hay allí</w><transChange type="added">también</transChange><w>bdelio</w>, '
        "preguntándo<transChange>le</transChange>."
    )
    assert prepare.clean_osis(raw) == "hay allí también bdelio, preguntándole."


def test_speakers_paragraph_marks_and_milestones_are_dropped():
    raw = '<speaker>Beloved</speaker> <l level="1" sID="a"/>¶ Let him kiss me<l eID="a"/> ;'
    assert prepare.clean_osis(raw) == "Let him kiss me;"


def test_entities_quotes_and_whitespace_are_normalised():
    assert prepare.normalize_text("AT&amp;amp;T \u201csaid\u201d it\u2019s\r\n ok") == (
        'AT&T "said" it\'s ok'
    )


def test_a_shifted_chapter_is_left_out_of_the_translation_pairs():
    # Like Jonah 1:17 = RV 2:1: the last verse of chapter 1 opens chapter 2 on the other side,
    # which shifts chapter 2 by one verse. Chapters 1 and 2 go; chapter 3 stays.
    english = {
        f"B.{c}.{v}": " ".join(["w"] * (2 + (5 * c + 3 * v) % 7))
        for c in (1, 2, 3)
        for v in (1, 2, 3, 4)
    }
    moved = {"B.1.4": None, "B.2.1": "B.1.4", "B.2.2": "B.2.1", "B.2.3": "B.2.2", "B.2.4": "B.2.3"}
    spanish = {}
    for ref in english:
        source = moved.get(ref, ref)
        spanish[ref] = english[source] if source else ""
    misaligned = prepare.misaligned_rv1909(english, spanish)
    assert {ref.rsplit(".", 1)[0] for ref in misaligned} == {"B.1", "B.2"}
