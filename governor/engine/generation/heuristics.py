"""Text columns recognized by their names (``use_text_column_heuristics``): people and addresses.

A column named like a first name, an email or a city gets realistic fakes from the person and
address generators instead of scrambled source text. The columns of one table that belong to a
person (or to an address) are generated together, so that a row's email matches its names and
its city its state and postcode.
"""

from __future__ import annotations

import re

PERSON = "person_generator"
ADDRESS = "address_generator"

_EXACT: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("first_name", "firstname", "given_name", "forename", "fname"), (PERSON, "${first_name}")),
    **dict.fromkeys(("last_name", "lastname", "surname", "family_name", "lname"), (PERSON, "${last_name}")),
    **dict.fromkeys(
        ("full_name", "fullname", "person_name", "customer_name", "contact_name", "employee_name"),
        (PERSON, "${full_name}"),
    ),
    **dict.fromkeys(("email", "email_address", "e_mail", "mail"), (PERSON, "${email}")),
    **dict.fromkeys(("phone", "phone_number", "telephone", "mobile", "cell_phone"), (PERSON, "${phone_national}")),
    **dict.fromkeys(("username", "user_name", "login"), (PERSON, "${username}")),
    **dict.fromkeys(
        ("street", "street_address", "address", "address_line1", "address_line_1", "address1", "street_line"),
        (ADDRESS, "${street_address}"),
    ),
    **dict.fromkeys(("city", "town"), (ADDRESS, "${city}")),
    **dict.fromkeys(("state", "province", "state_name"), (ADDRESS, "${state}")),
    **dict.fromkeys(("postcode", "zip", "zipcode", "zip_code", "postal_code"), (ADDRESS, "${postcode}")),
    "country": (ADDRESS, "${country}"),
    "country_code": (ADDRESS, "${country_code}"),
}
_SUFFIXES = (("_email", (PERSON, "${email}")), ("_phone", (PERSON, "${phone_national}")))
_SHORT_STATE = 3  # states in columns this short are abbreviations


def match(column: str, longest: int) -> tuple[str, str] | None:
    """The generator and template for a text column, from its name; ``longest`` is its source's longest value."""
    name = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")
    found = _EXACT.get(name) or next((found for suffix, found in _SUFFIXES if name.endswith(suffix)), None)
    if found == (ADDRESS, "${state}") and 0 < longest <= _SHORT_STATE:
        return ADDRESS, "${state_abbr}"
    return found
