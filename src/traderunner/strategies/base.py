"""The strategy interface (version 2), shared by backtests and the live stream service.

A strategy is a class with

* ``name``: the registry name (``sma_cross``), ``description``: one line for listings;
* ``Params``: a frozen dataclass subclassing :class:`StrategyParams` whose fields are declared
  with :func:`param` (type from the annotation: int, float, bool or str; bounds; default; doc).
  Construction validates types and bounds, then calls ``check()`` for cross-field rules;
* ``warmup_bars`` (property): how many bars the indicators need before a signal is meaningful.
  The engine forces the target position to 0 before that bar;
* ``waits_for_change`` (property, default False): the run stays flat from the warm-up bar until
  the signal first changes (event rules such as crossings; see :meth:`Strategy.waits_for_change`);
* ``history_bars(timeframe)`` (method, version 2): how many recent bars the live service must
  pass so that ``signals()`` on them gives, on the last bar, the target ``signals()`` gives on
  the whole history (within the strategy's documented tolerance rule);
* ``indicators(candles) -> dict[str, ndarray]``: vectorised, each array as long as the candles;
* ``signals(candles, indicators) -> ndarray``: the *target position* per bar, -1, 0 or 1, where
  element ``t`` may use only bars ``0..t`` (no look-ahead). The engine acts on changes of it.

Both methods must be pure functions of the candles and ``self.params``.

Version 1 strategies (no ``history_bars``, no ``interface_version``) still load: they get
``history_bars = warmup_bars + 1``, the window version 1 promised, which is exact for rules whose
value on a bar depends only on the last ``warmup_bars + 1`` bars.
"""

from __future__ import annotations

import dataclasses
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, get_type_hints

import numpy as np
import numpy.typing as npt

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ParameterError, StrategyError

SignalArray = npt.NDArray[np.int8]
Indicators = dict[str, npt.NDArray[Any]]

#: The interface this traderunner implements. A strategy says which one it was written for
#: with its ``interface_version`` class attribute (1 when it does not say); both load.
INTERFACE_VERSION = 2
SUPPORTED_INTERFACE_VERSIONS = (1, 2)


def param(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    doc: str = "",
) -> Any:
    """Declare a strategy parameter: ``fast: int = param(10, low=2, high=500, doc="...")``."""
    return dataclasses.field(
        default=default, metadata={"low": low, "high": high, "choices": choices, "doc": doc}
    )


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """What a parameter accepts; listed by ``traderunner strategies`` and the dashboard."""

    name: str
    type: type
    default: Any
    low: float | None
    high: float | None
    choices: tuple[str, ...] | None
    doc: str

    def describe_bounds(self) -> str:
        if self.choices:
            return "|".join(self.choices)
        if self.type is bool:
            return "true|false"
        if self.type is str:
            return "text"
        lo = "-inf" if self.low is None else _fmt(self.low)
        hi = "inf" if self.high is None else _fmt(self.high)
        return f"[{lo}, {hi}]"

    def parse(self, raw: Any) -> Any:
        """Convert a CLI/JSON value to this parameter's type, or raise ParameterError."""
        try:
            if self.type is bool:
                if isinstance(raw, bool):
                    return raw
                text = str(raw).strip().lower()
                if text in ("1", "true", "yes", "on"):
                    return True
                if text in ("0", "false", "no", "off"):
                    return False
                raise ValueError(raw)
            if self.type is int:
                if isinstance(raw, bool):
                    raise ValueError(raw)
                if isinstance(raw, float):
                    if not raw.is_integer():
                        raise ValueError(raw)
                    return int(raw)
                return int(str(raw).strip())
            if self.type is float:
                if isinstance(raw, bool):
                    raise ValueError(raw)
                return float(raw)
            return str(raw)
        except (TypeError, ValueError):
            raise ParameterError(
                f"parameter {self.name!r} must be {self.type.__name__}, got {raw!r}"
            ) from None

    def check(self, raw: Any) -> Any:
        """:meth:`parse` ``raw``, then check its choices and bounds; ParameterError otherwise.

        The one-field check (``Params`` construction runs it on every field, then ``check()``
        for the cross-field rules; a form runs it on each field alone)."""
        value = self.parse(raw)
        if self.choices and value not in self.choices:
            raise ParameterError(
                f"parameter {self.name!r} must be one of {', '.join(self.choices)}, got {value!r}"
            )
        if self.type in (int, float):
            if self.low is not None and value < self.low:
                raise ParameterError(
                    f"parameter {self.name!r}={value} is below its minimum "
                    f"{_fmt(self.low)} (bounds {self.describe_bounds()})"
                )
            if self.high is not None and value > self.high:
                raise ParameterError(
                    f"parameter {self.name!r}={value} is above its maximum "
                    f"{_fmt(self.high)} (bounds {self.describe_bounds()})"
                )
        return value


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


#: ``StrategyParams.specs()`` per Params class; weak so reloaded user strategies do not pile up.
_SPECS: weakref.WeakKeyDictionary[type[StrategyParams], tuple[ParamSpec, ...]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True, slots=True)
class StrategyParams:
    """Base of every strategy's ``Params``: validates types and bounds on construction."""

    def __post_init__(self) -> None:
        for spec in type(self).specs():
            value = getattr(self, spec.name)
            checked = spec.check(value)
            if checked != value or type(checked) is not type(value):
                object.__setattr__(self, spec.name, checked)
        self.check()

    def check(self) -> None:
        """Cross-field rules (for example ``fast < slow``); raise ParameterError."""

    @classmethod
    def specs(cls) -> tuple[ParamSpec, ...]:
        """One :class:`ParamSpec` per field, in declaration order (computed once per class)."""
        cached = _SPECS.get(cls)
        if cached is None:
            cached = _SPECS[cls] = cls._build_specs()
        return cached

    @classmethod
    def _build_specs(cls) -> tuple[ParamSpec, ...]:
        # get_type_hints evaluates every annotation string: far too slow to repeat for each
        # Params built (a sweep builds thousands), and the answer never changes for a class.
        hints = get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            out.append(
                ParamSpec(
                    name=f.name,
                    type=hints[f.name],
                    default=f.default,
                    low=f.metadata.get("low"),
                    high=f.metadata.get("high"),
                    choices=f.metadata.get("choices"),
                    doc=f.metadata.get("doc", ""),
                )
            )
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


class Strategy(ABC):
    """Base class of every strategy; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    #: True when the strategy only makes sense on intraday bars (it uses sessions).
    intraday: ClassVar[bool] = False
    #: The interface version the class was written for (see ``SUPPORTED_INTERFACE_VERSIONS``).
    interface_version: ClassVar[int] = 1

    def __init__(self, params: StrategyParams | Mapping[str, Any] | None = None) -> None:
        self.params = type(self).make_params(params)

    @classmethod
    def make_params(
        cls, params: StrategyParams | Mapping[str, Any] | None = None
    ) -> StrategyParams:
        """Build validated Params from None (defaults), a Params or a name→value mapping.

        String values (from the CLI or JSON) are converted to the declared type. Unknown names
        raise ParameterError listing the known ones.
        """
        if params is None:
            return cls.Params()
        if isinstance(params, StrategyParams):
            if not isinstance(params, cls.Params):
                raise ParameterError(
                    f"{cls.name}: expected {cls.__name__}.Params, got {type(params).__name__}"
                )
            return params
        specs = {s.name: s for s in cls.Params.specs()}
        unknown = sorted(set(params) - set(specs))
        if unknown:
            known = ", ".join(specs) or "none"
            raise ParameterError(
                f"unknown parameter(s) {', '.join(unknown)} for strategy {cls.name!r}; "
                f"known: {known}"
            )
        values = {k: specs[k].parse(v) for k, v in params.items()}
        return cls.Params(**values)

    @classmethod
    def param_specs(cls) -> tuple[ParamSpec, ...]:
        return cls.Params.specs()

    @property
    def warmup_bars(self) -> int:
        """Bars needed before the first meaningful signal."""
        return 0

    def history_bars(self, timeframe: Timeframe | None = None) -> int:
        """Recent bars the live service passes so the last bar's signal is the backtest's.

        ``signals()`` computed on the last ``history_bars(timeframe)`` bars up to bar ``t``
        gives on its last bar the value ``signals()`` gives at ``t`` on the whole history,
        within the tolerance rule the strategy documents (docs/strategies.md). ``timeframe``
        is the bars' timeframe (``None``: unknown, the strategy assumes the worst case).
        The default, ``warmup_bars + 1``, is exact for rules whose value on a bar depends
        only on that many bars (no recursion, no state); version 1 strategies get it.
        """
        return max(int(self.warmup_bars), 0) + 1

    @property
    def waits_for_change(self) -> bool:
        """True when a run must not take the position the signal already shows at its start.

        Rules that act on events (a crossing) return their *state* from ``signals()`` (the side
        of the last crossing), which the first bar after the warm-up already has without any
        crossing having happened in the run. With this true, :meth:`target_positions` keeps the
        target at 0 from bar ``warmup_bars`` until the first later bar whose signal differs
        from the signal on bar ``warmup_bars``, so the first position is the first event's. A
        live session applies the same rule from the bar it starts on. Default False.
        """
        return False

    @abstractmethod
    def indicators(self, candles: CandleArrays) -> Indicators:
        """Vectorised indicator arrays, each ``len(candles)`` long."""

    @abstractmethod
    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        """Target position per bar (-1, 0, 1) using only bars up to and including each bar."""

    def checked_signals(self, candles: CandleArrays) -> SignalArray:
        """``signals(candles, indicators(candles))`` checked, NaN as 0, clipped to -1..1, int8.

        No warm-up or start rule is applied: this is the value the ``history_bars`` contract
        is about. Raises StrategyError (naming the strategy) for anything the engine cannot
        use.
        """
        try:
            ind = self.indicators(candles)
            raw = self.signals(candles, ind)
        except (ParameterError, StrategyError):
            raise
        except Exception as exc:
            raise StrategyError(
                f"strategy {self.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        sig = np.asarray(raw)
        if sig.shape != (len(candles),):
            raise StrategyError(
                f"strategy {self.name!r} returned {sig.shape} signals for {len(candles)} bars"
            )
        if sig.dtype.kind == "f":
            sig = np.nan_to_num(sig, nan=0.0)
        # clip returns a new array, so the conversion need not copy it again.
        return np.clip(sig, -1, 1).astype(np.int8, copy=False)

    def target_positions(self, candles: CandleArrays) -> SignalArray:
        """``signals(candles, indicators(candles))`` checked, with the warm-up zeroed.

        When :attr:`waits_for_change` is true the target also stays 0 from the warm-up bar
        until the signal first changes.

        Raises StrategyError (naming the strategy) for anything the engine cannot use.
        """
        out = self.checked_signals(candles)
        n = len(out)
        warm = min(max(int(self.warmup_bars), 0), n)
        out[:warm] = 0
        if self.waits_for_change and warm < n:
            changed = out[warm + 1 :] != out[warm]
            at = int(np.argmax(changed)) if len(changed) else 0  # the first True (or 0)
            stop = warm + 1 + at if len(changed) and changed[at] else n
            out[warm:stop] = 0
        return out
