"""Container and TTL znodes.

kazoo 2.x has no API for these (create() has no container=/ttl= arguments),
so the requests (createContainer op 19, createTTL op 21, raw create op 1) are
sent through kazoo's own connection with small request classes from
zkharness. The servers run their reaper every 100 ms (Apache: JVM flag
-Dznode.container.checkIntervalMs; rzk: the zoo.cfg key of the same name).
"""
import queue

import pytest
from kazoo.exceptions import BadArgumentsError, NoNodeError
from kazoo.protocol.states import EventType
from kazoo.security import OPEN_ACL_UNSAFE

from zkharness import CreateContainer, CreateTTL, RawCreate, call

# Clients see ephemeralOwner 0 for containers and TTL nodes; only the stored
# value (snapshot, txn log) encodes the kind.
VISIBLE_OWNER = 0

TIMEOUT = 15


def test_container_created_and_reaped_when_emptied(client_factory, zk_server, base):
    c = client_factory()
    watcher = client_factory()
    never_used = base + "/never-used"
    path, st = call(c, CreateContainer(never_used, b"", OPEN_ACL_UNSAFE, 4))
    assert path == never_used and st.ephemeralOwner == VISIBLE_OWNER

    p = base + "/box"
    path, st = call(c, CreateContainer(p, b"data", OPEN_ACL_UNSAFE, 4))
    assert path == p
    assert st.ephemeralOwner == VISIBLE_OWNER and st.version == 0 and st.dataLength == 4
    assert c.exists(p).ephemeralOwner == VISIBLE_OWNER

    c.create(p + "/child", b"")
    events = queue.Queue()
    assert watcher.exists(p, watch=events.put) is not None
    c.delete(p + "/child")
    # the reaper deletes the now-empty container
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.DELETED and ev.path == p
    assert c.exists(p) is None
    # a container that never had a child stays (maxNeverUsedIntervalMs=0)
    assert c.exists(never_used) is not None


def test_container_with_ephemeral_child_reaped_when_session_closes(client_factory, zk_server, base):
    c = client_factory()
    owner = client_factory()
    p = base + "/box"
    call(c, CreateContainer(p, b"", OPEN_ACL_UNSAFE, 4))
    owner.create(p + "/lock", b"", ephemeral=True)
    events = queue.Queue()
    c.exists(p, watch=events.put)
    owner.stop()
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.DELETED and ev.path == p


def test_ttl_node_expires(client_factory, zk_server, base):
    c = client_factory()
    p = base + "/ttl"
    path, st = call(c, CreateTTL(p, b"t", OPEN_ACL_UNSAFE, 5, 300))
    assert path == p and st.ephemeralOwner == VISIBLE_OWNER
    events = queue.Queue()
    assert c.exists(p, watch=events.put).ephemeralOwner == VISIBLE_OWNER
    ev = events.get(timeout=TIMEOUT)
    assert ev.type == EventType.DELETED and ev.path == p


def test_ttl_sequential_and_children_keep_it(client_factory, zk_server, base):
    c = client_factory()
    parent = base + "/q"
    c.create(parent)
    path, st = call(c, CreateTTL(parent + "/t-", b"", OPEN_ACL_UNSAFE, 6, 200))
    assert path == parent + "/t-0000000000"
    assert st.ephemeralOwner == VISIBLE_OWNER
    # a TTL node with a child is not removed; once empty it is
    c.create(path + "/kid", b"")
    # wait until a second, childless TTL node (same ttl, created later) is reaped:
    # by then the reaper has certainly considered the first one as well
    later = parent + "/later"
    call(c, CreateTTL(later, b"", OPEN_ACL_UNSAFE, 5, 200))
    events = queue.Queue()
    c.exists(later, watch=events.put)
    assert events.get(timeout=TIMEOUT).type == EventType.DELETED
    assert c.exists(path) is not None
    events2 = queue.Queue()
    c.exists(path, watch=events2.put)
    c.delete(path + "/kid")
    ev = events2.get(timeout=TIMEOUT)
    assert ev.type == EventType.DELETED and ev.path == path


@pytest.mark.parametrize(
    "request_factory",
    [
        # TTL flags with plain create: BadArguments
        lambda p: RawCreate(p, b"", OPEN_ACL_UNSAFE, 5),
        # createTTL with ttl 0, or a non-TTL mode
        lambda p: CreateTTL(p, b"", OPEN_ACL_UNSAFE, 5, 0),
        lambda p: CreateTTL(p, b"", OPEN_ACL_UNSAFE, 0, 1000),
        # ttl beyond 0x000000FFFFFFFFFF
        lambda p: CreateTTL(p, b"", OPEN_ACL_UNSAFE, 5, 1 << 40),
        # an unknown create mode
        lambda p: RawCreate(p, b"", OPEN_ACL_UNSAFE, 7),
    ],
    ids=["create-flags5", "ttl0", "ttl-nonttl-mode", "ttl-too-big", "flags7"],
)
def test_bad_ttl_and_mode_arguments(client, base, request_factory):
    p = base + "/bad"
    with pytest.raises(BadArgumentsError):
        call(client, request_factory(p))
    assert client.exists(p) is None


def test_container_parent_missing(client, base):
    with pytest.raises(NoNodeError):
        call(client, CreateContainer(base + "/no/box", b"", OPEN_ACL_UNSAFE, 4))
