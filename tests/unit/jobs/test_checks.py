"""jobs/checks.py: every field's error at once, the same checks as a whole-spec validation."""

from __future__ import annotations

from traderunner.jobs.checks import check_fields


def _check(**overrides: object) -> tuple[dict[str, str], dict[str, object]]:
    given: dict[str, object] = {
        "strategy": "sma_cross",
        "symbols": ["AAA"],
        "timeframe": "M5",
        "start": "",
        "end": "",
        "params": {},
        "options": {},
    }
    given.update(overrides)
    return check_fields(**given)  # type: ignore[arg-type]


def test_good_input_has_no_errors_and_parses_values() -> None:
    errors, parsed = _check(
        params={"fast": " 5 ", "slow": ""}, options={"fees_bps": "1.5", "stop_loss": ""}
    )
    assert errors == {}
    assert parsed["params"] == {"fast": 5}  # blank: the default applies
    assert parsed["options"] == {"fees_bps": 1.5}


def test_every_bad_field_is_named_at_once() -> None:
    errors, _ = _check(
        strategy="sma_cross",
        symbols=[],
        timeframe="M7",
        start="2025-13-01",
        params={"fast": "0", "slow": "abc"},
        options={"stop_loss": "2", "direction": "sideways", "size": "x"},
    )
    assert set(errors) == {
        "symbols",
        "timeframe",
        "period",
        "param:fast",
        "param:slow",
        "option:stop_loss",
        "option:direction",
        "option:size",
    }
    assert "below its minimum" in errors["param:fast"]
    assert "must be int" in errors["param:slow"]
    assert "0.02" in errors["option:stop_loss"]


def test_an_unknown_strategy_is_the_strategy_field_s_error() -> None:
    errors, _ = _check(strategy="nope", params={"fast": "1"})
    assert list(errors) == ["strategy"]
    errors, _ = _check(strategy="")
    assert errors["strategy"] == "choose a strategy"


def test_grid_values_are_expanded_and_each_checked() -> None:
    errors, parsed = _check(params=None, grid={"fast": "5:15:5", "slow": "20,40"})
    assert errors == {}
    assert parsed["grid"] == {"fast": [5, 10, 15], "slow": [20, 40]}
    errors, _ = _check(params=None, grid={"fast": "0:10:5", "slow": "1:2:0"})
    assert "below its minimum" in errors["grid:fast"]
    assert "grid:slow" in errors


def test_cross_field_rules_are_left_to_the_whole_spec_check() -> None:
    # fast > slow is not a field's error: JobClient.submit's validation refuses it whole.
    errors, parsed = _check(params={"fast": "60", "slow": "20"})
    assert errors == {} and parsed["params"] == {"fast": 60, "slow": 20}
