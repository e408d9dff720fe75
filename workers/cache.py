"""A content-addressed response cache: identical (model, request, sample) → the paid answer."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Protocol

from evo.llm import LLMResponse


class ResponseCache(Protocol):
    def get(self, key: str) -> LLMResponse | None: ...

    def put(self, key: str, response: LLMResponse) -> None: ...


class MemoryCache:
    """LRU bounded by entry count. Failed responses are never cached: a retry may succeed."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, LLMResponse] = OrderedDict()

    def get(self, key: str) -> LLMResponse | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        self._data.move_to_end(key)
        return replace(hit, cached=True, latency_s=0.0)

    def put(self, key: str, response: LLMResponse) -> None:
        if response.error is not None:
            return
        self._data[key] = response
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
