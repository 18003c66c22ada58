"""kazoo transactions (multi): success results and all-or-nothing failures."""
import queue

from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType, ZnodeStat

from zkharness import barrier

TIMEOUT = 10


def test_multi_success(client, base):
    p = base + "/m"
    t = client.transaction()
    t.create(p, b"a")
    t.set_data(p, b"b")
    t.check(p, 1)
    t.create(p + "/c", b"")
    t.create(p + "/s-", b"", sequence=True)
    t.delete(p + "/c")
    results = t.commit()
    assert len(results) == 6
    assert results[0] == p
    assert isinstance(results[1], ZnodeStat) and results[1].version == 1
    assert results[2] is True
    assert results[3] == p + "/c"
    assert results[4] == p + "/s-0000000001"
    assert results[5] is True

    data, st = client.get(p)
    assert data == b"b" and st.version == 1
    assert client.get_children(p) == ["s-0000000001"]
    # all ops of one multi share a single zxid
    assert st.czxid == st.mzxid
    assert client.exists(p + "/s-0000000001").czxid == st.czxid


def test_multi_failure_check_version_applies_nothing(client, base):
    p = base + "/m"
    client.create(p, b"orig")
    t = client.transaction()
    t.create(base + "/new", b"")
    t.check(p, 7)  # wrong version
    t.set_data(p, b"changed")
    t.delete(p)
    results = t.commit()
    assert [type(r) for r in results] == [
        RolledBackError,
        BadVersionError,
        RuntimeInconsistency,
        RuntimeInconsistency,
    ]
    assert client.exists(base + "/new") is None
    data, st = client.get(p)
    assert data == b"orig" and st.version == 0


def test_multi_failure_results_by_position(client, base):
    p = base + "/m"
    client.create(p, b"")

    t = client.transaction()
    t.set_data(p, b"x")
    t.create(p, b"")  # exists
    results = t.commit()
    assert [type(r) for r in results] == [RolledBackError, NodeExistsError]
    assert client.get(p) == (b"", client.exists(p)) and client.exists(p).version == 0

    t = client.transaction()
    t.check(base + "/missing", 0)
    t.create(base + "/never", b"")
    results = t.commit()
    assert [type(r) for r in results] == [NoNodeError, RuntimeInconsistency]
    assert client.exists(base + "/never") is None


def test_multi_fires_watches_only_on_success(client_factory, zk_server, base):
    watcher = client_factory()
    writer = client_factory()
    events = queue.Queue()
    a, b = base + "/a", base + "/b"
    assert watcher.exists(a, watch=events.put) is None

    t = writer.transaction()
    t.create(a, b"")
    t.check(base, 99)
    assert isinstance(t.commit()[1], BadVersionError)
    barrier(watcher, base, "multi")
    assert events.empty()

    t = writer.transaction()
    t.create(b, b"")
    t.create(a, b"")
    t.commit()
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.CREATED and ev.path == a
