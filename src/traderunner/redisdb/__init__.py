"""Redis layer: the schema (keys.py), connections, and the embedded Valkey servers."""

from traderunner.redisdb.connection import (
    RedisClients,
    RedisUrls,
    check_durable,
    connect,
    mask_url,
    open_clients,
    resolve_urls,
)
from traderunner.redisdb.embedded import EmbeddedServer, embedded_servers
from traderunner.redisdb.keys import Keys

__all__ = [
    "EmbeddedServer",
    "Keys",
    "RedisClients",
    "RedisUrls",
    "check_durable",
    "connect",
    "embedded_servers",
    "mask_url",
    "open_clients",
    "resolve_urls",
]
