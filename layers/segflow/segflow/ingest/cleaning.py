"""Validate and normalise one RawChunk of a dataset into typed clean rows, quarantined rows and warnings.

Reason.rule is one of RULES:
  required        a required value (or every value of a one-of group such as customer_id|email) is missing
  row_shape       the reader could not split the row into the header's fields (wrong count, bad JSON line)
  email_syntax    email-validator rejects the address
  phone           not a valid phone number for the row's country (warning: phone nulled)
  country         not a recognisable country (warning: country nulled)
  date_parse      not a date in an accepted form, or an ambiguous DD/MM vs MM/DD date (see dates.py)
  date_future     later than `now + future_tolerance` (default one day)
  date_range      birth_date before 1900-01-01 (warning)
  numeric         not an amount / whole number, or out of range (quantity <= 0, unit_price < 0)
  negative_total  a negative order total on an order that is not refunded
  currency_code   not an ISO 4217 code
  status          order status not in the vocabulary (see vocab.py)
  event_type      event type not in the vocabulary
  channel         consent channel other than email
  consent_status  consent status not opted_in / opted_out (or an alias)
  lawful_basis    lawful basis not consent / legitimate_interest / contract
  boolean         double_opt_in_confirmed not a boolean (warning: read as false)

Severity (see datasets.py): a required field missing or invalid quarantines the row, with every fatal
reason listed; an optional field with an invalid value is nulled, its raw value kept in `<field>_original`
(email, phone, country, dates, money) and a warning recorded. Warnings are only reported for rows that are
not quarantined. A row that the reader flagged (`row_shape`) is quarantined with that reason alone, since
its cells may be misaligned.

Defaults and imputation (documented, nothing else is invented):
- currency: `default_currency` when the column is absent or the cell empty; otherwise `required` fails.
- consent channel: "email" when the column is absent or the cell empty.
- double_opt_in_confirmed: false when absent, empty or unreadable (never assume a confirmation).
- customers.country: when empty, the region of a phone written with an international prefix
  (country_imputed = True). Never an email or an id.

Clean columns: every canonical field of the dataset (null when absent from the file), `<money>_exact`
beside each amount, `<field>_original` for email, phone, country, dates and amounts (null when the value
was kept as written), customers also `country_imputed` (bool) and `attributes` (dict of the extra columns'
non-empty values), and `_row`, the row number in the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from segflow.ingest import vocab
from segflow.ingest.columns import EXTRA_FIELDS, INTERNAL_COLUMNS, PARSE_ERROR
from segflow.ingest.contact import parse_emails, parse_phones
from segflow.ingest.countries import parse_countries
from segflow.ingest.datasets import DATASETS, DatasetSpec, FieldSpec
from segflow.ingest.dates import SlashOrder, parse_timestamps
from segflow.ingest.money import (
    DecimalSeparator,
    currency_code,
    parse_amounts,
    parse_currencies,
    parse_quantities,
)
from segflow.ingest.normalise import Parsed, parse_bools, parse_ids, parse_text, parse_vocab
from segflow.ingest.quarantine import QuarantinedRow, Reason, truncate
from segflow.ingest.reader import RawChunk

__all__ = ["RULES", "CleanResult", "QuarantinedRow", "Reason", "clean_chunk"]

logger = logging.getLogger(__name__)

RULES = frozenset(
    {
        "required",
        "row_shape",
        "email_syntax",
        "phone",
        "country",
        "date_parse",
        "date_future",
        "date_range",
        "numeric",
        "negative_total",
        "currency_code",
        "status",
        "event_type",
        "channel",
        "consent_status",
        "lawful_basis",
        "boolean",
    }
)
_RULE_BY_KIND = {
    "email": "email_syntax",
    "phone": "phone",
    "country": "country",
    "date": "date_parse",
    "datetime": "date_parse",
    "money": "numeric",
    "quantity": "numeric",
    "currency": "currency_code",
    "order_status": "status",
    "event_type": "event_type",
    "consent_status": "consent_status",
    "channel": "channel",
    "lawful_basis": "lawful_basis",
    "bool": "boolean",
}
_VOCAB_BY_KIND = {
    "order_status": (vocab.ORDER_STATUS, "order status"),
    "event_type": (vocab.EVENT_TYPE, "event type"),
    "consent_status": (vocab.CONSENT_STATUS, "consent status"),
    "channel": (vocab.CHANNEL, "channel"),
    "lawful_basis": (vocab.LAWFUL_BASIS, "lawful basis"),
}
_AUDITED_KINDS = frozenset({"email", "phone", "country", "date", "datetime", "money"})
_OLDEST_BIRTH_DATE = pd.Timestamp("1900-01-01", tz="UTC")


@dataclass
class CleanResult:
    clean: pd.DataFrame  # canonical typed columns + "_row"
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    warnings: list[tuple[int, Reason]] = field(default_factory=list)  # (row, reason), clean rows only


@dataclass
class _Issue:
    mask: np.ndarray
    field: str
    rule: str
    values: np.ndarray  # raw values (object)
    messages: np.ndarray | str
    fatal: np.ndarray | bool


class _Issues:
    """Collects rule violations as masks; expands them into Reasons only for the affected rows."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: list[_Issue] = []
        self.shape_errors = np.zeros(size, dtype=bool)

    def add(
        self,
        mask: np.ndarray,
        field_name: str,
        rule: str,
        values: np.ndarray,
        messages: np.ndarray | str,
        fatal: np.ndarray | bool,
    ) -> None:
        if mask.any():
            self.items.append(_Issue(mask, field_name, rule, values, messages, fatal))

    def quarantine_mask(self) -> np.ndarray:
        mask = self.shape_errors.copy()
        for issue in self.items:
            mask |= issue.mask & issue.fatal & ~self.shape_errors
        return mask

    def expand(self, quarantined: np.ndarray) -> tuple[dict[int, list[Reason]], list[tuple[int, Reason]]]:
        fatal: dict[int, list[Reason]] = {}
        warnings: list[tuple[int, Reason]] = []
        for issue in self.items:
            is_fatal = np.broadcast_to(issue.fatal, (self.size,))
            row_shape = issue.rule == "row_shape"
            for pos in np.flatnonzero(issue.mask):
                if self.shape_errors[pos] and not row_shape:
                    continue
                message = issue.messages if isinstance(issue.messages, str) else issue.messages[pos]
                reason = Reason(issue.field, issue.rule, truncate(issue.values[pos]), str(message))
                if is_fatal[pos]:
                    fatal.setdefault(int(pos), []).append(reason)
                elif not quarantined[pos]:
                    warnings.append((int(pos), reason))
        return fatal, warnings


def clean_chunk(
    chunk: RawChunk,
    dataset: str,
    *,
    now: datetime,
    source_name: str,
    default_timezone: str = "UTC",
    default_currency: str | None = None,
    future_tolerance: timedelta = timedelta(days=1),
    date_order: SlashOrder = "auto",
    decimal_separator: DecimalSeparator | None = None,
) -> CleanResult:
    """Validate and normalise one chunk. `date_order` ("auto", "dmy", "mdy") settles DD/MM vs MM/DD slash
    dates; `decimal_separator` ("." or ",") settles amounts like "1,234" (see dates.py, money.py)."""
    spec = DATASETS[dataset]
    if default_currency is not None and currency_code(default_currency) is None:
        raise ValueError(f"default_currency {default_currency!r} is not an ISO 4217 code")
    try:
        ZoneInfo(default_timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"default_timezone {default_timezone!r} is not an IANA time zone") from err
    frame = chunk.frame
    size = len(frame)
    now_utc = pd.Timestamp(now)
    now_utc = now_utc.tz_localize("UTC") if now_utc.tzinfo is None else now_utc.tz_convert("UTC")
    context = _Context(
        spec,
        frame,
        size,
        default_timezone,
        date_order,
        decimal_separator,
        currency_code(default_currency) if default_currency else None,
        now_utc + future_tolerance,
    )
    context.run()

    quarantined_mask = context.issues.quarantine_mask()
    fatal, warn_positions = context.issues.expand(quarantined_mask)
    rows = np.asarray(chunk.rows, dtype=np.int64)
    quarantined = _quarantined_rows(frame, rows, fatal)
    warnings = [(int(rows[pos]), reason) for pos, reason in warn_positions]
    clean = context.clean_frame(~quarantined_mask, rows)
    logger.debug(
        "chunk cleaned",
        extra={
            "source": source_name,
            "dataset": dataset,
            "rows": size,
            "quarantined": len(quarantined),
            "warnings": len(warnings),
        },
    )
    return CleanResult(clean, quarantined, warnings)


def _quarantined_rows(
    frame: pd.DataFrame, rows: np.ndarray, fatal: dict[int, list[Reason]]
) -> list[QuarantinedRow]:
    positions = sorted(fatal)
    if not positions:
        return []
    records = frame.iloc[positions].to_dict("records")
    result = []
    for pos, record in zip(positions, records):
        record = {
            k: v for k, v in record.items() if k != PARSE_ERROR and not (k == EXTRA_FIELDS and v is None)
        }
        result.append(QuarantinedRow(int(rows[pos]), fatal[pos], record))
    return result


class _Context:
    """The per-chunk state: raw columns in, parsed columns and issues out."""

    def __init__(
        self,
        spec: DatasetSpec,
        frame: pd.DataFrame,
        size: int,
        zone: str,
        date_order: SlashOrder,
        decimal_separator: DecimalSeparator | None,
        default_currency: str | None,
        future_limit: pd.Timestamp,
    ) -> None:
        self.spec, self.frame, self.size = spec, frame, size
        self.zone, self.date_order, self.decimal_separator = zone, date_order, decimal_separator
        self.default_currency, self.future_limit = default_currency, future_limit
        self.issues = _Issues(size)
        self.values: dict[str, Any] = {}
        self.exact: dict[str, np.ndarray] = {}
        self.originals: dict[str, np.ndarray] = {}
        self.country_imputed = np.zeros(size, dtype=bool)
        self.invalid: dict[str, np.ndarray] = {}
        # Invalid values of one-of identity fields: their severity depends on the other identity fields.
        self._identity_errors: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []

    def raw(self, name: str) -> pd.Series:
        if name not in self.frame:
            return pd.Series(np.full(self.size, None, dtype=object), dtype=object)
        column = self.frame[name].to_numpy(dtype=object)
        return pd.Series(np.where(pd.isna(column), None, column), dtype=object)

    # ---- passes ------------------------------------------------------------------------------
    def run(self) -> None:
        if PARSE_ERROR in self.frame:
            errors = self.frame[PARSE_ERROR].to_numpy(dtype=object)
            self.issues.shape_errors = pd.notna(errors)
            extras = self.raw(EXTRA_FIELDS).to_numpy(dtype=object)
            self.issues.add(self.issues.shape_errors.copy(), "*", "row_shape", extras, errors, True)
        order = sorted(
            self.spec.fields.items(), key=lambda item: item[1].kind == "phone"
        )  # phone after country
        for name, field_spec in order:
            self._field(name, field_spec)
        self._one_of_groups()
        self._cross_field_rules()

    def _field(self, name: str, spec: FieldSpec) -> None:
        raw = self.raw(name)
        raw_values = raw.to_numpy(dtype=object)
        parsed = self._parse(name, spec, raw)
        values = parsed.values
        invalid = self.invalid[name] = parsed.invalid
        missing = pd.isna(values) & ~invalid
        default = self._default(spec.kind)
        if spec.kind == "bool":  # false unless confirmed: never assume a confirmation
            values = np.where(missing | invalid, False, values).astype(bool)
            missing = np.zeros(self.size, dtype=bool)
        elif default is not None:
            values = np.where(missing, default, values)
            missing = np.zeros(self.size, dtype=bool)
        rule = _RULE_BY_KIND.get(spec.kind)
        if rule and invalid.any():
            if self._in_one_of(name) and not spec.quarantines:
                self._identity_errors.append((name, invalid, raw_values, parsed.errors))
            else:
                self.issues.add(invalid, name, rule, raw_values, parsed.errors, spec.quarantines)
        if spec.required:
            message = (
                f"{name} is missing and no default is configured"
                if name in self.spec.defaulted_columns
                else f"{name} is missing"
            )
            self.issues.add(missing, name, "required", raw_values, message, True)
        if spec.kind in ("date", "datetime"):
            values = self._date_limits(name, spec, values, raw_values)
        self.values[name] = values
        if spec.kind in _AUDITED_KINDS:
            nulled = pd.isna(values) & ~missing & ~invalid  # valid but refused (e.g. a future date)
            self.originals[name] = np.where(parsed.changed | invalid | nulled, raw_values, None)

    def _default(self, kind: str) -> str | None:
        if kind == "currency":
            return self.default_currency
        return "email" if kind == "channel" else None

    def _parse(self, name: str, spec: FieldSpec, raw: pd.Series) -> Parsed:
        kind = spec.kind
        if kind == "id":
            return parse_ids(raw)
        if kind in ("name", "text"):
            return parse_text(raw)
        if kind == "email":
            return parse_emails(raw)
        if kind == "country":
            return parse_countries(raw)
        if kind == "phone":
            return self._phones(raw)
        if kind in ("date", "datetime"):
            return parse_timestamps(
                raw, default_timezone=self.zone, slash_order=self.date_order, date_only=kind == "date"
            )
        if kind == "money":
            parsed, floats = parse_amounts(raw, self.decimal_separator)
            self.exact[name] = parsed.values
            return Parsed(floats, parsed.errors, parsed.changed)
        if kind == "quantity":
            return parse_quantities(raw)
        if kind == "currency":
            return parse_currencies(raw)
        if kind == "bool":
            return parse_bools(raw)
        table, what = _VOCAB_BY_KIND[kind]
        return parse_vocab(raw, table, what)

    def _phones(self, raw: pd.Series) -> Parsed:
        countries = self.values.get("country")
        regions = countries if countries is not None else np.full(self.size, None, dtype=object)
        parsed, found = parse_phones(raw, regions)
        if countries is not None:
            impute = pd.isna(countries) & ~self.invalid["country"] & pd.notna(found)  # empty, not unknown
            if impute.any():
                self.values["country"] = np.where(impute, found, countries)
                self.country_imputed = impute
        return parsed

    def _date_limits(self, name: str, spec: FieldSpec, values: Any, raw_values: np.ndarray) -> Any:
        series = pd.Series(values)
        future = (series > self.future_limit).to_numpy(dtype=bool)
        message = f"{name} is later than now + the future tolerance"
        self.issues.add(future, name, "date_future", raw_values, message, spec.required)
        too_old = np.zeros(self.size, dtype=bool)
        if spec.kind == "date":
            too_old = (series < _OLDEST_BIRTH_DATE).to_numpy(dtype=bool)
            self.issues.add(
                too_old, name, "date_range", raw_values, f"{name} is before 1900-01-01", spec.required
            )
        if future.any() or too_old.any():
            series = series.mask(future | too_old)
        return series.array

    def _in_one_of(self, name: str) -> bool:
        return any(name in group for group in self.spec.one_of)

    def _one_of_groups(self) -> None:
        for group in self.spec.one_of:
            has_value = np.zeros(self.size, dtype=bool)
            for name in group:
                has_value |= pd.notna(self.values[name])
            for name, invalid, raw_values, errors in self._identity_errors:
                if name in group:
                    # An invalid email is only fatal when it was the row's only identity.
                    self.issues.add(
                        invalid,
                        name,
                        _RULE_BY_KIND[self.spec.fields[name].kind],
                        raw_values,
                        errors,
                        ~has_value,
                    )
            any_invalid = np.zeros(self.size, dtype=bool)
            for name in group:
                any_invalid |= self.invalid[name]
            empty = ~has_value & ~any_invalid
            self.issues.add(
                empty,
                "|".join(group),
                "required",
                np.full(self.size, None, dtype=object),
                f"one of {', '.join(group)} is required",
                True,
            )

    def _cross_field_rules(self) -> None:
        kinds = self.spec.field_types
        if self.spec.name == "orders":
            total = np.asarray(self.values["total"], dtype=float)
            status = self.values["status"]
            negative = (total < 0) & pd.notna(status) & (status != "refunded")
            self.issues.add(
                negative,
                "total",
                "negative_total",
                self.raw("total").to_numpy(dtype=object),
                "a negative total is only allowed on a refunded order",
                True,
            )
        for name, kind in kinds.items():
            if kind == "quantity":
                quantity = pd.to_numeric(
                    pd.Series(self.values[name], dtype=object), errors="coerce"
                ).to_numpy()
                self.issues.add(
                    quantity <= 0,
                    name,
                    "numeric",
                    self.raw(name).to_numpy(dtype=object),
                    f"{name} must be greater than 0",
                    True,
                )
            if kind == "money" and name == "unit_price":
                price = np.asarray(self.values[name], dtype=float)
                self.issues.add(
                    price < 0,
                    name,
                    "numeric",
                    self.raw(name).to_numpy(dtype=object),
                    f"{name} must be 0 or more",
                    True,
                )

    # ---- output -------------------------------------------------------------------------------
    def clean_frame(self, keep: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for name, spec in self.spec.fields.items():
            columns[name] = _typed(spec.kind, self.values[name], keep)
            if spec.kind == "money":
                columns[f"{name}_exact"] = pd.Series(self.exact[name][keep], dtype=object)
        for name in self.spec.fields:
            if name in self.originals:
                columns[f"{name}_original"] = pd.Series(self.originals[name][keep], dtype=object)
        if self.spec.keeps_attributes:
            columns["country_imputed"] = pd.Series(self.country_imputed[keep], dtype=bool)
            columns["attributes"] = pd.Series(self._attributes(keep), dtype=object)
        columns["_row"] = pd.Series(rows[keep], dtype=np.int64)
        return pd.DataFrame(columns, index=pd.RangeIndex(int(keep.sum())))

    def _attributes(self, keep: np.ndarray) -> list[dict[str, str]]:
        extras = [c for c in self.frame.columns if c not in self.spec.fields and c not in INTERNAL_COLUMNS]
        if not extras:
            return [{} for _ in range(int(keep.sum()))]
        cells = [self.raw(c).to_numpy(dtype=object)[keep] for c in extras]
        return [
            {k: v.strip() for k, v in zip(extras, values) if isinstance(v, str) and v.strip()}
            for values in zip(*cells)
        ]


def _typed(kind: str, values: Any, keep: np.ndarray) -> pd.Series:
    if kind in ("date", "datetime"):
        return pd.Series(pd.Series(values)[keep].array, dtype="datetime64[ns, UTC]")
    if kind == "money":
        return pd.Series(np.asarray(values, dtype="float64")[keep], dtype="float64")
    if kind == "quantity":
        return pd.Series(np.asarray(values, dtype=object)[keep].astype(np.int64), dtype=np.int64)
    if kind == "bool":
        return pd.Series(np.asarray(values, dtype=bool)[keep], dtype=bool)
    return pd.Series(np.asarray(values, dtype=object)[keep], dtype=object)
