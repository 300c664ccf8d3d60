"""Realistic values to draw from: names from Faker's provider tables, US places from our data file.

Faker is only read here, once per locale, as plain tuples and weight tables; the generators then
draw whole batches by index. No Faker method is ever called per value.
"""

from __future__ import annotations

import csv
import importlib
import pkgutil
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_QUANTILE_BITS = 16


@dataclass(frozen=True)
class Dictionary:
    """Values with their weights, drawn through a 65,536-entry inverse-CDF table (one gather per draw).

    The table quantizes each weight to 1/65,536, ample for names and street suffixes.
    """

    values: pa.Array
    quantiles: np.ndarray

    @classmethod
    def of(cls, source: Sequence[str] | Mapping[str, float]) -> Dictionary:
        if isinstance(source, Mapping):
            names, weights = list(source), np.array(list(source.values()), dtype=np.float64)
        else:
            names, weights = list(source), np.ones(len(source), dtype=np.float64)
        cumulative = np.cumsum(weights) / weights.sum()
        steps = (np.arange(1 << _QUANTILE_BITS) + 0.5) / (1 << _QUANTILE_BITS)
        quantiles = np.minimum(np.searchsorted(cumulative, steps, side="right"), len(names) - 1)
        return cls(pa.array(names, pa.string()), quantiles.astype(np.int64))

    def draw(self, hashes: np.ndarray) -> np.ndarray:
        """An index per hash, following the weights."""
        return self.quantiles[hashes >> np.uint64(64 - _QUANTILE_BITS)]


def email_safe(values: pa.Array) -> pa.Array:
    """Lower-case ASCII letters only ("O'Brien" -> "obrien", "Zoé" -> "zoe"), computed per dictionary."""
    cleaned = []
    for value in values.to_pylist():
        ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
        cleaned.append("".join(ch for ch in ascii_text.lower() if ch.isalnum()) or "user")
    return pa.array(cleaned, pa.string())


@dataclass(frozen=True)
class Gendered:
    """Male and female dictionaries side by side: one index space, male values first."""

    male: Dictionary
    female: Dictionary
    values: pa.Array
    quantiles: np.ndarray  # the male table, then the female one shifted past the male values

    @classmethod
    def of(cls, male: Sequence[str] | Mapping[str, float], female: Sequence[str] | Mapping[str, float]) -> Gendered:
        male_dictionary, female_dictionary = Dictionary.of(male), Dictionary.of(female)
        return cls(
            male_dictionary,
            female_dictionary,
            pa.concat_arrays([male_dictionary.values, female_dictionary.values]),
            np.concatenate([male_dictionary.quantiles, female_dictionary.quantiles + len(male_dictionary.values)]),
        )

    def draw(self, hashes: np.ndarray, female: np.ndarray) -> np.ndarray:
        """An index per hash into ``values``, from the female or the male weights: one gather."""
        quantile = (hashes >> np.uint64(64 - _QUANTILE_BITS)).astype(np.int64)
        return self.quantiles[(female.astype(np.int64) << _QUANTILE_BITS) | quantile]


EMAIL_STYLES = 4  # first.last, firstlast, first_last, flast


@dataclass(frozen=True)
class Names:
    first: Gendered
    last: Dictionary
    email_prefixes: pa.Array  # per style, every first name as it starts an email: "jane.", "jane", "jane_", "j"
    last_email: pa.Array  # email-safe spelling of last.values
    titles: Gendered


def _email_prefixes(first_email: pa.Array) -> pa.Array:
    spellings = first_email.to_pylist()
    return pa.array(
        [f"{name}." for name in spellings] + spellings + [f"{name}_" for name in spellings] + [n[0] for n in spellings],
        pa.string(),
    )


def _person_locales() -> list[str]:
    import faker.providers.person as person

    return sorted(module.name for module in pkgutil.iter_modules(person.__path__))


def resolve_locale(locale: str) -> str | None:
    """Faker's module for a TDK-style locale ("en" -> "en_US", "fr" -> "fr_FR"), or None."""
    known = _person_locales()
    wanted = locale.replace("-", "_")
    if wanted in known:
        return wanted
    preferred = f"{wanted}_{wanted.upper()}"
    if preferred in known:
        return preferred
    if wanted == "en":
        return "en_US"
    candidates = [name for name in known if name.startswith(wanted + "_")]
    return candidates[0] if candidates else None


@cache
def names(locale: str) -> Names:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    first = Gendered.of(
        getattr(provider, "first_names_male", None) or provider.first_names,
        getattr(provider, "first_names_female", None) or provider.first_names,
    )
    last = Dictionary.of(provider.last_names)
    return Names(
        first=first,
        last=last,
        email_prefixes=_email_prefixes(email_safe(first.values)),
        last_email=email_safe(last.values),
        titles=Gendered.of(
            getattr(provider, "prefixes_male", None) or ("Mr.",),
            getattr(provider, "prefixes_female", None) or ("Ms.",),
        ),
    )


@dataclass(frozen=True)
class Places:
    cities: pa.Array
    city_states: np.ndarray  # index into states per city
    states: pa.Array
    state_abbrs: pa.Array
    postcode_low: np.ndarray  # per state
    postcode_high: np.ndarray
    street_suffixes: Dictionary


@cache
def us_places() -> Places:
    from faker.providers.address.en_US import Provider as Address

    abbreviations = [abbr for abbr in Address.states_abbr if abbr != "DC"]
    state_names = dict(zip(abbreviations, Address.states, strict=True)) | {"DC": "District of Columbia"}
    with resources.files("governor.engine").joinpath("data", "us_cities.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    used = sorted({row["state_abbr"] for row in rows})
    position = {abbr: index for index, abbr in enumerate(used)}
    return Places(
        cities=pa.array([row["city"] for row in rows], pa.string()),
        city_states=np.array([position[row["state_abbr"]] for row in rows], dtype=np.int64),
        states=pa.array([state_names[abbr] for abbr in used], pa.string()),
        state_abbrs=pa.array(used, pa.string()),
        postcode_low=np.array([Address.states_postcode[abbr][0] for abbr in used], dtype=np.int64),
        postcode_high=np.array([Address.states_postcode[abbr][1] for abbr in used], dtype=np.int64),
        street_suffixes=Dictionary.of(Address.street_suffixes),
    )


def take(values: pa.Array, indices: np.ndarray) -> pa.Array:
    return pc.take(values, pa.array(indices, pa.int64()))
