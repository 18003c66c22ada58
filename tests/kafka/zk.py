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
  zk.py HOST:PORT wait-partitions TOPIC[,TOPIC...] LEADERS ISR TIMEOUT
                                                until every partition of every TOPIC (as assigned
                                                in /brokers/topics/TOPIC) has a state
                                                (/brokers/topics/TOPIC/partitions/N/state) whose
                                                leader is one of LEADERS and whose ISR holds every
                                                broker of ISR (comma-separated ids, or "any")

The waits do not poll: each arms ZooKeeper watches on the znodes its condition reads, evaluates
the condition, and blocks until a watch fires (or the connection state changes), then re-arms
and re-evaluates. "waited_s" in the output is the time until the condition held.
"""

import json
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NoNodeError, OperationTimeoutError, SessionExpiredError


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


class Waiter:
    """Blocks until a condition on znodes holds, woken by ZooKeeper watches.

    wait(timeout, arm, check): arm(watch) sets watches on the znodes check() reads; check()
    returns a dict (done) or None. Watches are armed before the condition is read, so a change
    after the read fires one of them; each firing (and each connection state change, after which
    kazoo's watches may be gone) wakes the wait, which re-arms and re-evaluates."""

    def __init__(self, zk):
        self.cond = threading.Condition()
        self.events = 0
        self.watch = self._wake  # one callable: kazoo keeps a set of watchers per path
        zk.add_listener(self._wake)

    def _wake(self, _event=None):
        with self.cond:
            self.events += 1
            self.cond.notify_all()

    def wait(self, timeout, arm, check):
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            with self.cond:
                seen = self.events
            try:
                arm(self.watch)
                r = check()
            except (ConnectionLoss, OperationTimeoutError, SessionExpiredError):
                r = None  # the listener wakes us when the connection is back
            if r:
                r["waited_s"] = round(time.monotonic() - t0, 2)
                return r
            with self.cond:
                while self.events == seen:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self.cond.wait(left)


def watch_node(zk, path, w):
    """Data watch on PATH: fires when it is created, deleted or its data changes."""
    zk.exists(path, watch=w)


def watch_children(zk, path, w):
    """Child watch on PATH; while PATH does not exist, a watch for its creation."""
    while True:
        try:
            zk.get_children(path, watch=w)
            return
        except NoNodeError:
            if zk.exists(path, watch=w) is None:
                return
            # created between the two calls: now a child watch can be set


def ids(arg):
    return None if arg == "any" else {int(x) for x in arg.split(",") if x}


def partition_states(zk, topics, w=None):
    """{topic: {partition: state dict or None}} for every partition assigned in
    /brokers/topics/TOPIC ({} for a topic without that znode). With w, each znode read also
    gets a data watch (exists-watch on a missing one)."""
    out = {}
    for t in topics:
        tp = f"/brokers/topics/{t}"
        try:
            data, _ = zk.get(tp, watch=w)
        except NoNodeError:
            if w is not None:
                zk.exists(tp, watch=w)
            out[t] = {}
            continue
        parts = json.loads(data or b"{}").get("partitions", {})
        out[t] = {}
        for p in sorted(parts, key=int):
            sp = f"{tp}/partitions/{p}/state"
            try:
                sdata, _ = zk.get(sp, watch=w)
                out[t][p] = json.loads(sdata)
            except NoNodeError:
                if w is not None:
                    zk.exists(sp, watch=w)
                out[t][p] = None
    return out


def main():
    hosts, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    zk = KazooClient(hosts=hosts, timeout=30.0)
    zk.start(timeout=30)
    waiter = Waiter(zk)
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

            out = waiter.wait(timeout, lambda w: watch_children(zk, "/brokers/ids", w), f)
        elif cmd == "wait-controller-move":
            old_id, old_epoch, timeout = int(args[0]), int(args[1]), float(args[2])

            def arm(w):
                watch_node(zk, "/controller", w)
                watch_node(zk, "/controller_epoch", w)

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

            out = waiter.wait(timeout, arm, f)
        elif cmd == "wait-registered":
            bid, min_czxid, timeout = args[0], int(args[1]), float(args[2])
            path = f"/brokers/ids/{bid}"

            def f():
                g = get(zk, path)
                return g if g["exists"] and g["stat"]["czxid"] > min_czxid else None

            out = waiter.wait(timeout, lambda w: watch_node(zk, path, w), f)
        elif cmd == "wait-gone":
            path, timeout = args[0], float(args[1])
            out = waiter.wait(
                timeout,
                lambda w: watch_node(zk, path, w),
                lambda: None if zk.exists(path) else {"path": path, "exists": False},
            )
        elif cmd == "wait-exists":
            path, timeout = args[0], float(args[1])
            out = waiter.wait(
                timeout,
                lambda w: watch_node(zk, path, w),
                lambda: get(zk, path) if zk.exists(path) else None,
            )
        elif cmd == "wait-partitions":
            topics = [t for t in args[0].split(",") if t]
            leaders, isr, timeout = ids(args[1]), ids(args[2]), float(args[3])

            def ok(s):
                return (
                    s is not None
                    and (leaders is None or s.get("leader") in leaders)
                    and (isr is None or isr <= set(s.get("isr", [])))
                )

            def f():
                states = partition_states(zk, topics)
                if all(states[t] and all(ok(s) for s in states[t].values()) for t in topics):
                    return {
                        "topics": {
                            t: {p: {"leader": s["leader"], "isr": s["isr"], "leader_epoch": s.get("leader_epoch")}
                                for p, s in states[t].items()}
                            for t in topics
                        }
                    }
                return None

            out = waiter.wait(timeout, lambda w: partition_states(zk, topics, w), f)
            if out is None:
                # what it was still waiting for, for the failure message
                print(json.dumps({"timeout": True, "cmd": cmd, "args": args,
                                  "states": partition_states(zk, topics)}, sort_keys=True))
                return 1
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
