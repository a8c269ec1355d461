"""Derive the user-facing categories of the 1000 ImageNet classes from WordNet 3.0, once.

``make categories`` runs it (after installing Debian's ``wordnet-base``, which ships WordNet 3.0
under /usr/share/wordnet). Each ImageNet class is a WordNet 3.0 noun synset: its wnid
``n02123045`` is the synset at byte offset 02123045 of ``data.noun``. The script parses
``data.noun`` itself (no nltk, no download), follows every hypernym pointer (``@`` and the
instance hypernyms ``@i``) from each class up to ``entity``, and puts a class into a category when
one of the category's synsets is on that chain and none of its excluded synsets is. It writes
``categories.json``: the categories in order, each with its synsets and its member class ids,
where the data came from, and WordNet's licence, which must travel with it.

Nothing at run time reads WordNet: the service loads the committed ``categories.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORDNET = Path("/usr/share/wordnet/data.noun")
OUT = HERE / "categories.json"


@dataclass(frozen=True)
class Category:
    """A name people use, the WordNet synsets it stands for, and the synsets it leaves out.

    Synsets are written ``offset:lemma``; the lemma is checked against the database, so a typo in
    an offset cannot silently pick another concept.
    """

    name: str
    synsets: tuple[str, ...]
    excluded: tuple[str, ...] = ()


# Broad first, then narrower; a class may be in several (a tabby is an animal, a mammal, a cat).
CATEGORIES = (
    Category("animal", ("00015388:animal",)),
    Category("mammal", ("01861778:mammal",)),
    Category("dog", ("02084071:dog",)),
    Category("cat", ("02121620:cat",)),  # true cats: domestic cats, lynx, cougar
    Category("big cat", ("02127808:big_cat",)),
    Category("primate", ("02469914:primate",)),
    Category("hoofed animal", ("02370806:ungulate",)),
    Category("bird", ("01503061:bird",)),
    Category("fish", ("02512053:fish",)),
    Category("reptile", ("01661091:reptile",)),
    Category("amphibian", ("01627424:amphibian",)),
    Category("insect", ("02159955:insect",)),
    Category("arachnid", ("01769347:arachnid",)),
    Category("vehicle", ("04524313:vehicle",)),
    Category("car", ("02958343:car",)),
    Category("aircraft", ("02686568:aircraft",)),
    Category("boat", ("04530566:vessel",)),
    # Food as people mean it: no drinks (a category of their own) and no fodder (hay).
    Category(
        "food",
        ("00021265:food", "07555863:food"),
        excluded=("07881800:beverage", "07800091:feed"),
    ),
    Category("beverage", ("07881800:beverage",)),
    Category("fruit", ("07705931:edible_fruit",)),
    Category("vegetable", ("07707451:vegetable",)),
    Category("furniture", ("03405725:furniture",)),
    Category("home appliance", ("03528263:home_appliance",)),
    Category(
        "electronics",
        ("03278248:electronic_equipment", "03082979:computer"),
        excluded=("02708224:analog_computer",),  # the slide rule
    ),
    Category("clothing", ("03051540:clothing", "03380867:footwear")),
    Category("tool", ("04451818:tool",)),
    Category("musical instrument", ("03800933:musical_instrument",)),
    Category("sports equipment", ("04285146:sports_equipment", "02778669:ball")),
    Category("weapon", ("04565375:weapon",)),
    Category("building", ("02913152:building",)),
    Category("landscape", ("09287968:geological_formation",)),
    Category("fungus", ("12992868:fungus",)),
    Category("person", ("00007846:person",)),
)


@dataclass(frozen=True)
class Synset:
    """One noun synset: its words and the offsets of its hypernyms."""

    words: tuple[str, ...]
    hypernyms: tuple[str, ...]


def read_nouns(path: Path) -> tuple[dict[str, Synset], str]:
    """Every noun synset of ``data.noun`` by offset, and the licence from its header.

    A data line is ``offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt
    [ptr_symbol offset pos source/target...] [frames] | gloss`` (wndb(5WN)); ``w_cnt`` is
    hexadecimal, ``p_cnt`` decimal. Header lines start with two spaces and a line number.
    """
    synsets: dict[str, Synset] = {}
    licence: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):
                licence.append(
                    line.strip().split(" ", 1)[1].rstrip() if " " in line.strip() else ""
                )
                continue
            fields = line.split(" | ", 1)[0].split()
            count = int(fields[3], 16)
            words = tuple(fields[4 + 2 * i] for i in range(count))
            at = 4 + 2 * count
            pointers = int(fields[at])
            hypernyms = []
            for i in range(pointers):
                symbol, offset, pos = fields[at + 1 + 4 * i : at + 4 + 4 * i]
                if symbol in ("@", "@i") and pos == "n":
                    hypernyms.append(offset)
            synsets[fields[0]] = Synset(words, tuple(hypernyms))
    return synsets, "\n".join(licence).strip()


def chain(synsets: dict[str, Synset], offset: str) -> set[str]:
    """The synset and every synset above it (all paths: WordNet allows several hypernyms)."""
    seen = {offset}
    todo = [offset]
    while todo:
        for parent in synsets[todo.pop()].hypernyms:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _offset(synsets: dict[str, Synset], ref: str) -> str:
    offset, lemma = ref.split(":")
    words = [w.lower() for w in synsets[offset].words]
    if lemma.lower() not in words:
        raise SystemExit(f"{ref}: synset {offset} is {synsets[offset].words}, not {lemma!r}")
    return offset


def members(
    category: Category, chains: dict[int, set[str]], synsets: dict[str, Synset]
) -> list[int]:
    """The class ids whose chain reaches one of the category's synsets and none it excludes."""
    wanted = {_offset(synsets, ref) for ref in category.synsets}
    unwanted = {_offset(synsets, ref) for ref in category.excluded}
    return sorted(c for c, up in chains.items() if up & wanted and not up & unwanted)


def _package_version() -> str | None:
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "wordnet-base"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def build(wordnet: Path) -> dict[str, object]:
    """The document ``categories.json`` holds."""
    synsets, licence = read_nouns(wordnet)
    labels = json.loads((HERE / "labels.json").read_text())
    chains = {entry["class_id"]: chain(synsets, entry["wnid"][1:]) for entry in labels}
    version = _package_version()
    return {
        "source": {
            "wordnet": "WordNet 3.0, Princeton University",
            "file": wordnet.name,
            "sha256": hashlib.sha256(wordnet.read_bytes()).hexdigest(),
            "package": f"Debian wordnet-base {version}" if version else "Debian wordnet-base",
            "generated_by": "model/categories.py",
            "rule": "a class is in a category when one of the category's synsets is on its "
            "hypernym chain (@ and @i pointers up to entity) and none of its excluded ones is",
        },
        "licence": licence,
        "categories": [
            {
                "name": category.name,
                "synsets": ["n" + ref for ref in category.synsets],
                "excluded": ["n" + ref for ref in category.excluded],
                "class_ids": members(category, chains, synsets),
            }
            for category in CATEGORIES
        ],
    }


def render(document: dict[str, object]) -> str:
    """The JSON text: one category a line, so a diff shows which category changed."""
    categories = document["categories"]
    assert isinstance(categories, list)
    head = {k: v for k, v in document.items() if k != "categories"}
    body = ",\n".join("    " + json.dumps(c, separators=(", ", ": ")) for c in categories)
    text = json.dumps(head, indent=2)[:-2]
    return f'{text},\n  "categories": [\n{body}\n  ]\n}}\n'


def main(argv: list[str] | None = None) -> int:
    """Write ``categories.json`` (or, with ``--check``, say whether it is up to date)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wordnet", type=Path, default=WORDNET, help="WordNet 3.0 data.noun")
    parser.add_argument("--check", action="store_true", help="compare with the committed file")
    parser.add_argument("--show", metavar="CLASS_ID", type=int, nargs="*", default=[],
                        help="print these classes' hypernym chains")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.wordnet.exists():
        print(
            f"{args.wordnet} is missing: `make categories` installs wordnet-base", file=sys.stderr
        )
        return 2
    document = build(args.wordnet)
    text = render(document)
    if args.show:
        synsets, _ = read_nouns(args.wordnet)
        labels = json.loads((HERE / "labels.json").read_text())
        for class_id in args.show:
            offset: str | None = labels[class_id]["wnid"][1:]
            path = []
            while offset:  # the first hypernym at each step, up to entity
                path.append(synsets[offset].words[0])
                offset = next(iter(synsets[offset].hypernyms), None)
            print(f"{class_id} {labels[class_id]['label']}: {' → '.join(path)}")
    if args.check:
        same = OUT.exists() and OUT.read_text() == text
        print(f"{OUT.name} is {'up to date' if same else 'out of date'}")
        return 0 if same else 1
    OUT.write_text(text)
    for category in document["categories"]:  # type: ignore[attr-defined]
        print(f"{category['name']:>20}: {len(category['class_ids'])} classes")
    print(f"wrote {OUT} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
