"""``lazy_njit``: a numba kernel that imports and compiles numba on its first call, not at import.

Strategies (their ``Params``) are imported by processes that never compute a signal: the job
client and the dashboard validate parameters and expand grids with them. Importing numba costs
those processes about 0.3 s and 60 MB for nothing, so the kernels of the built-in indicators
(and any user strategy that wants the same) are declared with :func:`lazy_njit`: the decorated
function is the plain Python function until its first call, which builds the
``numba.njit(**options)`` dispatcher once (thread-safe) and calls it from then on. The on-disk
cache (``cache=True``) works as with ``numba.njit``: it is keyed by the function's file and
qualified name, which are the same.

A lazy kernel can be called from Python only; a kernel that another jitted function calls
must be a plain ``numba.njit`` dispatcher.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def lazy_njit(**options: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Like ``numba.njit(**options)``, compiled on the first call instead of at import."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        lock = threading.Lock()
        compiled: list[Callable[P, R]] = []

        @functools.wraps(func)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            if not compiled:
                with lock:
                    if not compiled:
                        import numba

                        compiled.append(numba.njit(**options)(func))
            return compiled[0](*args, **kwargs)

        call.py_func = func  # type: ignore[attr-defined]  # as on a numba dispatcher
        return call

    return decorate
