"""Settings are parsed from the environment once, validated, and usable without AWS."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from segflow.config import settings_from


def test_defaults_need_no_environment():
    settings = settings_from({})
    assert settings.chunk_rows == 100_000 and settings.default_timezone == "UTC"
    assert settings.now().tzinfo is not None


def test_values_and_json_aliases_are_parsed():
    settings = settings_from({
        "DATA_BUCKET": "b", "TABLE_NAME": "t", "CHUNK_ROWS": "500", "SEGFLOW_AS_OF": "2026-11-01",
        "COLUMN_ALIASES": '{"orders": {"Bestellnummer": "order_id"}}', "DEFAULT_CURRENCY": "",
    })
    assert settings.data_bucket == "b" and settings.chunk_rows == 500
    assert settings.now() == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert settings.column_aliases == {"orders": {"Bestellnummer": "order_id"}}
    assert settings.default_currency is None


@pytest.mark.parametrize("env", [{"CHUNK_ROWS": "0"}, {"COLUMN_ALIASES": "{not json"}, {"FUZZY_NAME_THRESHOLD": "101"}])
def test_bad_values_fail_at_cold_start(env):
    with pytest.raises((ValidationError, ValueError)):
        settings_from(env)
