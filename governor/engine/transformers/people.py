"""``person_generator`` and ``address_generator``: one coherent fake person or address per row.

Each configured column gets a template (``column_templates``, as in TDK) such as ``${first_name}``
or ``${first_name}.${last_name}@corp.example``; every template of a row is filled from the same
fake, and the fake is chosen by a hash of the whole input row, so a row always maps to the same
fake under one seed.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable
from typing import Annotated, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from governor.engine.hashing import below, derive, hash_columns, stream_key
from governor.engine.transformers import register
from governor.engine.transformers.arrays import (
    as_column_type,
    digit_strings,
    is_text,
    join,
    keep_nulls,
    redraw_equal,
    require_columns,
)
from governor.engine.transformers.base import TransformContext, Transformer
from governor.engine.transformers.reference_data import names, resolve_locale, take, us_places

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")

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

Part = tuple[bool, str]  # (is_placeholder, text or variable name)


def parse_template(template: str) -> list[Part]:
    parts: list[Part] = []
    cursor = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > cursor:
            parts.append((False, template[cursor : match.start()]))
        parts.append((True, match.group(1)))
        cursor = match.end()
    if cursor < len(template):
        parts.append((False, template[cursor:]))
    return parts


def _template_checker(known: tuple[str, ...]) -> Callable[[str], str]:
    def check(template: str) -> str:
        unknown = [name for is_variable, name in parse_template(template) if is_variable and name not in known]
        if unknown:
            raise ValueError(f"unknown placeholder ${{{unknown[0]}}}; known: {', '.join(known)}")
        return template

    return check


class _TemplateGenerator(Transformer):
    """Fills each column's template from one fake per row; subclasses build the variables."""

    row_coherent = True
    salt: ClassVar[str]

    @classmethod
    def check_columns(cls, params: BaseModel, column_count: int) -> str | None:
        templates = params.column_templates  # type: ignore[attr-defined]
        if len(templates) != column_count:
            return f"column_templates has {len(templates)} entries but {column_count} columns are listed"
        return None

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        require_columns(self.name, context, is_text, "text")
        self.templates = [parse_template(template) for template in params.column_templates]  # type: ignore[attr-defined]
        self.needed = {name for parts in self.templates for is_variable, name in parts if is_variable}
        self.key = stream_key(context.seed, self.salt)

    def apply(self, columns: list[pa.Array]) -> list[pa.Array]:
        hashes = derive(hash_columns(columns, self.context.seed), self.key)
        outputs = redraw_equal(self._render, hashes, columns)
        return [
            as_column_type(keep_nulls(output, column), spec.type)
            for output, column, spec in zip(outputs, columns, self.context.columns, strict=True)
        ]

    def _render(self, hashes: np.ndarray) -> list[pa.Array]:
        variables = self.variables(hashes)
        return [
            join(*[variables[text] if is_variable else text for is_variable, text in parts])
            if any(is_variable for is_variable, _ in parts)
            else pa.repeat(pa.scalar("".join(text for _, text in parts), pa.string()), len(hashes))
            for parts in self.templates
        ]

    @abstractmethod
    def variables(self, hashes: np.ndarray) -> dict[str, pa.Array]:
        """The arrays of the variables in ``self.needed`` (and what they are built from)."""


def _known_locale(locale: str) -> str:
    resolved = resolve_locale(locale)
    if resolved is None:
        raise ValueError(f"unknown locale {locale!r}")
    return locale


class PersonParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    column_templates: list[Annotated[str, AfterValidator(_template_checker(PERSON_VARIABLES))]] = Field(min_length=1)
    locale: str = "en_US"

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return _known_locale(value)


_EMAIL_DOMAINS = pa.array(["example.com", "example.org", "example.net"])
_EMAIL_SEPARATORS = pa.array([".", "", "_", ""])  # the last style uses the first initial


@register
class PersonGenerator(_TemplateGenerator):
    """Names, title, gender, email, username and phone numbers of one fake person per row.

    Emails and usernames are built from the same row's names (``jane.doe42@example.org``), on the
    reserved example domains so that test data never mails a real person. Phone numbers follow
    the North American numbering plan.
    """

    name = "person_generator"
    Params = PersonParams
    salt = "person_generator"

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        self.names = names(resolve_locale(params.locale) or "en_US")  # type: ignore[attr-defined]

    def variables(self, hashes: np.ndarray) -> dict[str, pa.Array]:
        tables = self.names
        female = below(derive(hashes, 1), 2).astype(bool)
        first_index = tables.first.draw(derive(hashes, 2), female)
        last_index = tables.last.draw(derive(hashes, 3))
        first, last = take(tables.first.values, first_index), take(tables.last.values, last_index)
        out: dict[str, pa.Array] = {"first_name": first, "last_name": last}
        if "full_name" in self.needed:
            out["full_name"] = join(first, " ", last)
        if "title" in self.needed:
            out["title"] = take(tables.titles.values, tables.titles.draw(derive(hashes, 4), female))
        if "gender" in self.needed:
            out["gender"] = take(pa.array(["M", "F"]), female.astype(np.int64))
        if self.needed & {"email", "username"}:
            style = below(derive(hashes, 5), 4)
            first_part = take(tables.first_email, first_index)
            first_part = pc.if_else(pa.array(style == 3), pc.utf8_slice_codeunits(first_part, 0, 1), first_part)
            number = pc.cast(pa.array(below(derive(hashes, 6), 100)), pa.string())
            number = pc.if_else(pa.array(below(derive(hashes, 7), 3) == 0), number, "")
            local = join(first_part, take(_EMAIL_SEPARATORS, style), take(tables.last_email, last_index), number)
            out["username"] = local
            out["email"] = join(local, "@", take(_EMAIL_DOMAINS, below(derive(hashes, 8), 3)))
        if "phone_national" in self.needed:
            out["phone_national"] = digit_strings(hashes, "(N##) N##-####", 100)
        if "phone_international" in self.needed:
            out["phone_international"] = digit_strings(hashes, "+1 N##-N##-####", 100)
        return out


class AddressParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    column_templates: list[Annotated[str, AfterValidator(_template_checker(ADDRESS_VARIABLES))]] = Field(min_length=1)
    locale: Literal["en_US", "en"] = "en_US"


@register
class AddressGenerator(_TemplateGenerator):
    """A fake US address per row whose city, state and postcode belong together."""

    name = "address_generator"
    Params = AddressParams
    salt = "address_generator"

    def variables(self, hashes: np.ndarray) -> dict[str, pa.Array]:
        places = us_places()
        n = len(hashes)
        city_index = below(derive(hashes, 1), len(places.cities))
        state_index = places.city_states[city_index]
        low, high = places.postcode_low[state_index], places.postcode_high[state_index]
        postcode = low + below(derive(hashes, 2), high - low + 1)
        street_surname = take(names("en_US").last.values, names("en_US").last.draw(derive(hashes, 3)))
        street_suffix = take(places.street_suffixes.values, places.street_suffixes.draw(derive(hashes, 4)))
        out: dict[str, pa.Array] = {
            "house_number": pc.cast(pa.array(1 + below(derive(hashes, 5), 9999)), pa.string()),
            "flat_number": pc.cast(pa.array(1 + below(derive(hashes, 6), 999)), pa.string()),
            "street_name": join(street_surname, " ", street_suffix),
            "city": take(places.cities, city_index),
            "state": take(places.states, state_index),
            "state_abbr": take(places.state_abbrs, state_index),
            "postcode": pc.utf8_lpad(pc.cast(pa.array(postcode), pa.string()), 5, "0"),
            "country": pa.repeat(pa.scalar("United States"), n),
            "country_code": pa.repeat(pa.scalar("US"), n),
        }
        out["street_address"] = join(out["house_number"], " ", out["street_name"])
        out["full_address"] = join(
            out["street_address"], ", ", out["city"], ", ", out["state_abbr"], " ", out["postcode"]
        )
        return out
