"""Ephemerals vs. session close, expiry and resume."""
import queue
import logging

import pytest
from kazoo.client import KazooState
from kazoo.protocol.states import EventType

from zkharness import TcpProxy

TIMEOUT = 15


@pytest.fixture
def proxy_factory():
    proxies = []

    def make(server):
        p = TcpProxy(server.port)
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.close()


def _state_queue(client):
    """A queue of the client's KazooState changes."""
    q = queue.Queue()
    client.add_listener(q.put)
    return q


def _wait_state(q, wanted):
    while True:
        s = q.get(timeout=TIMEOUT)
        if s == wanted:
            return


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_ephemeral_removed_on_close(client_factory, zk_server, base):
    owner = client_factory()
    watcher = client_factory()
    p = base + "/eph"
    owner.create(p, b"x", ephemeral=True)
    st = watcher.exists(p)
    assert st.ephemeralOwner == owner.client_id[0]
    assert st.ephemeralOwner != 0

    child_events = queue.Queue()
    data_events = queue.Queue()
    assert watcher.get_children(base, watch=child_events.put) == ["eph"]
    watcher.get(p, watch=data_events.put)

    owner.stop()  # sends closeSession
    ev = data_events.get(timeout=TIMEOUT)
    assert ev.type == EventType.DELETED and ev.path == p
    ev = child_events.get(timeout=TIMEOUT)
    assert ev.type == EventType.CHILD and ev.path == base
    assert watcher.exists(p) is None


def test_ephemeral_removed_on_session_expiry(client_factory, zk_server_fast, proxy_factory, base):
    """The owner's TCP connection dies without closeSession; the server must
    expire the session (tickTime=250, session timeout 1 s) and delete the node."""
    proxy = proxy_factory(zk_server_fast)
    owner = client_factory(proxy, timeout=1.0)
    states = _state_queue(owner)
    watcher = client_factory(zk_server_fast)
    p = base + "/eph"
    owner.create(p, b"x", ephemeral=True)
    old_session = owner.client_id[0]
    events = queue.Queue()
    assert watcher.exists(p, watch=events.put).ephemeralOwner == old_session

    proxy.cut()
    # a dropped connection alone does not delete ephemerals (expiry takes >= 1 s)
    assert watcher.exists(p) is not None
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.DELETED and ev.path == p
    assert watcher.exists(p) is None

    # when the owner gets through again it is told that its session expired
    proxy.restore()
    _wait_state(states, KazooState.LOST)
    # kazoo then starts a new session on its own
    _wait_state(states, KazooState.CONNECTED)
    owner.ensure_path(base + "/after")
    assert owner.client_id[0] != old_session


def test_session_resume_keeps_ephemeral(client_factory, zk_server, proxy_factory, base):
    proxy = proxy_factory(zk_server)
    owner = client_factory(proxy)
    watcher = client_factory(zk_server)
    p = base + "/eph"
    owner.create(p, b"x", ephemeral=True)
    session_id, passwd = owner.client_id
    proxy.cut()  # the original client can no longer reach the server

    resumed = client_factory(zk_server, client_id=(session_id, passwd))
    assert resumed.client_id[0] == session_id
    st = resumed.exists(p)
    assert st is not None and st.ephemeralOwner == session_id
    # the resumed session can keep working with it
    assert resumed.get(p)[0] == b"x"
    resumed.create(base + "/eph2", ephemeral=True)
    assert resumed.exists(base + "/eph2").ephemeralOwner == session_id

    events = queue.Queue()
    watcher.get_children(base, watch=events.put)
    resumed.stop()  # closes the session: both ephemerals go
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.CHILD
    assert watcher.get_children(base) == []


def test_session_resume_with_wrong_password_is_expired(client_factory, zk_server, base):
    owner = client_factory()
    p = base + "/eph"
    owner.create(p, b"x", ephemeral=True)
    session_id, passwd = owner.client_id
    bad = bytes(b ^ 0xFF for b in passwd)

    log = logging.getLogger("e2e.badpw.%s" % zk_server.kind)
    handler = _ListHandler()
    log.addHandler(handler)
    try:
        other = client_factory(zk_server, client_id=(session_id, bad), logger=log)
    finally:
        log.removeHandler(handler)
    # the server refuses the session (kazoo sees it as expired) and kazoo
    # creates a new one; the original session is untouched
    assert "Session has expired" in handler.messages
    assert other.client_id[0] != session_id
    assert other.exists(p).ephemeralOwner == session_id
    assert owner.get(p)[0] == b"x"
