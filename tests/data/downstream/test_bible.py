"""The bundled verse-aligned Bibles and the three tasks built from them."""

from t5lab.data.downstream import bible
from t5lab.data.downstream.splits import SPLITS, split_of


def test_records_are_clean_and_mostly_aligned():
    records = bible.bible_records()
    assert len({r["ref"] for r in records}) == len(records) > 31_000
    for r in records:
        for side in ("kjv", "rv1909", "web"):
            text = r[side]
            assert "<" not in text and ">" not in text and "\N{PILCROW SIGN}" not in text
            assert text == text.strip() and "  " not in text
    # A footnote replaced by nothing would glue words ("Godcreated"); by a space it does not.
    genesis = next(r for r in records if r["ref"] == "Gen.1.1")
    assert genesis["web"] == "In the beginning, God created the heavens and the earth."
    assert sum(bool(r["rv1909"]) for r in records) > 0.95 * len(records)
    assert sum(bool(r["web"]) for r in records) > 0.99 * len(records)


def test_a_verse_is_in_the_same_split_for_every_task():
    for build in (bible.translation_examples, bible.modernize_examples, bible.paraphrase_examples):
        examples = build()
        seen = set()
        for split in SPLITS:
            ids = {e["id"] for e in examples[split]}
            assert all(split_of(ref) == split for ref in ids)
            assert not ids & seen
            seen |= ids


def test_paraphrase_is_balanced_and_negatives_come_from_the_same_split():
    web = {r["ref"]: r["web"] for r in bible.bible_records()}
    examples = bible.paraphrase_examples()
    for split in SPLITS:
        split_web = {web[e["id"]] for e in examples[split]}
        labels = [e["targets"] for e in examples[split]]
        share = labels.count("equivalent") / len(labels)
        # Labels come from a hash (no seed): about 3,100 val/test examples give sd 0.009.
        assert abs(share - 0.5) < 0.03, (split, share)
        assert set(labels) == set(bible.PARAPHRASE_LABELS)
        for e in examples[split]:
            sentence2 = e["inputs"].split(" sentence2: ", 1)[1]
            assert (sentence2 == web[e["id"]]) == (e["targets"] == "equivalent")
            assert sentence2 in split_web  # no text of another split leaks in
