"""Verse-aligned public-domain Bibles as translation, style transfer and paraphrase tasks.

Each record is one King James verse with the same verse in the Reina-Valera 1909 (Spanish) and
the World English Bible (modern English); a side that could not be aligned is "". Splits hash
the reference ("John.3.16"), so a verse is in the same split for every task built from it.
"""

from t5lab.data.downstream.assets import read_records
from t5lab.data.downstream.source import Example
from t5lab.data.downstream.splits import SPLITS, hash_fraction, split_of

BIBLE_FILE = "bible.jsonl.gz"
# T5's MRPC labels, but with a space: in the default vocabulary "not equivalent" is two pieces,
# "▁not" and the positive label's "▁equivalent", where "not_equivalent" takes seven fragments.
PARAPHRASE_LABELS = ("not equivalent", "equivalent")
# A negative pairs a KJV verse with the WEB text of one of the next few verses of the same
# split: mostly the same chapter, so the topic matches and only the meaning tells them apart.
_NEGATIVE_MAX_OFFSET = 4


def bible_records() -> tuple[dict, ...]:
    """All KJV verses in canonical order: {"ref": "Gen.1.1", "kjv", "rv1909", "web"}."""
    return read_records(BIBLE_FILE)


def _pairs_by_split(side: str) -> dict[str, list[dict]]:
    splits: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for record in bible_records():
        if record[side]:
            splits[split_of(record["ref"])].append(record)
    return splits


def translation_examples() -> dict[str, list[Example]]:
    """'translate English to Spanish: <KJV>' -> Reina-Valera 1909."""
    return {
        split: [
            {
                "id": r["ref"],
                "inputs": f"translate English to Spanish: {r['kjv']}",
                "targets": r["rv1909"],
            }
            for r in records
        ]
        for split, records in _pairs_by_split("rv1909").items()
    }


def modernize_examples() -> dict[str, list[Example]]:
    """'modernize: <KJV>' -> World English Bible."""
    return {
        split: [
            {"id": r["ref"], "inputs": f"modernize: {r['kjv']}", "targets": r["web"]}
            for r in records
        ]
        for split, records in _pairs_by_split("web").items()
    }


def paraphrase_examples() -> dict[str, list[Example]]:
    """MRPC-style: 'paraphrase sentence1: <KJV> sentence2: <WEB>' -> '[not ]equivalent'.

    Half the verses (chosen by hash) get their own WEB text, the others a nearby verse's.
    """
    examples = {}
    for split, records in _pairs_by_split("web").items():
        examples[split] = []
        for i, record in enumerate(records):
            ref = record["ref"]
            partner = record
            if hash_fraction(f"paraphrase:{ref}") >= 0.5 and len(records) > 1:
                offset = 1 + int(hash_fraction(f"partner:{ref}") * _NEGATIVE_MAX_OFFSET)
                partner = records[(i + offset) % len(records)]
                if partner["web"] == record["web"]:  # a repeated verse is no negative
                    partner = record
            examples[split].append(
                {
                    "id": ref,
                    "inputs": f"paraphrase sentence1: {record['kjv']} sentence2: {partner['web']}",
                    "targets": PARAPHRASE_LABELS[partner is record],
                }
            )
    return examples
