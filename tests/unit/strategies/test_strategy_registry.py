"""The registry: built-ins, user plugin folders and entry points, and their error messages."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from tests.builtins import BUILT_IN_STRATEGIES

from traderunner.domain.candles import CandleArrays
from traderunner.errors import StrategyLoadError, UnknownStrategyError
from traderunner.strategies import (
    Strategy,
    available_strategies,
    describe_strategies,
    get_strategy,
    load_strategy_file,
    load_user_strategies,
    register,
    strategy_origin,
)

pytestmark = pytest.mark.usefixtures("fresh_registry")

VALID = '''
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from traderunner.errors import ParameterError
from traderunner.strategies import Strategy, StrategyParams, param
from traderunner.strategies.indicators import shift
from traderunner.strategies.sma_cross import SmaCross  # imported, so not registered again

LOADS = []
LOADS.append(1)


@dataclass(frozen=True, slots=True)
class MomentumParams(StrategyParams):
    lookback: int = param(5, low=1, high=100, doc="bars to look back")
    threshold: float = param(0.0, low=0.0, high=1.0, doc="minimum return to go long")


class Base(Strategy):
    """A helper base without a name: ignored."""

    def indicators(self, candles):
        return {{}}

    def signals(self, candles, indicators):
        return np.zeros(len(candles), dtype=np.int8)


class Momentum(Base):
    """+1 when the close is above its value lookback bars ago by more than threshold."""

    name = "{name}"
    description = "test momentum"
    Params = MomentumParams

    @property
    def warmup_bars(self):
        return self.params.lookback

    def indicators(self, candles):
        past = shift(candles.close, self.params.lookback)
        return {{"ret": candles.close / past - 1.0}}

    def signals(self, candles, indicators):
        with np.errstate(invalid="ignore"):
            return np.where(indicators["ret"] > self.params.threshold, 1, 0).astype(np.int8)
'''


def write(folder: Path, filename: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(textwrap.dedent(text))
    return path


def candles(n: int = 200) -> CandleArrays:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    ts = (np.arange(n, dtype=np.int64) + 19_000) * 86_400 * 10**9
    return CandleArrays(ts=ts, open=close, high=close, low=close, close=close, volume=close)


def load_error(dirs: list[Path]) -> str:
    with pytest.raises(StrategyLoadError) as err:
        load_user_strategies(dirs, entry_points=False)
    message = str(err.value)
    assert "\n" not in message
    return message


# --- built-ins and lookup -------------------------------------------------------------------


def test_builtins_are_listed_sorted_with_their_origin() -> None:
    names = list(available_strategies())
    assert names == sorted(names)
    assert set(BUILT_IN_STRATEGIES) <= set(names)
    assert all(strategy_origin(n) == "built-in" for n in names)
    listing = describe_strategies()
    json.dumps(listing)  # JSON-safe for the dashboard and the CLI
    sma = next(d for d in listing if d["name"] == "sma_cross")
    assert [p["name"] for p in sma["params"]] == ["fast", "slow", "mode"]
    assert sma["params"][0]["bounds"] == "[1, 1000]"
    assert sma["params"][2]["default"] == "cross"
    assert sma["params"][2]["bounds"] == "cross|regime"


def test_unknown_name_lists_the_known_ones_and_suggests_the_closest() -> None:
    with pytest.raises(UnknownStrategyError) as err:
        get_strategy("sma_crosss")
    message = str(err.value)
    assert message.startswith("unknown strategy 'sma_crosss'; available: bollinger_reversion, ")
    assert "did you mean 'sma_cross'?" in message
    with pytest.raises(UnknownStrategyError) as err:
        get_strategy("zzzz")
    assert "did you mean" not in str(err.value)


def test_lookup_is_case_insensitive_as_a_fallback() -> None:
    assert get_strategy(" SMA_Cross ") is get_strategy("sma_cross")


# --- plugin folders -------------------------------------------------------------------------


def test_a_plugin_folder_registers_its_strategies(tmp_path: Path) -> None:
    path = write(tmp_path / "plugins", "momentum.py", VALID.format(name="my_momentum"))
    assert load_user_strategies([tmp_path / "plugins"], entry_points=False) == ["my_momentum"]
    cls = get_strategy("my_momentum")
    assert strategy_origin("my_momentum") == str(path.resolve())
    assert "base" not in available_strategies()
    strategy = cls({"lookback": "3"})
    target = strategy.target_positions(candles())
    assert not target[:3].any()
    assert set(np.unique(target).tolist()) == {0, 1}
    # Loading again (also the single file) does not import the file again.
    assert load_user_strategies([tmp_path / "plugins"], entry_points=False) == ["my_momentum"]
    assert load_strategy_file(path) == ["my_momentum"]
    assert get_strategy("my_momentum") is cls
    assert sys.modules[cls.__module__].LOADS == [1]
    listing = {d["name"]: d for d in describe_strategies()}
    assert listing["my_momentum"]["origin"] == str(path.resolve())


def test_two_files_with_the_same_file_name_in_different_folders(tmp_path: Path) -> None:
    write(tmp_path / "a", "strat.py", VALID.format(name="first_one"))
    write(tmp_path / "b", "strat.py", VALID.format(name="second_one"))
    names = load_user_strategies([tmp_path / "a", tmp_path / "b"], entry_points=False)
    assert names == ["first_one", "second_one"]
    assert get_strategy("first_one") is not get_strategy("second_one")


def test_missing_folder_says_so(tmp_path: Path) -> None:
    message = load_error([tmp_path / "nope"])
    assert f"strategy folder {tmp_path / 'nope'} does not exist" in message
    assert "TRADERUNNER_STRATEGY_PATH" in message


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "p", "broken.py", "import numpy\n\ndef oops(:\n    pass\n")
    message = load_error([tmp_path / "p"])
    assert str(path.resolve()) in message
    assert "SyntaxError" in message
    assert "(line 3)" in message
    assert not any(name.startswith("traderunner_user_strategies.broken") for name in sys.modules)


def test_error_at_import_names_the_error_and_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "p", "raises.py", "X = 1\n\n\nraise RuntimeError('no data feed')\n")
    message = load_error([tmp_path / "p"])
    assert f"cannot load strategy file {path.resolve()}" in message
    assert "RuntimeError: no data feed (line 4)" in message


def test_error_inside_a_function_called_at_import_points_at_the_users_line(
    tmp_path: Path,
) -> None:
    text = "def setup():\n    return {}['missing']\n\nCONFIG = setup()\n"
    write(tmp_path / "p", "keyerr.py", text)
    message = load_error([tmp_path / "p"])
    assert "KeyError: 'missing' (line 2)" in message


def test_params_that_is_not_a_dataclass(tmp_path: Path) -> None:
    text = VALID.format(name="bad_params").replace(
        "@dataclass(frozen=True, slots=True)\nclass MomentumParams(StrategyParams):",
        "class MomentumParams(StrategyParams):",
    )
    path = write(tmp_path / "p", "badparams.py", text)
    message = load_error([tmp_path / "p"])
    assert f"class Momentum in {path.resolve()} (line " in message
    assert "Params must be a @dataclass(frozen=True, slots=True) subclassing StrategyParams" in (
        message
    )
    assert "bad_params" not in available_strategies()


def test_params_whose_defaults_are_out_of_bounds(tmp_path: Path) -> None:
    text = VALID.format(name="bad_default").replace("param(5, low=1", "param(0, low=1")
    write(tmp_path / "p", "baddefault.py", text)
    message = load_error([tmp_path / "p"])
    assert "its Params cannot be built from the defaults" in message
    assert "ParameterError: parameter 'lookback'=0 is below its minimum 1" in message


def test_params_with_an_unsupported_type(tmp_path: Path) -> None:
    text = VALID.format(name="bad_type").replace(
        "threshold: float = param(0.0", "threshold: list = param(None"
    )
    write(tmp_path / "p", "badtype.py", text)
    assert "parameter(s) threshold must be annotated int, float, bool or str" in load_error(
        [tmp_path / "p"]
    )


def test_a_strategy_missing_a_method(tmp_path: Path) -> None:
    text = """
    from traderunner.strategies import Strategy

    class Half(Strategy):
        name = "half"

        def indicators(self, candles):
            return {}
    """
    write(tmp_path / "p", "half.py", text)
    assert "class Half in" in (message := load_error([tmp_path / "p"]))
    assert "implement the method(s) signals" in message


def test_name_clashes_with_a_builtin_and_between_files(tmp_path: Path) -> None:
    write(tmp_path / "p", "clash.py", VALID.format(name="sma_cross"))
    assert "strategy name 'sma_cross' is taken by the built-in strategy" in load_error(
        [tmp_path / "p"]
    )
    first = write(tmp_path / "q", "one.py", VALID.format(name="dup"))
    write(tmp_path / "r", "two.py", VALID.format(name="dup"))
    load_user_strategies([tmp_path / "q"], entry_points=False)
    message = load_error([tmp_path / "r"])
    assert f"strategy name 'dup' is already registered from {first.resolve()}" in message
    assert strategy_origin("dup") == str(first.resolve())


def test_a_bad_name(tmp_path: Path) -> None:
    write(tmp_path / "p", "spaces.py", VALID.format(name="my strategy"))
    assert "name must be a word" in load_error([tmp_path / "p"])


def test_register_a_class_from_code() -> None:
    class Flat(Strategy):
        name = "flat_from_code"

        def indicators(self, candles: CandleArrays) -> dict[str, np.ndarray]:
            return {}

        def signals(self, candles: CandleArrays, indicators: dict[str, np.ndarray]) -> np.ndarray:
            return np.zeros(len(candles), dtype=np.int8)

    assert register(Flat) == "flat_from_code"
    assert register(Flat) == "flat_from_code"  # idempotent
    assert get_strategy("flat_from_code") is Flat

    class Other(Flat):
        name = "flat_from_code"

    with pytest.raises(StrategyLoadError, match="already registered from code"):
        register(Other)
    register(Other, replace=True)
    assert get_strategy("flat_from_code") is Other
    with pytest.raises(StrategyLoadError, match="taken by the built-in"):
        register(type("Sneaky", (Other,), {"name": "macd"}), replace=True)


# --- entry points ---------------------------------------------------------------------------


def make_distribution(site: Path, package: str, entry_points: str, files: dict[str, str]) -> None:
    """A real installed distribution: a package plus its ``.dist-info`` on ``site``."""
    for rel, text in files.items():
        write(site / package, rel, text)
    info = site / f"{package}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def test_entry_points_pointing_at_a_class_and_at_a_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    make_distribution(
        site,
        "trplug_good",
        """
        [traderunner.strategies]
        momo = trplug_good:Momentum
        more = trplug_good.more
        """,
        {
            "__init__.py": VALID.format(name="ep_momentum"),
            "more.py": VALID.format(name="ep_more"),
        },
    )
    monkeypatch.syspath_prepend(str(site))
    assert "ep_momentum" not in available_strategies()
    assert load_user_strategies([], entry_points=False) == []
    names = load_user_strategies()
    assert names == ["ep_momentum", "ep_more"] or names == ["ep_more", "ep_momentum"]
    assert get_strategy("ep_momentum").__module__ == "trplug_good"
    assert strategy_origin("ep_more") == "entry point 'more = trplug_good.more' of trplug_good"
    assert sorted(load_user_strategies()) == ["ep_momentum", "ep_more"]  # idempotent


def test_a_broken_entry_point_names_it_and_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    make_distribution(
        site,
        "trplug_broken",
        """
        [traderunner.strategies]
        boom = trplug_broken.strat:Boom
        """,
        {"__init__.py": "", "strat.py": "import math\n\nVALUE = math.sqrt(-1)\n"},
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(StrategyLoadError) as err:
        load_user_strategies()
    message = str(err.value)
    assert "\n" not in message
    assert "entry point 'boom = trplug_broken.strat:Boom' of trplug_broken" in message
    assert "ValueError: math domain error" in message
    assert f"{site / 'trplug_broken' / 'strat.py'}, line 3" in message
    assert "fix or uninstall trplug_broken" in message


def test_an_entry_point_at_something_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    make_distribution(
        site,
        "trplug_odd",
        """
        [traderunner.strategies]
        odd = trplug_odd:VALUE
        """,
        {"__init__.py": "VALUE = 42\n"},
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(StrategyLoadError, match="points at 42, which is neither a Strategy"):
        load_user_strategies()
