#!/usr/bin/env python3
"""The seed workloads (../shared/seeds: redis-py usage guides) run unchanged through real clients.

Every test here is what those guides show users doing with redis-py and django-redis, asserted
with the values Redis gives. Run against any server: `FERRODIS_PORT=6379 python3
tests/python/test_seeds.py` (the Rust test `tests/python_clients.rs` starts ferrodis and runs it).
Needs `pip install redis django django-redis`.
"""
import os
import warnings
import threading
import time
import unittest

import redis
from redis.exceptions import LockError, ResponseError

warnings.simplefilter("ignore", DeprecationWarning)
PORT = int(os.environ.get("FERRODIS_PORT", "6379"))


def client(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, **kw)


class Base(unittest.TestCase):
    def setUp(self):
        self.r = client()
        self.r.flushall()

    def tearDown(self):
        self.r.close()


class Types(Base):
    """The per-type calls of the guides (strings, hashes, lists, sets, sorted sets)."""

    def test_strings(self):
        r = self.r
        self.assertTrue(r.set("foo", "bar"))
        self.assertEqual(r.get("foo"), b"bar")
        self.assertIsNone(r.get("missing"))
        self.assertTrue(r.mset({"s1": 1, "s2": 2}))
        self.assertFalse(r.msetnx({"s1": 1, "s2": 2}))
        self.assertEqual(r.mget("s1", "s2", "nope"), [b"1", b"2", None])
        self.assertEqual(r.mget(["s1", "s2"]), [b"1", b"2"])
        self.assertEqual(r.incr("auto_number"), 1)
        self.assertEqual(r.incrbyfloat("f", 1.5), 1.5)
        self.assertEqual(r.append("foo", "!"), 4)
        self.assertEqual(r.getrange("foo", 0, 1), b"ba")
        self.assertEqual(r.delete("foo"), 1)
        self.assertEqual(r.delete("foo"), 0)

    def test_hashes(self):
        r = self.r
        self.assertEqual(r.hset("xx", mapping={"k1": "v1", "k2": "v2"}), 2)
        self.assertEqual(r.hmget("xx", "k1", "k2"), [b"v1", b"v2"])
        self.assertEqual(r.hgetall("xx"), {b"k1": b"v1", b"k2": b"v2"})
        self.assertEqual(r.hincrby("kkk", "age", 18), 18)
        self.assertEqual(r.hget("kkk", "age"), b"18")
        for i in range(300):
            r.hset("big", f"f{i}", i)
        cursor, seen = 0, {}
        while True:
            cursor, data = r.hscan("big", cursor=cursor, count=50)
            seen.update(data)
            if cursor == 0:
                break
        self.assertEqual(len(seen), 300)
        self.assertEqual(dict(r.hscan_iter("xx")), {b"k1": b"v1", b"k2": b"v2"})

    def test_lists(self):
        r = self.r
        self.assertEqual(r.lpush("oo", 11, 22, 33), 3)
        self.assertEqual(r.lrange("oo", 0, -1), [b"33", b"22", b"11"])
        self.assertTrue(r.lset("oo", 0, "x"))
        self.assertEqual(r.lrem("oo", 1, "22"), 1)
        self.assertEqual(r.lrange("oo", 0, 100), [b"x", b"11"])
        self.assertEqual(r.brpop("oo", timeout=1), (b"oo", b"11"))
        self.assertIsNone(r.brpop("empty", timeout=0.1))

    def test_sets_and_sorted_sets(self):
        r = self.r
        self.assertEqual(r.sadd("faz", "baz", "qux"), 2)
        self.assertEqual(r.smembers("faz"), {b"baz", b"qux"})
        self.assertEqual(r.zadd("zs1", {"s1": 1, "s2": 2}, nx=True, ch=True), 2)
        self.assertEqual(r.zincrby("zs1", 5, "s1"), 6.0)
        self.assertEqual(r.zrange("zs1", 0, -1, withscores=True), [(b"s2", 2.0), (b"s1", 6.0)])
        r.zadd("myzset", {"aa": 0, "ba": 0, "ca": 0, "da": 0})
        self.assertEqual(r.zrangebylex("myzset", "-", "[ca"), [b"aa", b"ba", b"ca"])


class Pipelines(Base):
    """Pipelines with and without MULTI/EXEC (the guides' "管道")."""

    def test_pipeline_chain(self):
        r = self.r
        r.set("bing", "baz")
        pipe = r.pipeline()
        pipe.set("foo", "bar")
        pipe.get("bing")
        self.assertEqual(pipe.execute(), [True, b"baz"])
        res = pipe.set("foo", "bar").sadd("faz", "baz").incr("auto_number").execute()
        self.assertEqual(res, [True, 1, 1])

    def test_transaction(self):
        pipe = self.r.pipeline(transaction=True)
        pipe.multi()
        pipe.set("name", "alex")
        pipe.set("role", "sb")
        self.assertEqual(pipe.execute(), [True, True])
        self.assertEqual(self.r.mget("name", "role"), [b"alex", b"sb"])

    def test_transaction_runtime_error_in_place(self):
        pipe = self.r.pipeline(transaction=True)
        pipe.set("a", "1").lpush("a", "x").get("a")
        res = pipe.execute(raise_on_error=False)
        self.assertTrue(res[0])
        self.assertIsInstance(res[1], ResponseError)
        self.assertEqual(res[2], b"1")

    def test_watch_retry(self):
        """The optimistic-locking loop of redis-py's docs: WATCH, read, MULTI, write, EXEC."""
        r = self.r
        r.set("counter", 10)
        other = client()
        attempts = 0
        with r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch("counter")
                    value = int(pipe.get("counter"))
                    if attempts == 0:
                        other.incr("counter")  # a concurrent change voids the first attempt
                    attempts += 1
                    pipe.multi()
                    pipe.set("counter", value + 1)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        other.close()
        self.assertEqual(attempts, 2)
        self.assertEqual(r.get("counter"), b"12")


class Queue(Base):
    """The guides' producer/consumer queue: LPUSH on one side, BRPOP on the other."""

    def test_producer_consumer(self):
        got = []

        def consume():
            c = client()
            for _ in range(5):
                got.append(c.brpop("name", timeout=5)[1])
            c.close()

        t = threading.Thread(target=consume)
        t.start()
        time.sleep(0.1)
        for count in range(5):
            self.r.lpush("name", "name" + str(count))
        t.join(10)
        self.assertEqual(got, [b"name0", b"name1", b"name2", b"name3", b"name4"])


class PubSub(Base):
    """PUBLISH / SUBSCRIBE as in "python+Redis实现发布订阅"."""

    def test_subscribe_publish(self):
        pub = self.r.pubsub()
        pub.subscribe("98k")
        first = pub.get_message(timeout=1)
        self.assertEqual(first["type"], "subscribe")
        self.assertEqual(self.r.publish("98k", "hello world"), 1)
        msg = pub.get_message(timeout=1)
        self.assertEqual((msg["channel"], msg["data"]), (b"98k", b"hello world"))
        pub.psubscribe("9*")
        self.assertEqual(pub.get_message(timeout=1)["type"], "psubscribe")
        self.assertEqual(self.r.publish("98k", "again"), 2)
        kinds = sorted(pub.get_message(timeout=1)["type"] for _ in range(2))
        self.assertEqual(kinds, ["message", "pmessage"])
        pub.close()

    def test_keyspace_events_for_cache_invalidation(self):
        self.r.config_set("notify-keyspace-events", "KEA")
        pub = self.r.pubsub()
        pub.psubscribe("__keyspace@0__:*")
        pub.get_message(timeout=1)
        self.r.set("user:1", "x")
        self.r.delete("user:1")
        events = [pub.get_message(timeout=1)["data"] for _ in range(2)]
        self.assertEqual(events, [b"set", b"del"])
        pub.close()
        self.r.config_set("notify-keyspace-events", "")


class Locks(Base):
    """redis-py's Lock (Lua scripts through EVALSHA), as the guides use it."""

    def test_lock_acquire_extend_release(self):
        lock = self.r.lock("my-lock-key", timeout=10, blocking_timeout=1)
        self.assertTrue(lock.acquire())
        self.assertTrue(lock.owned())
        self.assertTrue(lock.extend(5))
        self.assertGreater(self.r.pttl("my-lock-key"), 10000)
        self.assertTrue(lock.reacquire())
        lock.release()
        self.assertFalse(self.r.exists("my-lock-key"))

    def test_lock_contention_and_blocking_timeout(self):
        holder = self.r.lock("my-lock-key", timeout=10)
        self.assertTrue(holder.acquire())
        start = time.monotonic()
        with self.assertRaises(LockError):
            with self.r.lock("my-lock-key", blocking_timeout=0.5):
                pass
        self.assertGreaterEqual(time.monotonic() - start, 0.4)
        holder.release()
        with self.r.lock("my-lock-key", blocking_timeout=1) as lock:
            self.assertTrue(lock.locked())

    def test_release_of_a_lost_lock_fails(self):
        lock = self.r.lock("my-lock-key", timeout=10)
        lock.acquire()
        self.r.set("my-lock-key", "someone else")
        with self.assertRaises(LockError):
            lock.release()

    def test_script_cache_flush_falls_back_to_eval(self):
        lock = self.r.lock("k", timeout=10)
        lock.acquire()
        self.r.script_flush()
        lock.release()  # EVALSHA answers NOSCRIPT; redis-py loads the script again
        self.assertFalse(self.r.exists("k"))


class Sessions(Base):
    """Session caching with a TTL that is refreshed on access (the ASP.NET / Django guides)."""

    def test_session_ttl_refresh(self):
        r = self.r
        r.hset("session:abc", mapping={"user": "alice", "data": "x" * 100})
        r.expire("session:abc", 30)
        self.assertTrue(28 <= r.ttl("session:abc") <= 30)
        r.expire("session:abc", 3600)
        self.assertTrue(3598 <= r.ttl("session:abc") <= 3600)
        r.setex("sess:short", 1, "v")
        time.sleep(1.2)
        self.assertIsNone(r.get("sess:short"))

    def test_password_and_pool(self):
        r = self.r
        r.config_set("requirepass", "1234")
        try:
            pool = redis.ConnectionPool(host="127.0.0.1", port=PORT, password="1234",
                                        max_connections=1000)
            conn = redis.Redis(connection_pool=pool)
            conn.hset("kkk", "age", 18)
            self.assertEqual(conn.hget("kkk", "age"), b"18")
            with self.assertRaises(redis.AuthenticationError):
                client(password="wrong").ping()
            pool.disconnect()
        finally:
            redis.Redis(host="127.0.0.1", port=PORT, password="1234").config_set(
                "requirepass", "")


class DjangoCache(unittest.TestCase):
    """django-redis as the cache (and session) backend of a Django app."""

    @classmethod
    def setUpClass(cls):
        import django
        from django.conf import settings

        if not settings.configured:
            settings.configure(
                CACHES={
                    "default": {
                        "BACKEND": "django_redis.cache.RedisCache",
                        "LOCATION": f"redis://127.0.0.1:{PORT}/1",
                        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
                    }
                },
                SESSION_ENGINE="django.contrib.sessions.backends.cache",
                INSTALLED_APPS=["django.contrib.sessions"],
            )
            django.setup()

    def test_cache_api(self):
        from django.core.cache import cache
        from django_redis import get_redis_connection

        cache.clear()
        cache.set("greeting", {"text": "hello", "n": 1}, timeout=30)
        self.assertEqual(cache.get("greeting"), {"text": "hello", "n": 1})
        self.assertTrue(28 <= cache.ttl("greeting") <= 30)
        cache.set("n", 1)
        self.assertEqual(cache.incr("n", 5), 6)
        self.assertTrue(cache.add("once", 1))
        self.assertFalse(cache.add("once", 2))
        cache.set_many({"a": 1, "b": 2})
        self.assertEqual(cache.get_many(["a", "b", "c"]), {"a": 1, "b": 2})
        self.assertEqual(sorted(cache.keys("*")), ["a", "b", "greeting", "n", "once"])
        cache.delete_pattern("g*")
        self.assertIsNone(cache.get("greeting"))
        with cache.lock("django-lock", timeout=5):
            self.assertTrue(get_redis_connection("default").exists(":1:django-lock"))
        self.assertEqual(get_redis_connection("default").connection_pool.connection_kwargs["db"], 1)

    def test_session_store(self):
        from django.contrib.sessions.backends.cache import SessionStore

        s = SessionStore()
        s["user_id"] = 42
        s.set_expiry(300)
        s.save()
        loaded = SessionStore(session_key=s.session_key)
        self.assertEqual(loaded["user_id"], 42)
        s.delete()
        self.assertFalse(SessionStore().exists(s.session_key))


if __name__ == "__main__":
    unittest.main(verbosity=2)
