"""Lua scripts for token-guarded keys (locks, job claims, heartbeats) and session hashes.

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

#: KEYS[1] a hash, ARGV[1] a field, ARGV[2] its new value, ARGV[3] the new TTL in seconds.
#: When the hash exists: set the field, renew the TTL and return the whole hash (HGETALL's
#: flat list); when it does not, return nil and create nothing (a session that was ended
#: while a request was under way stays ended).
TOUCH_HASH_IF_EXISTS = (
    "if redis.call('exists', KEYS[1]) == 0 then return false end "
    "redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) "
    "redis.call('expire', KEYS[1], ARGV[3]) "
    "return redis.call('hgetall', KEYS[1])"
)
