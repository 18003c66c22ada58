"""ACLs: digest auth, NoAuth, getACL masking, the auth scheme, per-op permissions."""
import pytest
from kazoo.exceptions import BadVersionError, InvalidACLError, NoAuthError
from kazoo.security import (
    ACL,
    OPEN_ACL_UNSAFE,
    Id,
    Permissions,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
)

USER, PW = "user", "pw"
CRED = make_digest_acl_credential(USER, PW)  # "user:<base64 sha1>"


def test_digest_credential_format():
    # the documented example from the reference, to pin the hash function
    assert make_digest_acl_credential("bob", "secret") == "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="


def test_digest_acl_and_noauth(client_factory, zk_server, zk_kind, base):
    owner = client_factory(auth_data=[("digest", "%s:%s" % (USER, PW))])
    stranger = client_factory()
    p = base + "/secret"
    owner.create(p, b"s3cret", acl=[make_digest_acl(USER, PW, all=True)])

    assert owner.get(p)[0] == b"s3cret"
    with pytest.raises(NoAuthError):
        stranger.get(p)
    with pytest.raises(NoAuthError):
        stranger.set(p, b"x")
    with pytest.raises(NoAuthError):
        stranger.get_children(p)
    with pytest.raises(NoAuthError):
        stranger.create(p + "/child")
    with pytest.raises(NoAuthError):
        stranger.get_acls(p)  # needs READ or ADMIN
    # exists needs READ on an existing node from 3.8.4/3.9.2 (ZOOKEEPER-2590), which rzk
    # follows; Debian's 3.8.0 still answers without checking.
    if zk_kind == "rzk":
        with pytest.raises(NoAuthError):
            stranger.exists(p)
    else:
        assert stranger.exists(p).dataLength == 6

    acls, st = owner.get_acls(p)
    assert acls == [ACL(Permissions.ALL, Id("digest", CRED))]
    assert st.aversion == 0

    # a wrong password is not an auth failure, just a different identity
    wrong = client_factory(auth_data=[("digest", "%s:nope" % USER)])
    with pytest.raises(NoAuthError):
        wrong.get(p)
    # adding the right credential later works
    stranger.add_auth("digest", "%s:%s" % (USER, PW))
    assert stranger.get(p)[0] == b"s3cret"


def test_get_acl_masks_digest_for_non_admin(client_factory, zk_server, base):
    owner = client_factory(auth_data=[("digest", "%s:%s" % (USER, PW))])
    reader = client_factory()
    p = base + "/masked"
    acl = [make_digest_acl(USER, PW, all=True), make_acl("world", "anyone", read=True)]
    owner.create(p, b"", acl=acl)

    masked, _ = reader.get_acls(p)
    assert masked == [
        ACL(Permissions.ALL, Id("digest", USER + ":x")),
        ACL(Permissions.READ, Id("world", "anyone")),
    ]
    full, _ = owner.get_acls(p)
    assert full == [
        ACL(Permissions.ALL, Id("digest", CRED)),
        ACL(Permissions.READ, Id("world", "anyone")),
    ]
    # READ is enough for reads, not for writes
    assert reader.get(p)[0] == b""
    with pytest.raises(NoAuthError):
        reader.set(p, b"x")


def test_auth_scheme_expands_to_creator_ids(client_factory, zk_server, base):
    owner = client_factory(auth_data=[("digest", "%s:%s" % (USER, PW))])
    anon = client_factory()
    p = base + "/authacl"
    owner.create(p, b"", acl=[make_acl("auth", "", all=True)])
    acls, _ = owner.get_acls(p)
    assert acls == [ACL(Permissions.ALL, Id("digest", CRED))]
    # no authenticated ids: the auth scheme is an invalid ACL
    with pytest.raises(InvalidACLError):
        anon.create(base + "/anon", b"", acl=[make_acl("auth", "", all=True)])
    with pytest.raises(InvalidACLError):
        owner.create(base + "/bad", b"", acl=[ACL(Permissions.ALL, Id("digest", "no-colon"))])
    with pytest.raises(InvalidACLError):
        owner.create(base + "/bad", b"", acl=[ACL(Permissions.ALL, Id("nosuchscheme", "x"))])


def test_permissions_per_op_and_set_acl_versions(client_factory, zk_server, base):
    owner = client_factory(auth_data=[("digest", "%s:%s" % (USER, PW))])
    other = client_factory()
    d = base + "/dir"
    # others may create children but not delete them
    owner.create(
        d,
        b"",
        acl=[
            make_digest_acl(USER, PW, all=True),
            make_acl("world", "anyone", read=True, create=True),
        ],
    )
    other.create(d + "/c", b"")
    with pytest.raises(NoAuthError):
        other.delete(d + "/c")
    owner.delete(d + "/c")
    with pytest.raises(NoAuthError):
        other.set_acls(d, OPEN_ACL_UNSAFE)

    # setACL checks the acl version (aversion)
    with pytest.raises(BadVersionError):
        owner.set_acls(d, OPEN_ACL_UNSAFE, version=5)
    st = owner.set_acls(d, OPEN_ACL_UNSAFE, version=0)
    assert st.aversion == 1
    assert other.get_acls(d)[0] == OPEN_ACL_UNSAFE
    other.delete(d)
