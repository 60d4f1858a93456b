"""The strategy registry: built-ins plus user strategies from plugin folders and entry points.

Built-ins are registered when this module is imported. User strategies are registered only
when asked, by :func:`load_user_strategies`:

* from folders (``TRADERUNNER_STRATEGY_PATH``): every ``*.py`` file is imported as its own
  module, and every :class:`Strategy` subclass *defined in that file* that sets its own
  non-empty ``name`` is registered (helper base classes without a name, and classes imported
  from elsewhere, are ignored);
* from the ``traderunner.strategies`` entry-point group of installed distributions: each entry
  point names a Strategy subclass (``my_pkg.strategies:MyStrategy``) or a module (all of its
  named Strategy subclasses are registered).

Anything that cannot be used — a file that fails to import, an abstract class, a ``Params``
that is not a :class:`StrategyParams` dataclass or whose defaults are invalid, a name that is
already taken — raises :class:`StrategyLoadError` with one line naming the file (or entry
point), the line and the original error. Loading the same file or entry point again is a
no-op. The registry is process-wide and thread-safe.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from traderunner.errors import StrategyLoadError, UnknownStrategyError
from traderunner.strategies.base import SUPPORTED_INTERFACE_VERSIONS, Strategy, StrategyParams
from traderunner.strategies.bollinger_reversion import BollingerReversion
from traderunner.strategies.donchian_breakout import DonchianBreakout
from traderunner.strategies.ema_cross import EmaCross
from traderunner.strategies.macd import Macd
from traderunner.strategies.opening_range_breakout import OpeningRangeBreakout
from traderunner.strategies.rsi_reversion import RsiReversion
from traderunner.strategies.sma_cross import SmaCross

ENTRY_POINT_GROUP = "traderunner.strategies"
BUILTIN = "built-in"
_MODULE_PREFIX = "traderunner_user_strategies"
_PARAM_TYPES = (int, float, bool, str)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

_BUILTINS: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        SmaCross,
        EmaCross,
        Macd,
        RsiReversion,
        BollingerReversion,
        DonchianBreakout,
        OpeningRangeBreakout,
    )
}

_lock = threading.RLock()
_user: dict[str, tuple[type[Strategy], str]] = {}  # name -> (class, where it came from)
_loaded_files: dict[Path, list[str]] = {}
_loaded_entry_points: dict[str, list[str]] = {}


def available_strategies() -> dict[str, type[Strategy]]:
    """Built-ins and every user strategy loaded so far, sorted by name."""
    with _lock:
        merged = dict(_BUILTINS)
        merged.update({name: cls for name, (cls, _) in _user.items()})
    return dict(sorted(merged.items()))


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered as ``name`` (exact, else case-insensitive).

    Raises UnknownStrategyError listing the known names, with the closest one suggested.
    """
    known = available_strategies()
    key = str(name).strip()
    found = known.get(key) or {k.lower(): v for k, v in known.items()}.get(key.lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(key.lower(), list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownStrategyError(f"unknown strategy {name!r}; available: {', '.join(known)}{hint}")


def strategy_origin(name: str) -> str:
    """Where a registered strategy came from: ``built-in``, a file path or an entry point."""
    cls = get_strategy(name)
    with _lock:
        entry = _user.get(cls.name)
    return entry[1] if entry is not None else BUILTIN


def register(cls: type[Strategy], *, origin: str = "code", replace: bool = False) -> str:
    """Validate ``cls`` and register it under ``cls.name``; returns the name.

    Registering the same class again is a no-op. A different class under a taken name raises
    StrategyLoadError unless ``replace`` is true (built-ins can never be replaced).
    """
    _validate(cls, origin)
    with _lock:
        _claim_names([cls], origin, replace=replace)
    return cls.name


def load_user_strategies(dirs: Sequence[Path] = (), *, entry_points: bool = True) -> list[str]:
    """Register the strategies of every ``*.py`` file in ``dirs`` and of the entry points.

    Returns the names found in those sources, in load order (also those loaded by an earlier
    call: loading is idempotent). A missing folder, a broken file or entry point raises
    StrategyLoadError; strategies loaded before the error stay registered.
    """
    names: list[str] = []
    for folder in dirs:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise StrategyLoadError(
                f"strategy folder {path} does not exist: create it or fix TRADERUNNER_STRATEGY_PATH"
            )
        for file in sorted(path.glob("*.py")):
            names.extend(load_strategy_file(file))
    if entry_points:
        names.extend(_load_entry_points())
    return list(dict.fromkeys(names))


def load_strategy_file(path: Path) -> list[str]:
    """Import one user strategy file and register its strategies; returns their names."""
    key = Path(path).expanduser().resolve()
    with _lock:
        if key in _loaded_files:
            return list(_loaded_files[key])
        if not key.is_file():
            raise StrategyLoadError(f"strategy file {key} does not exist")
        digest = hashlib.sha1(str(key).encode(), usedforsecurity=False).hexdigest()[:12]
        stem = re.sub(r"\W", "_", key.stem)
        module_name = f"{_MODULE_PREFIX}.{stem}_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, key)
        if spec is None or spec.loader is None:
            raise StrategyLoadError(f"cannot import strategy file {key}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        # dataclasses and typing resolve annotations through sys.modules while executing.
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
            classes = _strategies_in(module)
            origin = str(key)
            for cls in classes:
                _validate(cls, origin)
            _claim_names(classes, origin)
        except StrategyLoadError:
            sys.modules.pop(module_name, None)
            raise
        except (Exception, SystemExit) as exc:
            sys.modules.pop(module_name, None)
            raise StrategyLoadError(
                f"cannot load strategy file {key}: {_explain(exc, key)}; fix the file or move it "
                "out of the strategy folder"
            ) from exc
        names = [cls.name for cls in classes]
        _loaded_files[key] = names
        return list(names)


def clear_user_strategies() -> None:
    """Forget every user strategy (built-ins stay); the next load imports files afresh."""
    with _lock:
        _user.clear()
        _loaded_files.clear()
        _loaded_entry_points.clear()
        for name in [m for m in sys.modules if m.startswith(_MODULE_PREFIX + ".")]:
            del sys.modules[name]


def _load_entry_points() -> list[str]:
    names: list[str] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"{ep.name} = {ep.value}"
        with _lock:
            if key in _loaded_entry_points:
                names.extend(_loaded_entry_points[key])
                continue
        dist = getattr(ep, "dist", None)
        dist_name = getattr(dist, "name", None)
        origin = f"entry point {key!r}" + (f" of {dist_name}" if dist_name else "")
        fix = f"fix or uninstall {dist_name}" if dist_name else "fix or remove the entry point"
        try:
            target = ep.load()
        except (Exception, SystemExit) as exc:
            raise StrategyLoadError(
                f"cannot load strategy {origin}: {_explain(exc, None)}; {fix}"
            ) from exc
        if isinstance(target, ModuleType):
            classes = _strategies_in(target)
        elif isinstance(target, type) and issubclass(target, Strategy):
            classes = [target]
        else:
            raise StrategyLoadError(
                f"strategy {origin} points at {target!r}, which is neither a Strategy "
                f"subclass nor a module; {fix}"
            )
        with _lock:
            for cls in classes:
                _validate(cls, origin)
            _claim_names(classes, origin)
            found = [cls.name for cls in classes]
            _loaded_entry_points[key] = found
        names.extend(found)
    return names


def _strategies_in(module: ModuleType) -> list[type[Strategy]]:
    """Strategy subclasses defined in ``module`` (not imported into it) with their own name."""
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Strategy)
        and obj.__module__ == module.__name__
        and obj.__dict__.get("name")
    ]


def _where(cls: type, origin: str) -> str:
    try:
        line = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return f"class {cls.__name__} in {origin}"
    return f"class {cls.__name__} in {origin} (line {line})"


def _validate(cls: type[Strategy], origin: str) -> None:
    """Check that the engine and the dashboard can use ``cls``; StrategyLoadError if not."""
    where = _where(cls, origin)
    if not isinstance(cls, type) or not issubclass(cls, Strategy):
        raise StrategyLoadError(f"{cls!r} from {origin} is not a Strategy subclass")
    name = cls.name
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise StrategyLoadError(
            f"{where}: name must be a word such as 'my_strategy' (letters, digits, _ . -), "
            f"got {name!r}"
        )
    version = cls.interface_version
    if isinstance(version, bool) or version not in SUPPORTED_INTERFACE_VERSIONS:
        supported = " and ".join(str(v) for v in SUPPORTED_INTERFACE_VERSIONS)
        raise StrategyLoadError(
            f"{where}: interface_version {version!r} is not one this traderunner supports "
            f"({supported}); set interface_version = 2 or upgrade traderunner"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise StrategyLoadError(f"{where}: implement the method(s) {missing}")
    params = cls.Params
    if not (
        isinstance(params, type)
        and issubclass(params, StrategyParams)
        and dataclasses.is_dataclass(params)
        and "__dataclass_fields__" in params.__dict__
    ):
        raise StrategyLoadError(
            f"{where}: Params must be a @dataclass(frozen=True, slots=True) subclassing "
            f"StrategyParams, got {params!r}"
        )
    try:
        specs = params.specs()
        bad = [s.name for s in specs if s.type not in _PARAM_TYPES]
        if bad:
            raise StrategyLoadError(
                f"{where}: parameter(s) {', '.join(bad)} must be annotated int, float, bool or str"
            )
        params()
    except StrategyLoadError:
        raise
    except Exception as exc:
        raise StrategyLoadError(
            f"{where}: its Params cannot be built from the defaults: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        ) from exc


def _claim_names(classes: Iterable[type[Strategy]], origin: str, replace: bool = False) -> None:
    """Register all of ``classes`` or none of them (caller holds the lock)."""
    classes = list(classes)
    seen: dict[str, type[Strategy]] = {}
    for cls in classes:
        name = cls.name
        if name in seen and seen[name] is not cls:
            raise StrategyLoadError(
                f"{_where(cls, origin)}: strategy name {name!r} is used twice in the same "
                "source; give each class its own name"
            )
        seen[name] = cls
        if name in _BUILTINS and _BUILTINS[name] is not cls:
            raise StrategyLoadError(
                f"{_where(cls, origin)}: strategy name {name!r} is taken by the built-in "
                "strategy; choose another name"
            )
        taken = _user.get(name)
        if taken is not None and taken[0] is not cls and not replace:
            raise StrategyLoadError(
                f"{_where(cls, origin)}: strategy name {name!r} is already registered from "
                f"{taken[1]}; choose another name"
            )
    for cls in classes:
        if cls.name not in _BUILTINS:
            _user[cls.name] = (cls, origin)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _explain(exc: BaseException, file: Path | None) -> str:
    """``"ZeroDivisionError: division by zero (line 7)"``: the error and where it happened.

    The line is the last traceback frame in ``file`` (the user's own file), or for entry points
    the last frame outside the import machinery.
    """
    kind = type(exc).__name__
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        if exc.filename and (file is None or Path(exc.filename) != file):
            where = f"{exc.filename}, {where}"
        return f"{kind}: {exc.msg} ({where})"
    frames = traceback.extract_tb(exc.__traceback__)
    if file is not None:
        mine = [f for f in frames if Path(f.filename) == file]
    else:
        mine = [
            f
            for f in frames
            if not f.filename.startswith("<")
            and "importlib" not in Path(f.filename).parts
            and Path(f.filename) != Path(__file__)
        ]
    location = ""
    if mine:
        frame = mine[-1]
        shown = "" if file is not None else f"{frame.filename}, "
        location = f" ({shown}line {frame.lineno})"
    return f"{kind}: {_first_line(exc)}{location}"


def describe_strategies() -> list[dict[str, Any]]:
    """JSON-safe name, description, origin and parameters of every strategy (for listings)."""
    out = []
    for name, cls in available_strategies().items():
        out.append(
            {
                "name": name,
                "description": cls.description,
                "origin": strategy_origin(name),
                "intraday": cls.intraday,
                "interface_version": cls.interface_version,
                "params": [
                    {
                        "name": s.name,
                        "type": s.type.__name__,
                        "default": s.default,
                        "bounds": s.describe_bounds(),
                        "choices": list(s.choices) if s.choices else None,
                        "doc": s.doc,
                    }
                    for s in cls.param_specs()
                ],
            }
        )
    return out
