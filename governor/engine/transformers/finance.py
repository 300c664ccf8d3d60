"""``finance_generator``: payment card numbers and IBANs that pass the checks applications run.

Card numbers start with a real issuer prefix of the chosen schemes, have the scheme's length and
end with a valid Luhn check digit; IBANs have the country's length and layout, a valid national
check where the country has a simple one (France's RIB key, Belgium's mod 97) and valid ISO 7064
mod-97 check digits. Everything is built as digit matrices, a whole batch at a time.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from governor.engine.hashing import below, derive
from governor.engine.transformers import register
from governor.engine.transformers.arrays import digit_matrix, strings_from_matrix, strings_from_padded
from governor.engine.transformers.base import TransformContext
from governor.engine.transformers.reference_data import take
from governor.engine.transformers.templates import TemplateGenerator, template_checker

FINANCE_VARIABLES = (
    "credit_card_number",
    "credit_card_provider",
    "credit_card_expire",
    "credit_card_security_code",
    "iban",
    "bban",
)

Scheme = Literal["VISA", "MASTERCARD", "AMEX", "DISCOVER", "JCB", "DINERS"]
# scheme: (display name, card length, issuer prefixes)
_SCHEMES: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "VISA": ("Visa", 16, ("4",)),
    "MASTERCARD": ("Mastercard", 16, ("51", "52", "53", "54", "55", "2221", "2500", "2720")),
    "AMEX": ("American Express", 15, ("34", "37")),
    "DISCOVER": ("Discover", 16, ("6011", "644", "645", "649", "65")),
    "JCB": ("JCB", 16, ("3528", "3555", "3589")),
    "DINERS": ("Diners Club", 14, ("300", "305", "36", "38")),
}

IbanCountry = Literal["DE", "GB", "FR", "NL", "BE"]
# country: BBAN layout, 'n' a digit, 'a' an upper-case letter; national check digits are filled later
_BBAN_LAYOUTS: dict[str, str] = {
    "DE": "n" * 18,  # bank code (8), account (10)
    "GB": "aaaa" + "n" * 14,  # bank (4 letters), sort code (6), account (8)
    "FR": "n" * 23,  # bank (5), branch (5), account (11), RIB key (2)
    "NL": "aaaa" + "n" * 10,  # bank (4 letters), account (10)
    "BE": "n" * 12,  # bank (3), account (7), check (2)
}


class FinanceParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    column_templates: list[Annotated[str, AfterValidator(template_checker(FINANCE_VARIABLES))]] = Field(min_length=1)
    card_schemes: list[Scheme] = Field(default=list(_SCHEMES), min_length=1)
    iban_countries: list[IbanCountry] = Field(default=list(_BBAN_LAYOUTS), min_length=1)


def luhn_check_digits(digits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The Luhn check digit completing each row's first ``lengths - 1`` digits (values 0-9)."""
    positions = np.arange(digits.shape[1])
    from_right = lengths[:, None] - 2 - positions  # 0 for the digit next to the check digit
    doubled = (from_right >= 0) & (from_right % 2 == 0)
    values = np.where(doubled, digits * 2, digits).astype(np.int64)
    values = np.where(values > 9, values - 9, values) * (from_right >= 0)
    return (10 - values.sum(axis=1) % 10) % 10


def mod97(characters: np.ndarray) -> np.ndarray:
    """Each row of ASCII digits and upper-case letters, read as ISO 7064's number (A=10 ... Z=35), mod 97."""
    remainder = np.zeros(len(characters), dtype=np.int64)
    for column in characters.T.astype(np.int64):
        letter = column >= ord("A")
        remainder = np.where(letter, remainder * 100 + column - ord("A") + 10, remainder * 10 + column - ord("0")) % 97
    return remainder


def _as_number(digits: np.ndarray) -> np.ndarray:
    """Rows of ASCII digits as int64 numbers (at most 18 digits)."""
    number = np.zeros(len(digits), dtype=np.int64)
    for column in digits.T.astype(np.int64):
        number = number * 10 + column - ord("0")
    return number


def _two_digits(values: np.ndarray) -> np.ndarray:
    return np.stack([values // 10, values % 10], axis=1).astype(np.uint8) + ord("0")


def _national_checks(country: str, bban: np.ndarray) -> None:
    """Fill the BBAN's national check digits in place, for the countries that have a simple one."""
    if country == "FR":
        bank, branch, account = _as_number(bban[:, :5]), _as_number(bban[:, 5:10]), _as_number(bban[:, 10:21])
        bban[:, 21:23] = _two_digits(97 - (89 * bank + 15 * branch + 3 * account) % 97)
    elif country == "BE":
        check = _as_number(bban[:, :10]) % 97
        bban[:, 10:12] = _two_digits(np.where(check == 0, 97, check))


@register
class FinanceGenerator(TemplateGenerator):
    """Card number, provider, expiry and security code, IBAN and BBAN of one fake account per row."""

    name = "finance_generator"
    Params = FinanceParams
    salt = "finance_generator"

    def __init__(self, params: BaseModel, context: TransformContext) -> None:
        super().__init__(params, context)
        schemes = [_SCHEMES[scheme] for scheme in dict.fromkeys(params.card_schemes)]  # type: ignore[attr-defined]
        self.providers = pa.array([name for name, _, _ in schemes])
        self.card_lengths = np.array([length for _, length, _ in schemes], dtype=np.int64)
        self.prefixes = [prefixes for _, _, prefixes in schemes]
        self.countries = list(dict.fromkeys(params.iban_countries))  # type: ignore[attr-defined]

    def variables(self, hashes: np.ndarray) -> dict[str, pa.Array]:
        out: dict[str, pa.Array] = {}
        if self.needed & {"credit_card_number", "credit_card_provider", "credit_card_security_code"}:
            scheme = below(derive(hashes, 1), len(self.providers))
            out["credit_card_provider"] = take(self.providers, scheme)
            out["credit_card_number"] = self._card_numbers(hashes, scheme)
            code = strings_from_matrix(digit_matrix(hashes, "####", 3))
            four = pa.array(self.card_lengths[scheme] == 15)  # American Express prints four digits
            out["credit_card_security_code"] = pc.if_else(four, code, pc.utf8_slice_codeunits(code, 0, 3))
        if "credit_card_expire" in self.needed:
            month = 1 + below(derive(hashes, 4), 12)
            year = 26 + below(derive(hashes, 5), 8)
            expiry = np.concatenate([_two_digits(month), np.full((len(hashes), 1), ord("/"), np.uint8)], axis=1)
            out["credit_card_expire"] = strings_from_matrix(np.concatenate([expiry, _two_digits(year)], axis=1))
        if self.needed & {"iban", "bban"}:
            out["iban"] = self._ibans(hashes)
            out["bban"] = pc.utf8_slice_codeunits(out["iban"], 4)
        return out

    def _card_numbers(self, hashes: np.ndarray, scheme: np.ndarray) -> pa.Array:
        lengths = self.card_lengths[scheme]
        digits = digit_matrix(hashes, "#" * 16, 10) - ord("0")
        choice = derive(hashes, 2)
        for index, prefixes in enumerate(self.prefixes):
            rows = np.flatnonzero(scheme == index)
            picked = below(choice[rows], len(prefixes))
            for number, prefix in enumerate(prefixes):
                chosen = rows[picked == number]
                digits[chosen, : len(prefix)] = np.frombuffer(prefix.encode(), np.uint8) - ord("0")
        digits[np.arange(len(hashes)), lengths - 1] = luhn_check_digits(digits, lengths)
        return strings_from_padded(digits + ord("0"), lengths)

    def _ibans(self, hashes: np.ndarray) -> pa.Array:
        country = below(derive(hashes, 6), len(self.countries))
        matrix = np.zeros((len(hashes), 34), dtype=np.uint8)
        lengths = np.zeros(len(hashes), dtype=np.int64)
        for index, code in enumerate(self.countries):
            rows = np.flatnonzero(country == index)
            layout = _BBAN_LAYOUTS[code]
            bban = digit_matrix(hashes[rows], "#" * len(layout), 7)
            for position in (position for position, kind in enumerate(layout) if kind == "a"):
                bban[:, position] = ord("A") + below(derive(hashes[rows], 8 + position), 26)
            _national_checks(code, bban)
            country_code = np.frombuffer(code.encode(), np.uint8)
            moved_to_end = np.tile(np.concatenate([country_code, np.frombuffer(b"00", np.uint8)]), (len(rows), 1))
            check = _two_digits(98 - mod97(np.concatenate([bban, moved_to_end], axis=1)))
            matrix[rows, :2] = country_code
            matrix[rows, 2:4] = check
            matrix[rows, 4 : 4 + len(layout)] = bban
            lengths[rows] = 4 + len(layout)
        return strings_from_padded(matrix, lengths)
