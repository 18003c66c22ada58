"""Four-letter words over a raw socket (whitelist is * in the test config)."""
import re

from zkharness import four_letter


def _mntr(port):
    out = four_letter(port, "mntr")
    return dict(line.split("\t", 1) for line in out.strip().splitlines() if "\t" in line)


def test_ruok(zk_server):
    assert four_letter(zk_server.port, "ruok") == "imok"


def test_ruok_via_kazoo_command(client):
    assert client.command(b"ruok") == "imok"


def test_srvr(zk_server, client, base):
    srvr = four_letter(zk_server.port, "srvr")
    lines = srvr.splitlines()
    assert lines[0].startswith("Zookeeper version: ")
    assert "Mode: standalone" in lines
    assert re.search(r"^Latency min/avg/max: \d+/[\d.]+/\d+$", srvr, re.M), srvr
    assert re.search(r"^Zxid: 0x[0-9a-f]+$", srvr, re.M), srvr
    assert re.search(r"^Node count: \d+$", srvr, re.M), srvr
    assert re.search(r"^Outstanding: 0$", srvr, re.M), srvr


def test_stat_lists_clients(zk_server, client):
    out = four_letter(zk_server.port, "stat")
    assert "Clients:" in out
    assert "Mode: standalone" in out


def test_mntr(zk_server, client, base):
    kv = _mntr(zk_server.port)
    assert "zk_znode_count" in kv
    assert int(kv["zk_znode_count"]) >= 5  # /, /zookeeper, quota, config (+1: root counted twice)
    assert kv.get("zk_server_state") == "standalone"
    assert "zk_version" in kv
    before = int(kv["zk_znode_count"])
    client.create(base + "/counted")
    assert int(_mntr(zk_server.port)["zk_znode_count"]) == before + 1
    client.delete(base + "/counted")
    assert int(_mntr(zk_server.port)["zk_znode_count"]) == before


def test_conf(zk_server):
    out = four_letter(zk_server.port, "conf")
    kv = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert kv["clientPort"] == str(zk_server.port)
    assert kv["tickTime"] == "2000"
    assert kv["minSessionTimeout"] == "4000"
    assert kv["maxSessionTimeout"] == "40000"
