"""Credentials come from Secrets Manager through Powertools (cached) or directly; secrets never print."""
from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import base as parameters_base
from moto import mock_aws
from segflow.destinations.credentials import (
    Credentials,
    CredentialsError,
    load_credentials,
    parse_credentials,
)


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    parameters_base.clear_caches()
    parameters_base.DEFAULT_PROVIDERS.clear()  # a provider built outside the mock would call AWS
    with mock_aws():
        yield boto3.client("secretsmanager")
    parameters_base.clear_caches()
    parameters_base.DEFAULT_PROVIDERS.clear()


def test_json_secret_with_an_api_key_is_read_and_cached(secrets) -> None:
    secrets.create_secret(Name="segflow/mailchimp", SecretString=json.dumps({"api_key": "k1-us6"}))
    assert load_credentials("segflow/mailchimp").api_key == "k1-us6"
    secrets.put_secret_value(SecretId="segflow/mailchimp", SecretString=json.dumps({"api_key": "k2-us6"}))
    assert load_credentials("segflow/mailchimp", max_age=300).api_key == "k1-us6"  # served from the cache
    parameters_base.clear_caches()
    assert load_credentials("segflow/mailchimp").api_key == "k2-us6"


def test_token_secret(secrets) -> None:
    secrets.create_secret(Name="segflow/hubspot", SecretString=json.dumps({"token": "pat-1"}))
    credentials = load_credentials("segflow/hubspot")
    assert credentials.token == "pat-1" and credentials.api_key is None and credentials.secret == "pat-1"


def test_direct_values_need_no_aws() -> None:
    assert load_credentials(value={"token": "pat-2"}).token == "pat-2"
    assert load_credentials(value='{"api_key": "k-us6"}').api_key == "k-us6"
    assert load_credentials(value="plain-us6").secret == "plain-us6"


def test_bad_secrets_are_refused_without_echoing_them() -> None:
    with pytest.raises(CredentialsError) as caught:
        parse_credentials('{"password": "hunter2"}')
    assert "hunter2" not in str(caught.value)
    with pytest.raises(CredentialsError):
        parse_credentials("{not json hunter2")
    with pytest.raises(CredentialsError):
        load_credentials()


def test_repr_hides_the_secret() -> None:
    shown = repr(Credentials(api_key="k-us6-very-secret"))
    assert "very-secret" not in shown and "api_key" in shown
