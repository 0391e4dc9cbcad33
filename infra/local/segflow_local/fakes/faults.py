"""Seeded fault injection: some requests are answered 429, 500 or slowly, before any state changes."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from typing import Literal

FaultKind = Literal["429", "500", "slow"]
ALL_FAULTS: tuple[FaultKind, ...] = ("429", "500", "slow")


class FaultInjector:
    """Decides per request whether to inject a fault; reproducible for a given seed and request order."""

    def __init__(
        self,
        rate: float = 0.0,
        seed: int | None = None,
        kinds: Sequence[FaultKind] = ALL_FAULTS,
        delay_s: float = 0.05,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")
        unknown = set(kinds) - set(ALL_FAULTS)
        if unknown or not kinds:
            raise ValueError(f"fault kinds must be a non-empty subset of {ALL_FAULTS}")
        self.rate = rate
        self.kinds = tuple(kinds)
        self.delay_s = delay_s
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self) -> FaultKind | None:
        if self.rate <= 0.0:
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            return self._random.choice(self.kinds)
