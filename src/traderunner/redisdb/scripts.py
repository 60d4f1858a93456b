"""Every Lua script traderunner runs, in one place. Keys only through ``KEYS[]``.

Token-guarded keys (locks, job claims, heartbeats): a holder SETs the key NX with its own
token and a TTL. Only the same token may delete or extend it, in one atomic step, so a holder
whose key expired and was taken by someone else never removes or extends the other's.
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

#: A worker claims a job (``jobs/runner.py``) unless a cancel was requested.
#: KEYS[1] the job's heartbeat key, KEYS[2] its cancel flag; ARGV[1] the token, ARGV[2] the
#: TTL in seconds. -1 cancelled, 1 claimed, 0 held by another worker.
CLAIM_UNLESS_CANCELLED = (
    "if redis.call('exists', KEYS[2]) == 1 then return -1 end "
    "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end return 0"
)

#: The cache's stampede guard (``cache/flight.py``): is the value there, else take the fill lock.
#: KEYS[1] the value, KEYS[2] its fill lock; ARGV[1] the token, ARGV[2] the lock TTL in ms,
#: ARGV[3] "1" when the value present is bad (so it must be replaced).
#: 1 the value is there, 2 we hold the lock (load it), 0 another loader holds it.
FILL_OR_LOCK = """
if ARGV[3] ~= '1' and redis.call('exists', KEYS[1]) == 1 then return 1 end
if redis.call('set', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 2 end
return 0
"""
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

#: KEYS[1] a cached candle series, ARGV[1] the length in bytes it must have, ARGV[2] the bytes
#: to append, ARGV[3] its new TTL in s. 1 appended; 0 left alone (missing, or another length:
#: it does not end where the appended bars start, so appending would break it).
APPEND_IF_LENGTH = (
    "if redis.call('strlen', KEYS[1]) == tonumber(ARGV[1]) then "
    "redis.call('append', KEYS[1], ARGV[2]) redis.call('expire', KEYS[1], ARGV[3]) "
    "return 1 end return 0"
)
