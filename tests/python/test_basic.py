"""CRUD, versions, error codes, sequential naming, large data."""
import pytest
from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)


def test_create_get_set_delete_versions(client, base):
    p = base + "/n"
    assert client.create(p, b"v0") == p
    data, st = client.get(p)
    assert data == b"v0"
    assert st.version == 0 and st.cversion == 0 and st.aversion == 0
    assert st.dataLength == 2 and st.numChildren == 0 and st.ephemeralOwner == 0
    assert st.czxid == st.mzxid == st.pzxid

    st1 = client.set(p, b"v1")
    assert st1.version == 1 and st1.mzxid > st.mzxid and st1.czxid == st.czxid
    st2 = client.set(p, b"v2", version=1)
    assert st2.version == 2
    with pytest.raises(BadVersionError):
        client.set(p, b"nope", version=1)
    assert client.get(p)[0] == b"v2"

    # create returns the path; exists gives the same stat as get
    assert client.exists(p) == client.get(p)[1]

    with pytest.raises(BadVersionError):
        client.delete(p, version=0)
    client.delete(p, version=2)
    assert client.exists(p) is None


def test_error_codes(client, base):
    with pytest.raises(NoNodeError):
        client.get(base + "/missing")
    with pytest.raises(NoNodeError):
        client.set(base + "/missing", b"x")
    with pytest.raises(NoNodeError):
        client.delete(base + "/missing")
    with pytest.raises(NoNodeError):
        client.create(base + "/no/parent", b"x")
    with pytest.raises(NoNodeError):
        client.get_children(base + "/missing")

    client.create(base + "/a", b"")
    with pytest.raises(NodeExistsError):
        client.create(base + "/a", b"")
    client.create(base + "/a/child", b"")
    with pytest.raises(NotEmptyError):
        client.delete(base + "/a")

    client.create(base + "/eph", b"", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        client.create(base + "/eph/c", b"")

    # version -1 means "any"
    client.set(base + "/a", b"q", version=-1)
    client.delete(base + "/a/child", version=-1)
    client.delete(base + "/a", version=-1)


def test_children_and_stat_counters(client, base):
    for name in ("c", "a", "b"):
        client.create(base + "/" + name, name.encode())
    assert sorted(client.get_children(base)) == ["a", "b", "c"]
    children, st = client.get_children(base, include_data=True)
    assert st.numChildren == 3 and st.cversion == 3
    client.delete(base + "/a")
    st = client.exists(base)
    assert st.numChildren == 2 and st.cversion == 4
    # pzxid follows the last child change
    assert st.pzxid >= st.mzxid


def test_sequential_naming(client, base):
    parent = base + "/seq"
    client.create(parent)
    p0 = client.create(parent + "/s-", b"", sequence=True)
    client.create(parent + "/t", b"")
    p2 = client.create(parent + "/s-", b"", sequence=True)
    assert p0 == parent + "/s-0000000000"
    assert p2 == parent + "/s-0000000002"
    # the counter survives deletes: it is the parent's cversion-like counter
    client.delete(p2)
    p3 = client.create(parent + "/s-", b"", sequence=True, ephemeral=True)
    assert p3 == parent + "/s-0000000003"
    # a bare sequential name (trailing slash) under a node
    p4 = client.create(parent + "/", b"", sequence=True)
    assert p4 == parent + "/0000000004"


def test_create_include_data_and_makepath(client, base):
    path, st = client.create(base + "/x/y/z", b"deep", makepath=True, include_data=True)
    assert path == base + "/x/y/z"
    assert st.version == 0 and st.dataLength == 4
    assert client.get(base + "/x/y/z")[0] == b"deep"


def test_large_data_near_1mb(client, base):
    blob = bytes(range(256)) * (1000 * 1024 // 256)  # 1,024,000 bytes
    p = base + "/big"
    client.create(p, blob)
    data, st = client.get(p)
    assert data == blob and st.dataLength == len(blob)
    blob2 = blob[::-1]
    client.set(p, blob2)
    assert client.get(p)[0] == blob2


def test_request_over_jute_maxbuffer_drops_connection_not_session(client, base):
    """A frame over jute.maxbuffer (1 MiB - 1) makes the server close the
    connection; the session survives and kazoo reconnects to it."""
    session_id = client.client_id[0]
    with pytest.raises(ConnectionLoss):
        client.create(base + "/huge", b"x" * (1024 * 1024 + 10))
    assert client.exists(base + "/huge") is None
    client.create(base + "/after")
    assert client.client_id[0] == session_id
