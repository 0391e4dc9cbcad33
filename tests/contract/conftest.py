"""Fixtures for contract tests: the specs (loaded once per session) and fakes whose every exchange is
validated against them when the test ends.

    def test_my_client(checked_mailchimp):
        client = MailchimpClient(checked_mailchimp.base_url, checked_mailchimp.api_key)
        client.push(...)            # any request/response that breaks the spec fails this test
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from segflow_local.fakes import FakeHubSpot, FakeMailchimp
from segflow_local.fakes.common import FakeServer

from tests.contract.contract_recorder import SpecBook, api_specs_dir


@pytest.fixture(scope="session")
def spec_book() -> SpecBook:
    folder = api_specs_dir()
    if folder is None:
        pytest.skip(
            "vendor API specs not found: set SEGFLOW_API_SPECS or place them in ../shared/api-specs "
            "next to the repository"
        )
    return SpecBook(folder)


def _checked(book: SpecBook, fake: FakeServer) -> Iterator[FakeServer]:
    with fake:
        yield fake
    book.assert_valid(fake.vendor, fake.exchanges)  # type: ignore[arg-type]


@pytest.fixture
def checked_mailchimp(spec_book: SpecBook) -> Iterator[FakeMailchimp]:
    yield from _checked(spec_book, FakeMailchimp())  # type: ignore[misc]


@pytest.fixture
def checked_hubspot(spec_book: SpecBook) -> Iterator[FakeHubSpot]:
    yield from _checked(spec_book, FakeHubSpot())  # type: ignore[misc]


@pytest.fixture
def mailchimp_session(checked_mailchimp: FakeMailchimp) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = ("segflow", checked_mailchimp.api_key)
        yield session


@pytest.fixture
def hubspot_session(checked_hubspot: FakeHubSpot) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {checked_hubspot.token}"
        yield session
