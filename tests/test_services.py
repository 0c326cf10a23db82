"""The services the test set-up starts itself: a live server on the demo, Redis, Chromium."""

import urllib.request

import redis


def test_live_server_serves_the_demo(live_server: str) -> None:
    with urllib.request.urlopen(f"{live_server}/collections/parcels/items?limit=1") as r:
        assert r.status == 200 and b'"Feature"' in r.read()


def test_private_redis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set("k", "v")
    assert client.get("k") == b"v" and client.connection_pool.connection_kwargs["port"] != 6379
