"""One exception tree for traderunner, sorted by what the caller should do.

::

    TraderunnerError                 base; never raised itself
    ├── UserInputError               the caller gave something wrong: fix the input and retry
    │   ├── UnknownStrategyError     no strategy with that name (lists the known ones)
    │   │   └── StrategyUnavailableError  workers run, none has it: start one that has it
    │   ├── ParameterError           unknown parameter, wrong type or out of bounds
    │   ├── OptionError              bad engine option (fill, direction, size, fees, stops)
    │   ├── DataRangeError           bad or empty date range, unknown symbol or timeframe
    │   ├── QuotaError               a rate-limit quota or request cost that can never be met
    │   ├── DataFileError            an import file that cannot be used (says which row and why)
    │   └── PermissionDeniedError    another user's job or run: only its owner or an admin may
    ├── StrategyError                a strategy (built-in or user plugin) failed: fix the strategy
    │   └── StrategyLoadError        a user strategy file or entry point could not be loaded
    ├── StoreError                   the SQL store failed or is unreachable: check its URL/server
    ├── ProviderError                the external market-data API failed (after retries)
    │   ├── ProviderAuthError        token missing or refused: set TRADERUNNER_EODHD_TOKEN
    │   ├── ProviderPlanError        the plan does not include that data: upgrade or ask less
    │   └── ProviderResponseError    5xx after bounded retries, or a malformed response
    ├── RateLimitedError             a quota is used up; ``retry_after`` says when to try again
    ├── RedisError                   a Redis server is unreachable, refused or misbehaved
    │   ├── RedisFullError           the durable Redis is full (noeviction): nothing was submitted
    │   └── UnsafeRedisError         the durable Redis could evict or lose work: fix its config
    ├── MessageError                 a bus message that cannot be used (bad JSON, unknown type
    │                                or version, not JSON-able): dead-lettered, never retried
    ├── CancelledError               the work was cancelled on request: nothing to fix
    └── ConfigError                  settings are invalid: fix the environment / config file

Every message is one line that says what is wrong and what to do about it; the CLI prints it
as is and exits non-zero, never with a traceback.
"""

from __future__ import annotations


class TraderunnerError(Exception):
    """Base class of every error traderunner raises on purpose."""


class UserInputError(TraderunnerError):
    """The caller's input is wrong; nothing was written or enqueued."""


class UnknownStrategyError(UserInputError):
    """No strategy is registered under the requested name."""


class StrategyUnavailableError(UnknownStrategyError):
    """Workers are running and none of them has the strategy loaded; nothing was enqueued."""


class ParameterError(UserInputError):
    """A strategy parameter is unknown, of the wrong type or outside its bounds."""


class OptionError(UserInputError):
    """An engine option (fill, direction, size, costs, stops) is invalid."""


class DataRangeError(UserInputError):
    """The requested data does not exist: unknown symbol/timeframe, bad or empty period."""


class QuotaError(UserInputError):
    """A quota or a request cost that can never be satisfied (bad limit, window, name or cost)."""


class DataFileError(UserInputError):
    """An import file is unusable; the message names the file, the row and the fix."""


class PermissionDeniedError(UserInputError):
    """The acting user may not change this job or run: it is another user's, and they are not
    an admin. Nothing was changed."""


class StrategyError(TraderunnerError):
    """A strategy raised or returned something the engine cannot use."""


class StrategyLoadError(StrategyError):
    """A user strategy (plugin folder or entry point) failed to load; names the file."""


class StoreError(TraderunnerError):
    """The SQL store failed or could not be reached."""


class ProviderError(TraderunnerError):
    """The external market-data provider failed; the message says what and what to do."""


class ProviderAuthError(ProviderError):
    """The provider refused the API token (or none is configured)."""


class ProviderPlanError(ProviderError):
    """The provider's plan does not include the requested data."""


class ProviderResponseError(ProviderError):
    """Server errors after bounded retries, or a response that is not what the API promises."""


class RateLimitedError(TraderunnerError):
    """A rate-limit quota is used up; ``retry_after`` is the wait in seconds (None: unknown)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaSpentError(RateLimitedError):
    """The provider's quota is spent until ``resets_at`` (Unix seconds, UTC): wait for it."""

    def __init__(self, message: str, resets_at: float) -> None:
        import time

        super().__init__(message, retry_after=max(0.0, resets_at - time.time()))
        self.resets_at = resets_at


class RedisError(TraderunnerError):
    """A Redis/Valkey server could not be reached, started or used; says what to check."""


class RedisFullError(RedisError):
    """The durable Redis refused a write because it is full (noeviction at maxmemory)."""


class UnsafeRedisError(RedisError):
    """The durable Redis has an eviction policy or persistence that could lose queued work."""


class MessageError(TraderunnerError):
    """A bus message is unusable; ``reason`` is its short code (``bad_json``, ``unknown_type``...).

    A consumer dead-letters such an entry with the reason and carries on; a publisher raises it
    for a payload JSON cannot hold (NaN, a set, an object), before anything is sent.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CancelledError(TraderunnerError):
    """Work stopped because its ``should_stop`` callback (a cancel request) said so."""


class ConfigError(TraderunnerError):
    """The settings are invalid."""
