"""Destination credentials from Secrets Manager (cached through Powertools Parameters) or given directly.

A secret holds JSON: {"api_key": "...-us6"} for Mailchimp, {"token": "pat-..."} for HubSpot (a bare
string is accepted as the secret itself). Local runs pass the value directly and never reach AWS.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_AGE_S = 300


class CredentialsError(ValueError):
    """The secret is missing or holds neither an api_key nor a token (its content is never echoed)."""


@dataclass(frozen=True)
class Credentials:
    api_key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @property
    def secret(self) -> str:
        """Whichever of api_key / token is present."""
        value = self.api_key or self.token
        if not value:
            raise CredentialsError("credentials hold neither api_key nor token")
        return value

    def __repr__(self) -> str:
        present = [name for name in ("api_key", "token") if getattr(self, name)]
        return f"Credentials(present={present})"


def parse_credentials(value: str | bytes | Mapping[str, Any]) -> Credentials:
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    data: Any = value
    if isinstance(value, str):
        text = value.strip()
        try:
            data = json.loads(text) if text.startswith("{") else text
        except ValueError as exc:
            raise CredentialsError("secret looks like JSON but does not parse") from exc
    if isinstance(data, str):
        if not data:
            raise CredentialsError("secret is empty")
        return Credentials(api_key=data, token=data)
    if isinstance(data, Mapping):
        api_key, token = data.get("api_key"), data.get("token")
        if not api_key and not token:
            raise CredentialsError("secret JSON has neither 'api_key' nor 'token'")
        return Credentials(api_key=str(api_key) if api_key else None, token=str(token) if token else None)
    raise CredentialsError("unsupported secret value")


def load_credentials(
    secret_name: str | None = None,
    *,
    value: str | bytes | Mapping[str, Any] | None = None,
    max_age: int = DEFAULT_MAX_AGE_S,
) -> Credentials:
    """Credentials from `value` when given (local runs), else from the named secret, cached for `max_age` s."""
    if value is not None:
        return parse_credentials(value)
    if not secret_name:
        raise CredentialsError("neither a secret name nor a value was given")
    from aws_lambda_powertools.utilities.parameters import (
        get_secret,  # imported late: keeps local runs boto-free
    )

    secret = get_secret(secret_name, max_age=max_age)
    if secret is None:
        raise CredentialsError(f"secret {secret_name!r} has no value")
    return parse_credentials(secret)
