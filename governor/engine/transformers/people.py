"""``person_generator`` and ``address_generator``: one coherent fake person or address per row.

The templates (TDK's ``column_templates``) are filled by ``templates.TemplateGenerator``. Names,
cities and the other parts are drawn by index from dictionaries built once per process
(``reference_data``), and strings are assembled from those dictionaries with a few Arrow kernels
per batch, never per value.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from governor.engine.hashing import below, derive
from governor.engine.transformers import register
from governor.engine.transformers.arrays import TOKEN_LENGTH, base32_tokens, digit_strings, join, strings_from_matrix
from governor.engine.transformers.base import TransformContext
from governor.engine.transformers.reference_data import (
    EMAIL_STYLES,
    names,
    resolve_locale,
    take,
    us_places,
)
from governor.engine.transformers.templates import TemplateGenerator, template_checker

PERSON_VARIABLES = (
    "first_name",
    "last_name",
    "full_name",
    "title",
    "gender",
    "email",
    "username",
    "phone_national",
    "phone_international",
)
ADDRESS_VARIABLES = (
    "house_number",
    "flat_number",
    "street_name",
    "street_address",
    "city",
    "state",
    "state_abbr",
    "postcode",
    "country",
    "country_code",
    "full_address",
)


def _known_locale(locale: str) -> str:
    resolved = resolve_locale(locale)
    if resolved is None:
        raise ValueError(f"unknown locale {locale!r}")
    return locale


class PersonParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    column_templates: list[Annotated[str, AfterValidator(template_checker(PERSON_VARIABLES))]] = Field(min_length=1)
    locale: str = "en_US"

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return _known_locale(value)


_EMAIL_DOMAINS = pa.array(["@example.com", "@example.org", "@example.net"])
_NUMBERS = pa.array([""] + [str(number) for number in range(100)])  # index 0: no number


def _tokens(hashes: np.ndarray) -> pa.Array:
    """``.`` and the whole 64-bit hash in base 32: what keeps unique emails and usernames unique."""
    matrix = np.empty((len(hashes), TOKEN_LENGTH + 1), dtype=np.uint8)
    matrix[:, 0] = ord(".")
    matrix[:, 1:] = base32_tokens(hashes)
    return strings_from_matrix(matrix)


@register
class PersonGenerator(TemplateGenerator):
    """Names, title, gender, email, username and phone numbers of one fake person per row.

    Emails and usernames are built from the same row's names (``jane.doe42@example.org``), on the
    reserved example domains so that test data never mails a real person. When a column whose
    template has ``${email}`` or ``${username}`` is unique, the local part ends with the row's whole
    64-bit hash (``jane.doe.0k3j9x0a2m1b7@example.org``), so that distinct rows collide no more
    often than ``unique_hashing``'s tokens do. Phone numbers follow the North American numbering plan.
    """

    name = "person_generator"
    Params = PersonParams
    salt = "person_generator"
    depends: ClassVar[dict[str, set[str]]] = {"full_name": {"first_name", "last_name"}}

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        self.names = names(resolve_locale(params.locale) or "en_US")  # type: ignore[attr-defined]
        self.unique_local = self.uses_in_unique_column({"email", "username"})

    def variables(self, hashes: np.ndarray) -> dict[str, pa.Array]:
        tables, needed = self.names, self.needed
        female = below(derive(hashes, 1), 2).astype(bool)
        first_index = tables.first.draw(derive(hashes, 2), female)
        last_index = tables.last.draw(derive(hashes, 3))
        out: dict[str, pa.Array] = {}
        if "first_name" in needed:
            out["first_name"] = take(tables.first.values, first_index)
        if "last_name" in needed:
            out["last_name"] = take(tables.last.values, last_index)
        if "full_name" in needed:
            out["full_name"] = join(out["first_name"], " ", out["last_name"])
        if "title" in needed:
            out["title"] = take(tables.titles.values, tables.titles.draw(derive(hashes, 4), female))
        if "gender" in needed:
            out["gender"] = take(pa.array(["M", "F"]), female.astype(np.int64))
        if needed & {"email", "username"}:
            style = below(derive(hashes, 5), EMAIL_STYLES)
            parts = [
                take(tables.email_prefixes, style * len(tables.first.values) + first_index),
                take(tables.last_email, last_index),
            ]
            if self.unique_local:
                parts.append(_tokens(hashes))
            else:
                shown = below(derive(hashes, 7), 3) == 0
                parts.append(take(_NUMBERS, np.where(shown, 1 + below(derive(hashes, 6), 100), 0)))
            if "username" in needed:
                out["username"] = join(*parts)
                parts = [out["username"]]
            if "email" in needed:
                out["email"] = join(*parts, take(_EMAIL_DOMAINS, below(derive(hashes, 8), len(_EMAIL_DOMAINS))))
        if "phone_national" in needed:
            out["phone_national"] = digit_strings(hashes, "(N##) N##-####", 100)
        if "phone_international" in needed:
            out["phone_international"] = digit_strings(hashes, "+1 N##-N##-####", 100)
        return out


class AddressParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    column_templates: list[Annotated[str, AfterValidator(template_checker(ADDRESS_VARIABLES))]] = Field(min_length=1)
    locale: Literal["en_US", "en"] = "en_US"


_HOUSE_NUMBERS = pa.array([str(number) for number in range(1, 10_000)])  # flat numbers are the first 999


def _postcodes(codes: np.ndarray) -> pa.Array:
    """Five-digit, zero-padded postcodes straight from the integers."""
    matrix = np.empty((len(codes), 5), dtype=np.uint8)
    for position in range(4, -1, -1):
        matrix[:, position] = codes % 10 + ord("0")
        codes = codes // 10
    return strings_from_matrix(matrix)


@register
class AddressGenerator(TemplateGenerator):
    """A fake US address per row whose city, state and postcode belong together."""

    name = "address_generator"
    Params = AddressParams
    salt = "address_generator"
    depends: ClassVar[dict[str, set[str]]] = {
        "street_address": {"house_number", "street_name"},
        "full_address": {"street_address", "city", "state_abbr", "postcode"},
    }

    def variables(self, hashes: np.ndarray) -> dict[str, pa.Array]:
        places, needed, n = us_places(), self.needed, len(hashes)
        surnames = names("en_US").last
        city_index = below(derive(hashes, 1), len(places.cities))
        state_index = places.city_states[city_index]
        out: dict[str, pa.Array] = {}
        if "house_number" in needed:
            out["house_number"] = take(_HOUSE_NUMBERS, below(derive(hashes, 5), 9999))
        if "flat_number" in needed:
            out["flat_number"] = take(_HOUSE_NUMBERS, below(derive(hashes, 6), 999))
        if "street_name" in needed:
            street_surname = take(surnames.values, surnames.draw(derive(hashes, 3)))
            street_suffix = take(places.street_suffixes.values, places.street_suffixes.draw(derive(hashes, 4)))
            out["street_name"] = join(street_surname, " ", street_suffix)
        if "street_address" in needed:
            out["street_address"] = join(out["house_number"], " ", out["street_name"])
        if "city" in needed:
            out["city"] = take(places.cities, city_index)
        if "state" in needed:
            out["state"] = take(places.states, state_index)
        if "state_abbr" in needed:
            out["state_abbr"] = take(places.state_abbrs, state_index)
        if "postcode" in needed:
            low, high = places.postcode_low[state_index], places.postcode_high[state_index]
            out["postcode"] = _postcodes(low + below(derive(hashes, 2), high - low + 1))
        if "country" in needed:
            out["country"] = pa.repeat(pa.scalar("United States"), n)
        if "country_code" in needed:
            out["country_code"] = pa.repeat(pa.scalar("US"), n)
        if "full_address" in needed:
            out["full_address"] = join(
                out["street_address"], ", ", out["city"], ", ", out["state_abbr"], " ", out["postcode"]
            )
        return out
