"""Runtime settings, parsed once per cold start from environment variables.

Every function reads the same model; fields a function does not need keep their defaults. Tests build
settings from a dict, so nothing here reads the environment at import time.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    environment: str = Field("dev", alias="SEGFLOW_ENV")
    data_bucket: str = Field("segflow-local-data", alias="DATA_BUCKET")
    table_name: str = Field("segflow-local-profiles", alias="TABLE_NAME")
    event_bus_name: str = Field("segflow-local", alias="EVENT_BUS_NAME")
    idempotency_table: str = Field("segflow-local-idempotency", alias="IDEMPOTENCY_TABLE")
    default_timezone: str = Field("UTC", alias="DEFAULT_TIMEZONE")
    default_currency: str | None = Field(None, alias="DEFAULT_CURRENCY")
    future_tolerance_hours: float = Field(24.0, alias="FUTURE_TOLERANCE_HOURS", ge=0)
    chunk_rows: int = Field(100_000, alias="CHUNK_ROWS", gt=0)
    # dataset -> {header alias: canonical column}; extends the shipped alias table.
    column_aliases: dict[str, dict[str, str]] = Field(default_factory=dict, alias="COLUMN_ALIASES")
    fuzzy_name_threshold: float = Field(90.0, alias="FUZZY_NAME_THRESHOLD", ge=0, le=100)
    # Fixes "now" for every computation (local replays, tests); None means the real clock.
    as_of: datetime | None = Field(None, alias="SEGFLOW_AS_OF")
    write_concurrency: int = Field(8, alias="WRITE_CONCURRENCY", gt=0, le=64)
    clv_horizon_days: int = Field(365, alias="CLV_HORIZON_DAYS", gt=0)
    churn_horizon_days: int = Field(90, alias="CHURN_HORIZON_DAYS", gt=0)
    # Sync: where work items go, which audience, which tier's limits; dry run plans without calling APIs.
    sync_dry_run: bool = Field(False, alias="SYNC_DRY_RUN")
    mailchimp_queue_url: str | None = Field(None, alias="MAILCHIMP_QUEUE_URL")
    hubspot_queue_url: str | None = Field(None, alias="HUBSPOT_QUEUE_URL")
    mailchimp_list_id: str | None = Field(None, alias="MAILCHIMP_LIST_ID")
    hubspot_tier: str = Field("starter", alias="HUBSPOT_TIER")
    destination_secret: str | None = Field(None, alias="DESTINATION_SECRET")
    # Base URLs are derived from credentials on AWS; local runs point them at the fake servers.
    mailchimp_base_url: str | None = Field(None, alias="MAILCHIMP_BASE_URL")
    hubspot_base_url: str | None = Field(None, alias="HUBSPOT_BASE_URL")
    segments_config_key: str = Field("config/segments.yaml", alias="SEGMENTS_CONFIG_KEY")
    # Consent: secret names (an empty name means "not configured"), the activity window, erasure of raw drops.
    mailchimp_secret: str = Field("", alias="MAILCHIMP_SECRET")
    hubspot_secret: str = Field("", alias="HUBSPOT_SECRET")
    erasure_salt_secret: str = Field("", alias="ERASURE_SALT_SECRET")
    consent_activity_window_days: int | None = Field(365, alias="CONSENT_ACTIVITY_WINDOW_DAYS", gt=0)
    erasure_delete_raw: bool = Field(True, alias="ERASURE_DELETE_RAW")

    @field_validator("column_aliases", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator(
        "default_currency", "as_of", "mailchimp_queue_url", "hubspot_queue_url", "mailchimp_list_id",
        "destination_secret", "mailchimp_base_url", "hubspot_base_url", mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("as_of")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value

    def now(self) -> datetime:
        return self.as_of or datetime.now(timezone.utc)


def settings_from(env: Mapping[str, str]) -> Settings:
    return Settings.model_validate(dict(env))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read at first use (a cold start) and cached."""
    return settings_from(os.environ)
