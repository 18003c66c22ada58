"""One-shot watches: data, child, exists-on-missing, delete; and recipes' watches."""
import queue

from kazoo.protocol.states import EventType

from zkharness import barrier as _barrier

TIMEOUT = 10


def test_data_watch_fires_once(client_factory, zk_server, base):
    watcher = client_factory()
    writer = client_factory()
    p = base + "/d"
    writer.create(p, b"0")
    events = queue.Queue()
    data, _ = watcher.get(p, watch=events.put)
    assert data == b"0"

    writer.set(p, b"1")
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.CHANGED and ev.path == p
    assert ev.state == "CONNECTED"

    writer.set(p, b"2")  # no watch set any more: no second event
    _barrier(watcher, base, "d")
    assert events.empty()


def test_data_watch_on_delete(client_factory, zk_server, base):
    watcher = client_factory()
    writer = client_factory()
    p = base + "/d"
    writer.create(p, b"0")
    events = queue.Queue()
    watcher.get(p, watch=events.put)
    writer.delete(p)
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.DELETED and ev.path == p


def test_child_watch(client_factory, zk_server, base):
    watcher = client_factory()
    writer = client_factory()
    events = queue.Queue()
    assert watcher.get_children(base, watch=events.put) == []
    writer.create(base + "/c1")
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.CHILD and ev.path == base

    # setData on the parent does not fire a child watch; a child's data change neither
    events2 = queue.Queue()
    watcher.get_children(base, watch=events2.put)
    writer.set(base, b"x")
    writer.set(base + "/c1", b"x")
    _barrier(watcher, base, "w")
    assert events2.empty()
    writer.delete(base + "/c1")
    ev = events2.get(timeout=TIMEOUT)
    assert ev.type == EventType.CHILD and ev.path == base

    # deleting the watched node fires DELETED on a child watch
    events3 = queue.Queue()
    writer.create(base + "/p")
    watcher.get_children(base + "/p", watch=events3.put)
    writer.delete(base + "/p")
    ev = events3.get(timeout=TIMEOUT)
    assert ev.type == EventType.DELETED and ev.path == base + "/p"


def test_exists_watch_on_missing_node_fires_on_create(client_factory, zk_server, base):
    watcher = client_factory()
    writer = client_factory()
    p = base + "/later"
    events = queue.Queue()
    assert watcher.exists(p, watch=events.put) is None
    writer.create(p, b"hi")
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.CREATED and ev.path == p

    # exists on an existing node sets a data watch: fires on set
    events2 = queue.Queue()
    assert watcher.exists(p, watch=events2.put) is not None
    writer.set(p, b"again")
    ev = events2.get(timeout=TIMEOUT)
    assert ev.type == EventType.CHANGED and ev.path == p


def test_own_write_fires_own_watch_before_reply(client, base):
    """A notification precedes the reply of the request that caused it."""
    p = base + "/own"
    client.create(p, b"0")
    events = queue.Queue()
    client.get(p, watch=events.put)
    client.set(p, b"1")
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.CHANGED


def test_datawatch_and_childrenwatch_recipes(client_factory, zk_server, base):
    watcher = client_factory()
    writer = client_factory()
    p = base + "/r"
    data_q = queue.Queue()
    child_q = queue.Queue()

    @watcher.DataWatch(p)
    def _data(data, stat, event=None):
        data_q.put((data, stat.version if stat else None, event.type if event else None))

    @watcher.ChildrenWatch(base)
    def _children(children):
        child_q.put(sorted(children))

    assert data_q.get(timeout=TIMEOUT) == (None, None, None)
    assert child_q.get(timeout=TIMEOUT) == []
    writer.create(p, b"a")
    assert data_q.get(timeout=TIMEOUT) == (b"a", 0, EventType.CREATED)
    assert child_q.get(timeout=TIMEOUT) == ["r"]
    writer.set(p, b"b")
    assert data_q.get(timeout=TIMEOUT) == (b"b", 1, EventType.CHANGED)
    writer.delete(p)
    assert data_q.get(timeout=TIMEOUT) == (None, None, EventType.DELETED)
    assert child_q.get(timeout=TIMEOUT) == []
