"""docs/strategies.md stays true: parameter tables match the code, the example really works."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from tests.builtins import BUILT_IN_STRATEGIES

from traderunner.domain.candles import CandleArrays
from traderunner.errors import StrategyLoadError
from traderunner.strategies import get_strategy, load_user_strategies, strategy_origin

DOC = Path(__file__).resolve().parents[3] / "docs" / "strategies.md"


def section(text: str, name: str) -> str:
    start = text.index(f"### {name}\n")
    end = text.find("\n### ", start + 1)
    return text[start : end if end != -1 else len(text)]


@pytest.mark.parametrize("name", BUILT_IN_STRATEGIES)
def test_every_parameter_row_matches_the_code(name: str) -> None:
    part = section(DOC.read_text(), name)
    specs = get_strategy(name).param_specs()
    # A cell may hold an escaped pipe (``cross\|regime``, the choices of a parameter).
    cell = r"((?:[^|\\]|\\\|)+)"
    rows = [
        tuple(c.replace("\\|", "|") for c in row)
        for row in re.findall(
            rf"^\| `(\w+)` \| (\w+) \| {cell} \| {cell} \| {cell} \|$", part, re.M
        )
    ]
    assert [r[0] for r in rows] == [s.name for s in specs]
    for (pname, ptype, default, bounds, doc), spec in zip(rows, specs, strict=True):
        assert ptype == spec.type.__name__, pname
        assert default.strip() == str(spec.default), pname
        assert bounds.strip() == spec.describe_bounds(), pname
        assert doc.strip() == spec.doc, pname


def example_code() -> str:
    text = DOC.read_text()
    start = text.index("## Writing your own strategy")
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)  # type: ignore[union-attr]


@pytest.mark.usefixtures("fresh_registry")
def test_the_example_strategy_loads_and_trades(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "momentum.py").write_text(example_code())
    assert load_user_strategies([folder], entry_points=False) == ["momentum"]
    assert strategy_origin("momentum") == str((folder / "momentum.py").resolve())
    rng = np.random.default_rng(4)
    n = 2000
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))
    ts = (np.arange(n, dtype=np.int64) + 19_000) * 86_400 * 10**9
    candles = CandleArrays(ts=ts, open=close, high=close, low=close, close=close, volume=close)
    target = get_strategy("momentum")({"lookback": 10}).target_positions(candles)
    assert not target[:99].any()
    assert {-1, 1} <= set(target.tolist())


@pytest.mark.usefixtures("fresh_registry")
def test_the_documented_error_message_is_what_loading_gives(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    path = folder / "momentum.py"
    path.write_text(
        example_code().replace("import numpy as np\n", "import numpy as np\nimport talib\n")
    )
    with pytest.raises(StrategyLoadError) as err:
        load_user_strategies([folder], entry_points=False)
    documented = re.search(r"```text\n(cannot load strategy file .*?)\n```", DOC.read_text(), re.S)
    assert documented is not None
    expected = documented.group(1).replace("/home/me/strategies/momentum.py", str(path.resolve()))
    assert str(err.value) == expected
