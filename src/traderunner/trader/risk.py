"""Risk checks, made before every order; each one configurable and off by default.

=========================  =====================================================================
check                      refuses an order when
=========================  =====================================================================
``trading_hours``          its bar is outside ``trader_hours`` (any order, exits included: the
                           market is closed)
``kill_switch``            the kill switch is set (``trader halt`` or the daily loss limit)
``max_position_value``     the sleeve would be sized above ``trader_max_position_value``
``max_gross_exposure``     the account's gross exposure would exceed ``trader_max_gross_exposure``
``max_orders_per_minute``  the account placed ``trader_max_orders_per_minute`` orders in the last
                           60 s (the cluster-wide rate limiter)
=========================  =====================================================================

All but ``trading_hours`` refuse only orders that open or enlarge a position: an exit always
goes through, so a tripped switch stops new risk without trapping the account in its positions.
The size an entry will get is estimated the way the engine sizes it: the sleeve's equity times
``size`` (the fill price is the next bar's open, not known yet). The daily loss limit is checked
after every bar: an account whose equity fell more than ``trader_daily_loss_limit`` below its
opening equity of the (UTC) day trips the kill switch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from traderunner.config import Settings
from traderunner.domain.live import Account, SignalMessage
from traderunner.domain.sessions import SessionHours, in_session
from traderunner.errors import ConfigError, ParameterError
from traderunner.trader.killswitch import KillSwitch

TRADING_HOURS = "trading_hours"
KILL_SWITCH = "kill_switch"
MAX_POSITION_VALUE = "max_position_value"
MAX_GROSS_EXPOSURE = "max_gross_exposure"
MAX_ORDERS_PER_MINUTE = "max_orders_per_minute"


def parse_hours(text: str, tz: str) -> SessionHours | None:
    """``"09:30-16:00"`` in ``tz`` as SessionHours; None for an empty text."""
    if not text.strip():
        return None
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ParameterError("no '-'")
        return SessionHours(tz=tz, open=start.strip(), close=end.strip())  # type: ignore[arg-type]
    except ParameterError as exc:
        raise ConfigError(
            f"invalid setting TRADERUNNER_TRADER_HOURS {text!r}: {exc}; write HH:MM-HH:MM, "
            "e.g. 09:30-16:00 (in TRADERUNNER_TRADER_HOURS_TZ)"
        ) from None


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits; 0 (or no hours) turns a check off."""

    max_position_value: float = 0.0
    max_gross_exposure: float = 0.0
    max_orders_per_minute: int = 0
    daily_loss_limit: float = 0.0
    hours: SessionHours | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskLimits:
        return cls(
            max_position_value=settings.trader_max_position_value,
            max_gross_exposure=settings.trader_max_gross_exposure,
            max_orders_per_minute=settings.trader_max_orders_per_minute,
            daily_loss_limit=settings.trader_daily_loss_limit,
            hours=parse_hours(settings.trader_hours, settings.trader_hours_tz),
        )


def effective(target: int, direction: str) -> int:
    """The part of a target the engine trades for ``direction`` (long, short, both)."""
    if direction == "long":
        return max(target, 0)
    if direction == "short":
        return min(target, 0)
    return target


@dataclass(frozen=True, slots=True)
class Exposure:
    """What the checks need to know about the sleeve and its account."""

    sleeve_equity: float
    size: float
    gross_others: float  # |value| of the account's other sleeves


class RiskChecks:
    """Applies :class:`RiskLimits`. ``take_order`` is the rate limiter's grant for an account
    (``try_acquire`` of a RateLimiter whose subject is the account), None when unlimited."""

    def __init__(
        self,
        limits: RiskLimits,
        kill: KillSwitch,
        take_order: Callable[[str], bool] | None = None,
    ) -> None:
        self.limits = limits
        self.kill = kill
        self.take_order = take_order

    def check(
        self, signal: SignalMessage, direction: str, exposure: Exposure
    ) -> tuple[str, str] | None:
        """``(check, reason)`` of the first check that refuses the order, else None."""
        lim = self.limits
        if lim.hours is not None and not bool(in_session(np.array([signal.bar_ns]), lim.hours)[0]):
            h = lim.hours
            return (
                TRADING_HOURS,
                f"bar {signal.bar_ns} is outside trading hours {h.open:%H:%M}-{h.close:%H:%M} "
                f"{h.tz}",
            )
        new, old = effective(signal.target, direction), effective(signal.previous, direction)
        if new == 0 or new == old:
            return None  # an exit (or nothing to trade): never refused for risk
        state = self.kill.state()
        if state is not None:
            return KILL_SWITCH, f"kill switch set by {state.get('by')}: {state.get('reason')}"
        value = exposure.sleeve_equity * exposure.size
        if lim.max_position_value and value > lim.max_position_value:
            return (
                MAX_POSITION_VALUE,
                f"position of about {value:.2f} would exceed the limit "
                f"{lim.max_position_value:.2f} per symbol",
            )
        gross = exposure.gross_others + value
        if lim.max_gross_exposure and gross > lim.max_gross_exposure:
            return (
                MAX_GROSS_EXPOSURE,
                f"gross exposure of about {gross:.2f} would exceed the limit "
                f"{lim.max_gross_exposure:.2f}",
            )
        take = self.take_order
        if lim.max_orders_per_minute and take is not None and not take(signal.account):
            return (
                MAX_ORDERS_PER_MINUTE,
                f"account {signal.account} placed {lim.max_orders_per_minute} orders in "
                "the last minute",
            )
        return None

    def loss_tripped(self, account: Account) -> str | None:
        """The reason the daily loss limit trips for ``account``, else None."""
        limit = self.limits.daily_loss_limit
        if not limit or account.day_start_equity <= 0:
            return None
        loss = 1.0 - account.equity / account.day_start_equity
        if loss > limit:
            return (
                f"account {account.name} lost {loss:.2%} of its opening equity "
                f"{account.day_start_equity:.2f} on {account.day} (limit {limit:.2%})"
            )
        return None
