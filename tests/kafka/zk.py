#!/usr/bin/env python3
"""Small kazoo helper for tests/kafka/run.sh: read and wait on the znodes Kafka 0.9 keeps in
ZooKeeper (here: rzk). Every command prints one JSON line on stdout; exit status 1 on timeout.

  zk.py HOST:PORT get PATH                      data (text) + stat, or {"exists": false}
  zk.py HOST:PORT children PATH                 sorted children + stat
  zk.py HOST:PORT wait-brokers N TIMEOUT        until /brokers/ids has N children
  zk.py HOST:PORT wait-controller-move OLD_ID OLD_EPOCH TIMEOUT
                                                until /controller names another broker and
                                                /controller_epoch > OLD_EPOCH
  zk.py HOST:PORT wait-registered ID MIN_CZXID TIMEOUT
                                                until /brokers/ids/ID exists with czxid > MIN_CZXID
  zk.py HOST:PORT wait-gone PATH TIMEOUT        until PATH does not exist
  zk.py HOST:PORT wait-exists PATH TIMEOUT      until PATH exists
"""

import json
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError


def stat_dict(st):
    return {
        "czxid": st.czxid,
        "mzxid": st.mzxid,
        "pzxid": st.pzxid,
        "ctime": st.ctime,
        "mtime": st.mtime,
        "version": st.version,
        "cversion": st.cversion,
        "aversion": st.aversion,
        "ephemeralOwner": hex(st.ephemeralOwner),
        "dataLength": st.dataLength,
        "numChildren": st.numChildren,
    }


def get(zk, path):
    try:
        data, st = zk.get(path)
    except NoNodeError:
        return {"path": path, "exists": False}
    return {
        "path": path,
        "exists": True,
        "data": None if data is None else data.decode("utf-8", "replace"),
        "stat": stat_dict(st),
    }


def children(zk, path):
    try:
        kids, st = zk.get_children(path, include_data=True)
    except NoNodeError:
        return {"path": path, "exists": False}
    return {"path": path, "exists": True, "children": sorted(kids), "stat": stat_dict(st)}


def poll(timeout, fn):
    """Calls fn() every 100 ms until it returns a truthy value or timeout seconds pass."""
    t0 = time.time()
    while True:
        r = fn()
        if r:
            r["waited_s"] = round(time.time() - t0, 2)
            return r
        if time.time() - t0 > timeout:
            return None
        time.sleep(0.1)


def main():
    hosts, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    zk = KazooClient(hosts=hosts, timeout=30.0)
    zk.start(timeout=30)
    try:
        if cmd == "get":
            out = get(zk, args[0])
        elif cmd == "children":
            out = children(zk, args[0])
        elif cmd == "wait-brokers":
            n, timeout = int(args[0]), float(args[1])

            def f():
                c = children(zk, "/brokers/ids")
                return c if c.get("exists") and len(c["children"]) == n else None

            out = poll(timeout, f)
        elif cmd == "wait-controller-move":
            old_id, old_epoch, timeout = int(args[0]), int(args[1]), float(args[2])

            def f():
                c = get(zk, "/controller")
                e = get(zk, "/controller_epoch")
                if not c["exists"] or not e["exists"]:
                    return None
                cid = json.loads(c["data"])["brokerid"]
                epoch = int(e["data"])
                if cid != old_id and epoch > old_epoch:
                    return {"controller": cid, "epoch": epoch, "controller_node": c, "epoch_node": e}
                return None

            out = poll(timeout, f)
        elif cmd == "wait-registered":
            bid, min_czxid, timeout = args[0], int(args[1]), float(args[2])

            def f():
                g = get(zk, f"/brokers/ids/{bid}")
                return g if g["exists"] and g["stat"]["czxid"] > min_czxid else None

            out = poll(timeout, f)
        elif cmd == "wait-gone":
            path, timeout = args[0], float(args[1])
            out = poll(timeout, lambda: None if zk.exists(path) else {"path": path, "exists": False})
        elif cmd == "wait-exists":
            path, timeout = args[0], float(args[1])
            out = poll(timeout, lambda: get(zk, path) if zk.exists(path) else None)
        else:
            print(json.dumps({"error": f"unknown command {cmd}"}))
            return 2
    finally:
        zk.stop()
        zk.close()
    if out is None:
        print(json.dumps({"timeout": True, "cmd": cmd, "args": args}))
        return 1
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
