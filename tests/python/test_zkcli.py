"""Drive Debian's zkCli.sh (Apache's Java client) non-interactively.

One JVM per command, `zkCli.sh -server 127.0.0.1:PORT <cmd> <args...>`.
zkCli prints some results on stderr ("Created /x", "Node does not exist"),
so both streams are checked.
"""
import os
import re
import subprocess

import pytest

from zkharness import ZKCLI

pytestmark = pytest.mark.skipif(not os.path.exists(ZKCLI), reason="%s not installed" % ZKCLI)


def zkcli(server, *args, timeout=60):
    env = dict(os.environ)
    env["CLIENT_JVMFLAGS"] = "-Xshare:auto -XX:TieredStopAtLevel=1"
    env.setdefault("ZOO_LOG_DIR", "/tmp")
    r = subprocess.run(
        [ZKCLI, "-server", server.hostport] + list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=timeout,
    )
    out = r.stdout.decode("utf-8", "replace")
    err = "\n".join(
        line
        for line in r.stderr.decode("utf-8", "replace").splitlines()
        if not line.startswith("SLF4J:")
    )
    return r.returncode, out, err


def _stat_fields(text):
    return dict(
        m.groups() for m in re.finditer(r"^(\w+) = (.*)$", text, re.MULTILINE)
    )


def test_zkcli_create_ls_get_set_stat_delete(zk_server):
    rc, out, err = zkcli(zk_server, "create", "/x", "hello")
    assert rc == 0, (out, err)
    assert "Created /x" in out + err

    rc, out, err = zkcli(zk_server, "ls", "/")
    assert rc == 0, (out, err)
    listing = re.search(r"^\[(.*)\]$", out, re.MULTILINE)
    assert listing, out
    children = [c.strip() for c in listing.group(1).split(",")]
    assert "x" in children and "zookeeper" in children

    rc, out, err = zkcli(zk_server, "get", "/x")
    assert rc == 0, (out, err)
    assert "hello" in out.splitlines()

    rc, out, err = zkcli(zk_server, "set", "/x", "bye")
    assert rc == 0, (out, err)

    rc, out, err = zkcli(zk_server, "get", "/x")
    assert rc == 0 and "bye" in out.splitlines(), (out, err)

    rc, out, err = zkcli(zk_server, "stat", "/x")
    assert rc == 0, (out, err)
    st = _stat_fields(out)
    assert st["dataVersion"] == "1"
    assert st["dataLength"] == "3"
    assert st["numChildren"] == "0"
    assert st["cversion"] == "0"
    assert st["aclVersion"] == "0"
    assert st["ephemeralOwner"] == "0x0"
    for k in ("cZxid", "mZxid", "pZxid"):
        assert re.fullmatch(r"0x[0-9a-f]+", st[k]), (k, st[k])
    assert int(st["mZxid"], 16) > int(st["cZxid"], 16)
    assert re.fullmatch(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \w+ \d{4}", st["ctime"]), st["ctime"]

    rc, out, err = zkcli(zk_server, "delete", "/x")
    assert rc == 0, (out, err)

    rc, out, err = zkcli(zk_server, "get", "/x")
    assert rc != 0
    assert "Node does not exist: /x" in out + err


def test_zkcli_errors_and_sequential(zk_server):
    rc, out, err = zkcli(zk_server, "create", "/zkcli-p")
    assert rc == 0, (out, err)
    rc, out, err = zkcli(zk_server, "create", "/zkcli-p")
    assert "Node already exists: /zkcli-p" in out + err
    rc, out, err = zkcli(zk_server, "create", "-s", "/zkcli-p/s-", "v")
    assert rc == 0, (out, err)
    assert "Created /zkcli-p/s-0000000000" in out + err
    rc, out, err = zkcli(zk_server, "delete", "/zkcli-p")
    assert "Node not empty: /zkcli-p" in out + err
    rc, out, err = zkcli(zk_server, "deleteall", "/zkcli-p")
    assert rc == 0, (out, err)
    rc, out, err = zkcli(zk_server, "ls", "/zkcli-p")
    assert "Node does not exist: /zkcli-p" in out + err
