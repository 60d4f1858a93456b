"""What timeframe bars have, told from their open times alone.

The bar size is the most common gap between consecutive bars: sessions, nights, weekends,
holidays and missing bars only add longer gaps, which never outnumber the gaps inside the
sessions (a week of daily bars has four one-day gaps and one of three days; a US equity day of
M5 bars has 77 five-minute gaps and one overnight). Daily gaps count as one day from 23 to 25
hours, so daily bars stamped at local midnight survive daylight-saving changes.

The answer is refused (``timeframe`` None, ``problem`` says why in one clause) when it would be
a guess: fewer than two bars; a most common gap that is less than a third of the gaps
(irregular times: the US equity H4 bars at 09:30 and 13:30, the sparsest regular case, still
have half); a most common gap that is no timeframe traderunner has (M2, weekly bars); or bars
closer together than that gap (two timeframes mixed, or stray bars), since the bar size can
never exceed the smallest gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from traderunner.domain.timeframe import Timeframe

NS = 1_000_000_000
DAY = 86_400
# A daily gap across a daylight-saving change of local-midnight stamps is 23 or 25 hours.
_DAY_LOW, _DAY_HIGH = DAY - 3600, DAY + 3600
_BY_SECONDS = {tf.seconds: tf for tf in Timeframe}
#: The least share of the gaps the bar size must have.
MIN_SHARE = 1 / 3
KNOWN = " ".join(tf.value for tf in Timeframe)


@dataclass(frozen=True, slots=True)
class Spacing:
    """The gaps between bar open times, and the timeframe they show (None: cannot tell).

    ``common_s`` is the most common gap in seconds (a gap of 23-25 h counts as one day),
    ``common_share`` the fraction of gaps equal to it, ``smallest_s`` the smallest gap and
    ``smallest_at`` the index of the bar that follows it. ``problem`` is empty when
    ``timeframe`` is set, else one clause saying why it is not.
    """

    timeframe: Timeframe | None
    bars: int
    common_s: int
    common_share: float
    smallest_s: int
    smallest_at: int
    problem: str

    def describe(self) -> str:
        """E.g. ``most common gap 1 day (78% of 259 gaps), smallest 1 day``."""
        if self.bars < 2:
            return f"{self.bars} bar(s), no gap"
        return (
            f"most common gap {duration(self.common_s)} ({self.common_share:.0%} of "
            f"{self.bars - 1:,} gaps), smallest {duration(self.smallest_s)}"
        )


def infer_timeframe(ts_ns: npt.ArrayLike) -> Spacing:
    """The timeframe of bars opening at ``ts_ns`` (int64 ns, strictly increasing).

    Pure and vectorised; see the module docstring for the rule and when it refuses.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    n = len(ts)
    if n < 2:
        return Spacing(None, n, 0, 0.0, 0, 0, f"{n} bar(s) are too few to tell the timeframe")
    gaps = np.diff(ts) // NS
    daily = (gaps >= _DAY_LOW) & (gaps <= _DAY_HIGH)
    folded = np.where(daily, DAY, gaps)
    values, counts = np.unique(folded, return_counts=True)
    best = int(np.argmax(counts))  # ties: the smaller gap (np.unique sorts)
    common = int(values[best])
    share = float(counts[best]) / len(gaps)
    at = int(np.argmin(gaps))
    smallest = int(gaps[at])
    found = _BY_SECONDS.get(common)

    def spacing(tf: Timeframe | None, problem: str) -> Spacing:
        return Spacing(tf, n, common, share, smallest, at + 1, problem)

    if share < MIN_SHARE:
        return spacing(
            None,
            f"the bar times are irregular: the most common gap, {duration(common)}, is only "
            f"{share:.0%} of the gaps",
        )
    if found is None:
        return spacing(
            None,
            f"the most common gap between bars, {duration(common)}, is no timeframe "
            f"traderunner has ({KNOWN})",
        )
    floor = _DAY_LOW if found is Timeframe.D1 else found.seconds
    if smallest < floor:
        return spacing(
            None,
            f"bars are mostly {duration(common)} apart ({share:.0%} of the gaps) but bar "
            f"{at + 2} is only {duration(smallest)} after the one before: the data mixes "
            "timeframes or has stray bars",
        )
    return spacing(found, "")


def duration(seconds: int) -> str:
    """``45 s``, ``5 min``, ``2 min 17 s``, ``1 h``, ``1 h 30 min``, ``1 day``, ``3 days``."""
    s = int(seconds)
    if s % DAY == 0 and s:
        days = s // DAY
        return f"{days} day" + ("s" if days > 1 else "")
    parts = []
    for size, unit in ((DAY, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if s >= size:
            parts.append(f"{s // size} {unit}")
            s %= size
    return " ".join(parts[:2]) or "0 s"
