"""Candle series held in process: each read checks the store's series row, then reads only
what was appended since.

A series copy is valid for one store *generation* (see ``store/candles.py``): within it the
series only grows at its end, so a copy of its first ``n`` bars stays right forever and needs
only the bars after them. There is nothing to invalidate: every read of
:meth:`MarketCache.series <traderunner.cache.MarketCache.series>` reads the series row (count,
generation) anyway, and the copy answers only when its generation is the row's and it has at
least ``count`` bars; a shorter copy is extended from Redis (``GETRANGE`` of the missing
bars) or, failing that, from the store.

Columns live in buffers with spare room at the end. A read gets views of the first ``count``
bars; an extension writes only past every view handed out (or into new, bigger buffers), so
no caller ever sees its arrays change. Like every ``CandleArrays``, they must not be mutated.
Memory is bounded: least recently read series go first, and a series bigger than the bound
is not held at all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from traderunner.domain.candles import COLUMNS

NAMES = ("ts", *COLUMNS)
BYTES_PER_BAR = 8 * len(NAMES)
#: Default bound of the series held by one process (a 1,000,000-bar series is 48 MB).
MAX_HELD_BYTES = 256 * 2**20
_GROWTH = 1.25  # capacity grows by a quarter (and some): amortised O(1) appends, little slack
_SLACK_BARS = 1024

Columns = dict[str, np.ndarray]


class _Held:
    __slots__ = ("buffers", "generation", "n")

    def __init__(self, generation: int, columns: Mapping[str, np.ndarray]) -> None:
        self.generation = generation
        self.n = len(columns["ts"])
        # Exactly sized (most series are never appended to in this process), and taken over
        # as they are: the caller's arrays are fresh and, like all candles, never mutated.
        self.buffers: Columns = {name: np.ascontiguousarray(columns[name]) for name in NAMES}

    @property
    def capacity(self) -> int:
        return len(self.buffers["ts"])

    @property
    def nbytes(self) -> int:
        return self.capacity * BYTES_PER_BAR

    def view(self, count: int) -> Columns:
        return {name: buf[:count] for name, buf in self.buffers.items()}

    def extend(self, columns: Mapping[str, np.ndarray]) -> None:
        k = len(columns["ts"])
        end = self.n + k
        if end > self.capacity:
            size = max(end, int(self.capacity * _GROWTH) + _SLACK_BARS)
            grown: Columns = {}
            for name, buf in self.buffers.items():
                bigger = np.empty(size, dtype=buf.dtype)
                bigger[: self.n] = buf[: self.n]
                grown[name] = bigger
            # Views of the old buffers keep them alive, unchanged.
            self.buffers = grown
        for name in NAMES:
            self.buffers[name][self.n : end] = columns[name]
        self.n = end


class HeldSeries:
    """Series copies of this process, at most ``max_bytes`` in all; thread-safe."""

    def __init__(self, max_bytes: int = MAX_HELD_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._held: OrderedDict[tuple[str, str], _Held] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._held)

    @property
    def nbytes(self) -> int:
        """Bytes of the buffers held now."""
        return self._bytes

    def get(self, symbol: str, timeframe: str, generation: int, count: int) -> tuple[Columns, int]:
        """(views of up to ``count`` bars, bars held) for that generation; ({}, 0) if none."""
        with self._lock:
            held = self._held.get((symbol, timeframe))
            if held is None or held.generation != generation:
                return {}, 0
            self._held.move_to_end((symbol, timeframe))
            return held.view(min(count, held.n)), held.n

    def hold(
        self, symbol: str, timeframe: str, generation: int, columns: Mapping[str, np.ndarray]
    ) -> None:
        """Keep ``columns`` (all bars of that generation from the first one on; the arrays are
        taken over, not copied), replacing any copy of another generation or with fewer bars."""
        n = len(columns["ts"])
        if n * BYTES_PER_BAR > self.max_bytes:
            self.drop(symbol, timeframe)
            return
        with self._lock:
            old = self._held.get((symbol, timeframe))
            if old is not None and old.generation == generation and old.n >= n:
                return
        with self._lock:
            self._put((symbol, timeframe), _Held(generation, columns))

    def extend(
        self,
        symbol: str,
        timeframe: str,
        generation: int,
        at: int,
        columns: Mapping[str, np.ndarray],
    ) -> bool:
        """Append ``columns`` (bars ``at`` ... of that generation) to the copy, if it holds
        exactly ``at`` bars of it (else another thread got there first: nothing to do)."""
        with self._lock:
            held = self._held.get((symbol, timeframe))
            if held is None or held.generation != generation or held.n != at:
                return False
            before = held.nbytes
            held.extend(columns)
            self._bytes += held.nbytes - before
            self._held.move_to_end((symbol, timeframe))
            self._evict()
            return (symbol, timeframe) in self._held

    def drop(self, symbol: str, timeframe: str) -> None:
        """Forget the copy of that series (a rewrite or a delete made it useless)."""
        with self._lock:
            held = self._held.pop((symbol, timeframe), None)
            if held is not None:
                self._bytes -= held.nbytes

    def clear(self) -> None:
        with self._lock:
            self._held.clear()
            self._bytes = 0

    def _put(self, key: tuple[str, str], held: _Held) -> None:
        old = self._held.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._held[key] = held
        self._bytes += held.nbytes
        self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._held:
            _, gone = self._held.popitem(last=False)
            self._bytes -= gone.nbytes
