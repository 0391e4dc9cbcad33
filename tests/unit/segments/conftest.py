"""Shared fixtures for the segments tests: the shipped default config, compiled once."""

from __future__ import annotations

import pytest

from segflow.segments.config import SegmentConfig, load_segments
from segflow.segments.rules import CompiledRules, compile_rules


@pytest.fixture(scope="session")
def default_config() -> SegmentConfig:
    return load_segments()


@pytest.fixture(scope="session")
def default_rules(default_config: SegmentConfig) -> CompiledRules:
    return compile_rules(default_config)
