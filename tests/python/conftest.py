"""Fixtures for the end-to-end tests.

Every test runs against both servers: "rzk" (RZK_SERVER_BIN, default
target/release/rzk-server) and "apache" (Debian's ZooKeeper 3.8.0, when
/usr/share/java/zookeeper.jar exists; RZK_REQUIRE_APACHE=1 turns its absence
into an error). Apache is the oracle: a test that fails on Apache has a wrong
expectation.

A server is started once per kind and configuration for the whole pytest
session (a JVM start costs ~1.5 s) with a fresh temporary dataDir; each test
works below its own znode (fixture `base`) so tests do not see each other.
ZK_E2E_KEEP_TMP=1 keeps the temporary directories (zoo.cfg, data, server.log).
"""
import os
import re
import threading

import pytest
from kazoo.client import KazooClient

from zkharness import APACHE_JAR, ZkServer, rzk_binary

KINDS = ["rzk", "apache"]


def _check_kind(kind):
    if kind == "apache" and not os.path.exists(APACHE_JAR):
        if os.environ.get("RZK_REQUIRE_APACHE") == "1":
            pytest.fail("RZK_REQUIRE_APACHE=1 but %s does not exist" % APACHE_JAR)
        pytest.skip("Apache ZooKeeper not installed (%s missing)" % APACHE_JAR)
    if kind == "rzk":
        b = rzk_binary()
        if not os.access(b, os.X_OK):
            pytest.fail(
                "rzk server binary %s not found: run `cargo build --release` "
                "or set RZK_SERVER_BIN" % b
            )


class _ServerPool:
    """Servers started lazily, one per (kind, config), stopped at session end."""

    def __init__(self):
        self._servers = {}
        self._lock = threading.Lock()

    def get(self, kind, **cfg):
        key = (kind, tuple(sorted(cfg.items())))
        with self._lock:
            srv = self._servers.get(key)
            if srv is not None and not srv.alive():
                raise RuntimeError(
                    "%s server died earlier in this run (exit %s)\n%s"
                    % (kind, srv.proc.returncode, srv.log_tail())
                )
            if srv is None:
                tick = int(cfg.pop("tickTime", 2000))
                srv = ZkServer(kind, tick_time=tick, extra_cfg={k: str(v) for k, v in cfg.items()})
                self._servers[key] = srv
            return srv

    def close(self):
        for srv in self._servers.values():
            srv.cleanup()
        self._servers.clear()


@pytest.fixture(scope="session")
def _server_pool():
    pool = _ServerPool()
    yield pool
    pool.close()


@pytest.fixture(scope="session", params=KINDS)
def zk_kind(request):
    """"rzk" or "apache"; every server fixture (and so every test) is parametrised by it."""
    _check_kind(request.param)
    return request.param


@pytest.fixture(scope="session")
def zk_server(zk_kind, _server_pool):
    """A standalone server, tickTime=2000 (default session timeouts 4s..40s)."""
    return _server_pool.get(zk_kind, tickTime=2000)


@pytest.fixture(scope="session")
def zk_server_fast(zk_kind, _server_pool):
    """A server with tickTime=250, for session-expiry tests (min session 500 ms)."""
    return _server_pool.get(zk_kind, tickTime=250)


def _requested_server(request):
    """zk_server_fast if the test asked for it, else zk_server."""
    if "zk_server_fast" in request.fixturenames:
        return request.getfixturevalue("zk_server_fast")
    return request.getfixturevalue("zk_server")


@pytest.fixture
def client_factory(request, zk_kind):
    """client_factory(server=None, start=True, **KazooClient kwargs) -> KazooClient.

    server may be a ZkServer, a TcpProxy or a "host:port" string; by default
    the server fixture the test requested. Clients are stopped afterwards.
    """
    clients = []

    used = request.node.__dict__.setdefault("_zk_servers", [])
    srv = _requested_server(request)
    if srv not in used:
        used.append(srv)

    def make(server=None, start=True, **kwargs):
        if server is None:
            server = srv
        hosts = server if isinstance(server, str) else server.hostport
        kwargs.setdefault("timeout", 10.0)
        kwargs.setdefault("connection_retry", {"max_tries": -1, "delay": 0.05, "max_delay": 0.5})
        c = KazooClient(hosts=hosts, **kwargs)
        clients.append(c)
        if start:
            c.start(timeout=15)
        return c

    yield make
    for c in clients:
        try:
            c.stop()
        except Exception:
            pass
        try:
            c.close()
        except Exception:
            pass
    if not srv.alive():
        pytest.fail(
            "%s server died during the test (exit %s)\n%s"
            % (srv.kind, srv.proc.returncode, srv.log_tail())
        )


@pytest.fixture
def client(client_factory):
    return client_factory()


@pytest.fixture
def base(request, client):
    """A fresh persistent znode for this test: /e2e/<test name>."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    path = "/e2e/" + name
    client.ensure_path("/e2e")
    client.create(path)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        servers = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, ZkServer)]
        for srv in getattr(item, "_zk_servers", []):
            if srv not in servers:
                servers.append(srv)
        for srv in servers:
            rep.sections.append(
                ("%s server log tail (%s)" % (srv.kind, srv.log_path), srv.log_tail(40))
            )
