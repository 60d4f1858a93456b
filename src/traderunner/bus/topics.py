"""The topics of the bus and the message types they carry.

A topic is a logical name; its stream, dead-letter stream and Pub/Sub channel are built from it
by ``redisdb/keys.py`` (``bus:{topic}``, ``bus:{topic}:dead``, ``bus:{topic}:live``).

=====================  =========  ===============================================================
topic                  type       published by, read by
=====================  =========  ===============================================================
``candles.{tf}``       ``candle`` the stream service, after the store and the cache have the bar;
                                  read by the trader (fills, stops, marks)
``signals``            ``signal`` the stream service when a strategy's target position changes;
                                  read by the trader (group ``trader``)
=====================  =========  ===============================================================

Payload schemas belong to the services that own them (each type has its version ``v``); this
module only names things, so that publishers and readers spell them once.
"""

from __future__ import annotations

import re

from traderunner.domain.timeframe import Timeframe

SIGNALS = "signals"
SIGNAL = "signal"  # message type on SIGNALS
CANDLE = "candle"  # message type on candles.{tf}

#: Letters, digits, ``_``, ``-`` and ``.``: no ``:`` (the key separator) and no glob characters.
_TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


def candles(timeframe: Timeframe | str) -> str:
    """The candle topic of one timeframe: ``candles.M5``."""
    return f"candles.{Timeframe.parse(timeframe).value}"


def check_topic(topic: str) -> str:
    """``topic`` itself if it is a valid name, else ValueError saying what is allowed."""
    if not _TOPIC.fullmatch(topic):
        raise ValueError(
            f"invalid bus topic {topic!r}: use 1-100 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return topic
