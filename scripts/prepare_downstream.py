"""Build t5lab/assets/downstream/{vader,bible}.jsonl.gz from the package registries.

Usage (from the repo root, as root for apt):
    cd /tmp && pip download --no-deps --no-binary :all: vadersentiment==3.3.2 && cd -
    apt-get install -y sword-text-kjv sword-text-sparv sword-text-web
    pip install pysword==0.2.8          # MIT; only this script needs it
    .venv/bin/python scripts/prepare_downstream.py --vader_sdist /tmp/vaderSentiment-3.3.2.tar.gz

Reading the three Bibles with pysword takes a few minutes. The output is byte-for-byte
deterministic (records in a fixed order, keys sorted, gzip mtime 0). See
t5lab/assets/downstream/README.md for what the files hold and their licences.
"""

import argparse
import html
import io
import re
import sys
import tarfile
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

from t5lab.assets import write_jsonl_gz

DEFAULT_OUT_DIR = Path(__file__).resolve().parents[1] / "t5lab" / "assets" / "downstream"

# VADER ground truth: <id> TAB <mean of 20 human ratings, -4..+4> TAB <text>.
VADER_FILES = {
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "tweet": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "editorial": "nytEditorialSnippets_GroundTruth.txt",
}
VADER_INNER_TARBALL = "additional_resources/hutto_ICWSM_2014.tar.gz"

BIBLE_MODULES = {"kjv": "engKJV2006eb", "rv1909": "spaRV1909eb", "web": "engWEB2015eb"}
# Verse pairs are kept only if their word counts are within this ratio (+2 words): where the
# texts number verses differently (Romans 16:25-27), a pair would teach a model to invent or
# drop a sentence.
MAX_WORD_RATIO = 2.0

_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z]+);")
# OSIS elements whose content is not verse text: footnotes (with their cross references and
# alternate readings), speaker labels in the Song of Songs, a module's own title page.
_DROP_WITH_CONTENT = re.compile(
    r"<note\b.*?</note>|<speaker\b.*?</speaker>|<title\b[^>]*type=\"main\"[^>]*>.*?</title>",
    re.DOTALL,
)
# In the Reina-Valera, words supplied by the translators (<transChange>) abut the neighbouring
# <w> elements without a space between two words: "allí</w><transChange>también".
_WORD_BOUNDARY = re.compile(r"</w>(?=<transChange\b)|</transChange>(?=<w\b)")
# Elements that separate text (lines, paragraphs, headings); all other tags are inline.
_BLOCK_TAG = re.compile(r"</?(?:l|lb|lg|div|p|chapter|item|list|title|milestone)\b[^>]*>")
_ANY_TAG = re.compile(r"<[^>]*>")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")


# Typographic quotes become ASCII ones: the default vocabulary of the time (English SOTU text
# only, no byte fallback) had no pieces for most of them, and a target with an unknown piece
# cannot be generated exactly. Kept, so the files stay byte-for-byte what they were.
_ASCII_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def normalize_text(text: str) -> str:
    """NFC, entities decoded, ASCII quotes, no control characters, single spaces."""
    text = unicodedata.normalize("NFC", text).translate(_ASCII_QUOTES)
    for _ in range(3):  # some snippets were escaped twice: "&amp;amp;", "&amp;#38;"
        text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    kept = (" " if ch.isspace() else ch for ch in text)
    text = "".join(ch for ch in kept if unicodedata.category(ch) not in ("Cc", "Cf"))
    return " ".join(text.split())


def read_vader(sdist: Path) -> list[dict]:
    """VADER's four ground-truth files as records {id, source, score, text}, in file order."""
    with tarfile.open(sdist, "r:gz") as outer:
        inner_member = next(m for m in outer.getmembers() if m.name.endswith(VADER_INNER_TARBALL))
        inner_bytes = outer.extractfile(inner_member).read()
    records = []
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        members = {Path(m.name).name: m for m in inner.getmembers() if m.isfile()}
        for source, filename in VADER_FILES.items():
            raw = inner.extractfile(members[filename]).read().decode("utf-8")
            for line in raw.splitlines():
                if not line.strip():
                    continue
                original_id, score, text = line.split("\t", 2)
                text = normalize_text(text)
                if text:
                    records.append(
                        {
                            "id": f"{source}:{original_id.strip()}",
                            "source": source,
                            "score": float(score),
                            "text": text,
                        }
                    )
    return records


def clean_osis(raw: str) -> str:
    """The readable text of one OSIS verse: markup and footnotes gone, words kept apart."""
    text = _DROP_WITH_CONTENT.sub(" ", raw)
    text = _WORD_BOUNDARY.sub(" ", text)
    text = _BLOCK_TAG.sub(" ", text)
    text = _ANY_TAG.sub("", text)
    text = normalize_text(text.replace("\N{PILCROW SIGN}", " "))
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def read_sword_bible(sword_dir: Path, module: str) -> dict[str, str]:
    """{"Gen.1.1": raw OSIS text, ...} of one module, in its own versification and order."""
    try:
        from pysword.modules import SwordModules
    except ImportError:
        raise SystemExit("error: pysword is missing; run `pip install pysword==0.2.8`") from None
    modules = SwordModules(str(sword_dir))
    found = modules.parse_modules()
    if module not in found:
        raise SystemExit(
            f"error: SWORD module {module} not found under {sword_dir}; run "
            "`apt-get install -y sword-text-kjv sword-text-sparv sword-text-web`"
        )
    bible = modules.get_bible_from_module(module)
    verses = {}
    for books in bible.get_structure().get_books().values():
        for book in books:
            for chapter, length in enumerate(book.chapter_lengths, start=1):
                texts = list(bible.get_iter(books=[book.name], chapters=[chapter], clean=False))
                if len(texts) != length:
                    raise SystemExit(f"error: {module} {book.osis_name} {chapter}: verse count")
                for verse, text in enumerate(texts, start=1):
                    verses[f"{book.osis_name}.{chapter}.{verse}"] = text
    return verses


def _chapter(ref: str) -> str:
    return ref.rsplit(".", 1)[0]


def _book(ref: str) -> str:
    return ref.split(".", 1)[0]


def misaligned_rv1909(kjv: dict[str, str], rv1909: dict[str, str]) -> set[str]:
    """References whose Reina-Valera slot does not hold the translation of the KJV verse.

    The module stores the RV1909 in KJV slots, but in a few dozen places it follows the Hebrew
    chapter division (Jonah 1:17 is its 2:1) or merges verses, which shifts the rest of the
    chapter. Signs of that: an empty slot (its chapter and the next are dropped), or a run of
    verses whose lengths fit a neighbouring KJV verse better than their own (Gale & Church's
    length cue over a 5-verse window; 2+ such verses drop the chapter, 1 drops the verse).
    """
    refs = list(kjv)
    en = np.array([max(len(kjv[r]), 1) for r in refs], dtype=np.float64)
    es = np.array([max(len(rv1909.get(r, "")), 1) for r in refs], dtype=np.float64)
    typical = np.median(np.log(es / en))

    def window_mismatch(offset: int) -> np.ndarray:
        deviation = np.abs(np.log(np.roll(es, -offset) / en) - typical)
        return np.convolve(deviation, np.ones(5) / 5, mode="same")

    own = window_mismatch(0)
    best_other = np.min([window_mismatch(d) for d in (-3, -2, -1, 1, 2, 3)], axis=0)
    flagged = [refs[i] for i in np.flatnonzero((own > 0.25) & (best_other < 0.6 * own))]

    bad_chapters = {c for c, n in Counter(_chapter(r) for r in flagged).items() if n >= 2}
    chapters = list(dict.fromkeys(_chapter(r) for r in refs))
    for i, chapter in enumerate(chapters):
        if any(not rv1909.get(r) for r in refs if _chapter(r) == chapter):
            bad_chapters.add(chapter)
            if i + 1 < len(chapters) and _book(chapters[i + 1]) == _book(chapter):
                bad_chapters.add(chapters[i + 1])
    return {r for r in refs if _chapter(r) in bad_chapters} | set(flagged)


def _lengths_disagree(a: str, b: str) -> bool:
    words_a, words_b = len(a.split()), len(b.split())
    return max(words_a, words_b) > MAX_WORD_RATIO * min(words_a, words_b) + 2


def align_bibles(raw: dict[str, dict[str, str]]) -> tuple[list[dict], dict[str, int]]:
    """One record per KJV verse: {ref, kjv, rv1909, web}; a side left out is "".

    KJV and Reina-Valera 1909 share the KJV versification (same slots) except where
    `misaligned_rv1909` says otherwise. WEB follows NRSVA; it is paired by reference, and left
    out where the lengths disagree too much (verses numbered differently, the appendix).
    """
    cleaned = {side: {ref: clean_osis(text) for ref, text in raw[side].items()} for side in raw}
    kjv = cleaned["kjv"]
    dropped_rv = misaligned_rv1909(kjv, cleaned["rv1909"])
    counts = Counter()
    records = []
    for ref, kjv_text in kjv.items():
        if not kjv_text:
            counts["kjv_empty"] += 1
            continue
        record = {"ref": ref, "kjv": kjv_text}
        for side in ("rv1909", "web"):
            text = cleaned[side].get(ref, "")
            if not text:
                counts[f"{side}_empty"] += 1
            elif (side == "rv1909" and ref in dropped_rv) or _lengths_disagree(kjv_text, text):
                counts[f"{side}_misaligned"] += 1
                text = ""
            record[side] = text
        records.append(record)
    return records, dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--vader_sdist", type=Path, default=Path("/tmp/vaderSentiment-3.3.2.tar.gz")
    )
    parser.add_argument("--sword_dir", type=Path, default=Path("/usr/share/sword"))
    parser.add_argument("--out_dir", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument("--only", choices=("vader", "bible"), default=None)
    args = parser.parse_args(argv)

    if args.only in (None, "vader"):
        if not args.vader_sdist.is_file():
            print(
                f"error: {args.vader_sdist} not found; run `cd /tmp && pip download --no-deps "
                "--no-binary :all: vadersentiment==3.3.2`",
                file=sys.stderr,
            )
            return 1
        vader = read_vader(args.vader_sdist)
        out = args.out_dir / "vader.jsonl.gz"
        write_jsonl_gz(vader, out)
        print(f"vader: {len(vader)} snippets, {out.stat().st_size} bytes -> {out}")

    if args.only in (None, "bible"):
        raw = {side: read_sword_bible(args.sword_dir, m) for side, m in BIBLE_MODULES.items()}
        bible, counts = align_bibles(raw)
        out = args.out_dir / "bible.jsonl.gz"
        write_jsonl_gz(bible, out)
        print(f"bible: {len(bible)} KJV verses {counts}, {out.stat().st_size} bytes -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
