#!/usr/bin/env python3
"""Process events for tests/kafka/run.sh, without polling (stdlib only, Linux).

  notify.py hub NOTIFY_SOCK CTL_SOCK OWNER_PID
        Binds NOTIFY_SOCK, a unix datagram socket for systemd's readiness protocol, which every
        rzk-server gets as NOTIFY_SOCKET, and CTL_SOCK, a unix stream socket for wait-serving.
        Each datagram is attributed to its sender's pid (SO_PASSCRED / SCM_CREDENTIALS), so a
        restarted member (a new pid) starts without a status, and a member stays the
        rzk-server process itself (run.sh signals it directly). Writes "ready" to fd 3 once
        both sockets are bound, logs every status on stdout, exits when OWNER_PID does.
  notify.py wait-serving CTL_SOCK TIMEOUT [--with-leader] PID...
        Until every PID's latest status is a serving mode (standalone, leader, follower,
        observer), and with --with-leader one of them leads (leader or standalone). Prints
        {"modes": {PID: mode}, "waited_s": s}; exit status 1 on timeout, when a PID exits or
        when the hub is gone.
  notify.py wait-exit PID TIMEOUT
        Until process PID has exited (a pidfd in select). Prints {"pid", "exited", "waited_s"};
        exit status 1 if it still runs after TIMEOUT seconds.

rzk-server sends "READY=1\\nSTATUS=Mode: <mode>\\n" when it starts serving (again),
"STATUS=Mode: looking\\n" when an ensemble member stops serving, "STOPPING=1\\n" at shutdown
(src/server/notify.rs). The hub keeps the latest status of each sender and sends a client
first all of them, then every new one, as lines "PID STATUS".
"""

import json
import os
import select
import socket
import struct
import sys
import time

SERVING = {"standalone", "leader", "follower", "observer", "ready"}
LEADING = {"leader", "standalone"}
UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


def status_of(msg):
    """The status a notification datagram reports, or None if it reports none."""
    fields = {}
    for line in msg.decode("utf-8", "replace").splitlines():
        k, _, v = line.partition("=")
        fields[k] = v
    if fields.get("STOPPING") == "1":
        return "stopping"
    st = fields.get("STATUS", "")
    if st.startswith("Mode: "):
        return st[len("Mode: "):].strip() or None
    if fields.get("READY") == "1":
        return "ready"
    return None


def hub(notify_path, ctl_path, owner_pid):
    d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    d.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    d.bind(notify_path)
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.bind(ctl_path)
    ctl.listen(16)
    owner = os.pidfd_open(owner_pid)
    os.write(3, b"ready\n")
    os.close(3)
    t0 = time.monotonic()
    states = {}  # pid -> latest status
    clients = []

    def log(text):
        print(f"[{time.monotonic() - t0:8.3f}] {text}", flush=True)

    log(f"listening on {notify_path}")
    while True:
        readable, _, _ = select.select([d, ctl, owner] + clients, [], [])
        if owner in readable:
            log(f"owner {owner_pid} exited")
            return 0
        if d in readable:
            msg, anc, _flags, _addr = d.recvmsg(4096, socket.CMSG_SPACE(UCRED.size))
            pid = None
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = UCRED.unpack(data[: UCRED.size])[0]
            st = status_of(msg)
            log(f"pid {pid}: {msg!r} -> {st}")
            if pid is not None and st is not None:
                states[pid] = st
                line = f"{pid} {st}\n".encode()
                for c in list(clients):
                    try:
                        c.sendall(line)
                    except OSError:
                        clients.remove(c)
                        c.close()
        if ctl in readable:
            c, _ = ctl.accept()
            try:
                c.sendall("".join(f"{p} {s}\n" for p, s in states.items()).encode())
                clients.append(c)
            except OSError:
                c.close()
        for c in [c for c in clients if c in readable]:
            try:
                gone = not c.recv(4096)
            except OSError:
                gone = True
            if gone:
                clients.remove(c)
                c.close()


def pidfd(pid):
    """A pidfd for pid, or None if there is no such process (it exited and was reaped)."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def wait_serving(ctl_path, timeout, pids, with_leader):
    t0 = time.monotonic()
    deadline = t0 + timeout
    fds = {}
    for p in pids:
        fd = pidfd(p)
        if fd is None:
            print(json.dumps({"exited": p, "waited_s": 0.0}))
            return 1
        fds[fd] = p
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(ctl_path)
    states = {}
    buf = b""
    while True:
        modes = {str(p): states.get(p) for p in pids}
        if all(m in SERVING for m in modes.values()) and (
            not with_leader or any(m in LEADING for m in modes.values())
        ):
            print(json.dumps({"modes": modes, "waited_s": round(time.monotonic() - t0, 2)}))
            return 0
        left = deadline - time.monotonic()
        if left <= 0:
            print(json.dumps({"timeout": True, "modes": modes}))
            return 1
        readable, _, _ = select.select([c] + list(fds), [], [], left)
        for fd in readable:
            if fd in fds:
                print(json.dumps({"exited": fds[fd], "modes": modes,
                                  "waited_s": round(time.monotonic() - t0, 2)}))
                return 1
        if c in readable:
            data = c.recv(4096)
            if not data:
                print(json.dumps({"error": "notify hub gone", "modes": modes}))
                return 1
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                p, _, st = line.decode().partition(" ")
                states[int(p)] = st


def wait_exit(pid, timeout):
    t0 = time.monotonic()
    fd = pidfd(pid)
    exited = fd is None or bool(select.select([fd], [], [], timeout)[0])
    print(json.dumps({"pid": pid, "exited": exited, "waited_s": round(time.monotonic() - t0, 2)}))
    return 0 if exited else 1


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "hub":
        return hub(args[0], args[1], int(args[2]))
    if cmd == "wait-serving":
        rest = args[2:]
        with_leader = "--with-leader" in rest
        pids = [int(p) for p in rest if p != "--with-leader"]
        return wait_serving(args[0], float(args[1]), pids, with_leader)
    if cmd == "wait-exit":
        return wait_exit(int(args[0]), float(args[1]))
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
