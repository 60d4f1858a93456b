"""Lua scripts for token-guarded keys (locks, job claims and heartbeats), and the cache's
conditional append.

A holder SETs such a key NX with its own token and a TTL. Only the same token may delete or
extend it, in one atomic step, so a holder whose key expired and was taken by someone else
never removes or extends the other's.
"""

from __future__ import annotations

#: KEYS[1] the key, ARGV[1] the token. 1 deleted, 0 not held by this token.
RELEASE_IF_HELD = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)

#: KEYS[1] the key, ARGV[1] the token, ARGV[2] the new TTL in ms. 1 extended, 0 not held.
PEXPIRE_IF_HELD = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)

#: KEYS[1] a cached candle series, ARGV[1] the length in bytes it must have, ARGV[2] the bytes
#: to append, ARGV[3] its new TTL in s. 1 appended; 0 left alone (missing, or another length:
#: it does not end where the appended bars start, so appending would break it).
APPEND_IF_LENGTH = (
    "if redis.call('strlen', KEYS[1]) == tonumber(ARGV[1]) then "
    "redis.call('append', KEYS[1], ARGV[2]) redis.call('expire', KEYS[1], ARGV[3]) "
    "return 1 end return 0"
)
