"""kazoo's Lock and Election recipes between two clients."""
import queue
import threading

TIMEOUT = 15


def _wait_children(client, path, n):
    """Block until `path` has exactly n children (ChildrenWatch, no polling)."""
    done = threading.Event()

    def watch(children):
        if len(children) == n:
            done.set()
            return False  # stop watching
        return None

    client.ChildrenWatch(path)(watch)
    assert done.wait(TIMEOUT), "%s never had %d children" % (path, n)


def test_lock_between_two_clients(client_factory, zk_server, base):
    c1 = client_factory()
    c2 = client_factory()
    path = base + "/lock"
    l1 = c1.Lock(path, "one")
    l2 = c2.Lock(path, "two")

    assert l1.acquire(timeout=TIMEOUT)
    assert l2.acquire(blocking=False) is False
    assert l1.contenders() == ["one"]

    acquired = threading.Event()
    errors = queue.Queue()

    def waiter():
        try:
            if l2.acquire(timeout=TIMEOUT):
                acquired.set()
        except Exception as e:  # surfaced below
            errors.put(e)

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    _wait_children(c1, path, 2)  # c2 is queued behind c1
    assert not acquired.is_set()
    assert l1.contenders() == ["one", "two"]

    l1.release()
    assert acquired.wait(TIMEOUT), "second client never got the lock"
    t.join(TIMEOUT)
    assert errors.empty(), errors.get()
    assert l2.contenders() == ["two"]
    l2.release()
    assert c1.get_children(path) == []


def test_lock_released_when_holder_session_closes(client_factory, zk_server, base):
    c1 = client_factory()
    c2 = client_factory()
    path = base + "/lock"
    assert c1.Lock(path, "one").acquire(timeout=TIMEOUT)
    l2 = c2.Lock(path, "two")
    got = threading.Event()
    t = threading.Thread(target=lambda: l2.acquire(timeout=TIMEOUT) and got.set(), daemon=True)
    t.start()
    _wait_children(c2, path, 2)
    c1.stop()  # the holder's ephemeral lock node goes with its session
    assert got.wait(TIMEOUT)
    t.join(TIMEOUT)
    l2.release()


def test_election_between_two_clients(client_factory, zk_server, base):
    c1 = client_factory()
    c2 = client_factory()
    path = base + "/election"
    e1 = c1.Election(path, "one")
    e2 = c2.Election(path, "two")
    leaders = queue.Queue()
    release = {"one": threading.Event(), "two": threading.Event()}

    def lead(name):
        leaders.put(name)
        release[name].wait(TIMEOUT)

    t1 = threading.Thread(target=e1.run, args=(lead, "one"), daemon=True)
    t1.start()
    assert leaders.get(timeout=TIMEOUT) == "one"

    t2 = threading.Thread(target=e2.run, args=(lead, "two"), daemon=True)
    t2.start()
    _wait_children(c1, path, 2)
    assert e1.contenders() == ["one", "two"]
    assert leaders.empty()

    release["one"].set()  # leader one steps down
    assert leaders.get(timeout=TIMEOUT) == "two"
    t1.join(TIMEOUT)
    assert e2.contenders() == ["two"]
    release["two"].set()
    t2.join(TIMEOUT)
    assert not t1.is_alive() and not t2.is_alive()
