"""Helpers shared by the end-to-end tests: server processes, 4lw, a cuttable
TCP relay and the few request types kazoo 2.x does not expose.

Nothing in here sleeps: rzk reports readiness on NOTIFY_SOCKET, Apache is
probed whenever it logs, everything else is event driven.
"""
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import namedtuple

from kazoo.protocol.serialization import (
    int_struct,
    long_struct,
    read_string,
    stat_struct,
    write_buffer,
    write_string,
)
from kazoo.protocol.states import ZnodeStat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APACHE_JAR = "/usr/share/java/zookeeper.jar"
APACHE_CP = ":".join(
    [
        "/etc/zookeeper/conf",
        APACHE_JAR,
        "/usr/share/java/slf4j-log4j12.jar",
        "/usr/share/java/log4j-1.2.jar",
        "/usr/share/java/servlet-api.jar",
    ]
)
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"

# How often the container/TTL reaper runs. Apache only reads this as a JVM
# system property (-D); rzk reads it from zoo.cfg. Apache ignores the zoo.cfg
# line, so the same file works for both.
CONTAINER_CHECK_MS = 100


def rzk_binary():
    return os.environ.get("RZK_SERVER_BIN") or os.path.join(
        REPO, "target", "release", "rzk-server"
    )


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def four_letter(port, cmd, timeout=5.0, host="127.0.0.1"):
    """Send a four-letter word and read the reply until the server closes."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cmd.encode("ascii"))
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode("utf-8", "replace")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ZkServer:
    """One server process (rzk or Apache) on a free 127.0.0.1 port."""

    def __init__(self, kind, tick_time=2000, extra_cfg=None, startup_timeout=30.0):
        self.kind = kind
        self.tick_time = tick_time
        self.port = free_port()
        self.host = "127.0.0.1"
        self.hostport = "%s:%d" % (self.host, self.port)
        self.tmpdir = tempfile.mkdtemp(prefix="zk-e2e-%s-" % kind)
        self.data_dir = os.path.join(self.tmpdir, "data")
        os.mkdir(self.data_dir)
        self.cfg_path = os.path.join(self.tmpdir, "zoo.cfg")
        self.log_path = os.path.join(self.tmpdir, "server.log")
        cfg = {
            "tickTime": str(tick_time),
            "dataDir": self.data_dir,
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "4lw.commands.whitelist": "*",
            "admin.enableServer": "false",
            # rzk serves Prometheus metrics on :7000 by default; keep parallel servers apart.
            "metricsProvider.className": "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
            "extendedTypesEnabled": "true",
            "znode.container.checkIntervalMs": str(CONTAINER_CHECK_MS),
        }
        cfg.update(extra_cfg or {})
        with open(self.cfg_path, "w") as f:
            for k, v in cfg.items():
                f.write("%s=%s\n" % (k, v))
        self.proc = None
        try:
            self._start(startup_timeout)
        except BaseException:
            self.cleanup()  # the error message carries the log tail
            raise

    def _command(self):
        if self.kind == "rzk":
            return [rzk_binary(), "start-foreground", self.cfg_path]
        return [
            "java",
            "-Xshare:auto",
            "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-Dznode.container.checkIntervalMs=%d" % CONTAINER_CHECK_MS,
            "-cp",
            APACHE_CP,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            self.cfg_path,
        ]

    def _start(self, timeout):
        """Returns once the server serves. rzk says so on NOTIFY_SOCKET (systemd's readiness
        protocol); Apache is asked (ruok, srvr) each time it logs something, and at least once
        a second. The wait blocks on those and on a pidfd of the process, never sleeps."""
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, NO_COLOR="1")
        notify = None
        if self.kind == "rzk":
            path = os.path.join(self.tmpdir, "notify.sock")
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind(path)
            env["NOTIFY_SOCKET"] = path
        self.proc = subprocess.Popen(
            self._command(),
            cwd=self.tmpdir,
            stdout=self._log if notify else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        pidfd = os.pidfd_open(self.proc.pid)
        deadline = time.monotonic() + timeout
        last = None
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        "%s server exited with %s during startup\n%s"
                        % (self.kind, self.proc.returncode, self.log_tail())
                    )
                if notify is None:
                    last = self._apache_serving()
                    if last is True:
                        threading.Thread(target=self._pump_log, daemon=True).start()
                        return
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if notify is not None:
                    readable, _, _ = select.select([notify, pidfd], [], [], left)
                    if notify in readable:
                        msg = notify.recv(4096).decode("utf-8", "replace")
                        last = msg
                        if "READY=1" in msg.splitlines():
                            return
                else:
                    readable, _, _ = select.select([self.proc.stdout, pidfd], [], [], min(left, 1.0))
                    if self.proc.stdout in readable:
                        self._copy_log()
        finally:
            os.close(pidfd)
            if notify is not None:
                notify.close()
        self.stop()
        raise RuntimeError(
            "%s server did not become ready within %.0fs (last: %r)\n%s"
            % (self.kind, timeout, last, self.log_tail())
        )

    def _apache_serving(self):
        """True once ruok says imok and srvr reports a state (Apache answers imok before it
        has loaded its database); otherwise what it said."""
        try:
            if four_letter(self.port, "ruok", timeout=1.0) != "imok":
                return "no imok"
            srvr = four_letter(self.port, "srvr", timeout=1.0)
            return True if "not currently serving" not in srvr else srvr
        except OSError as e:
            return repr(e)

    def _copy_log(self):
        """Moves what Apache wrote to its stdout pipe into server.log; False at EOF."""
        data = os.read(self.proc.stdout.fileno(), 65536)
        if data and self._log is not None:
            self._log.write(data)
            self._log.flush()
        return bool(data)

    def _pump_log(self):
        try:
            while self._copy_log():
                pass
        except (OSError, ValueError):
            pass

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=60):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return _ANSI.sub("", "\n".join(lines[-n:]))
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def cleanup(self):
        self.stop()
        if os.environ.get("ZK_E2E_KEEP_TMP"):
            return
        shutil.rmtree(self.tmpdir, ignore_errors=True)


class TcpProxy:
    """A relay between clients and a server that can be cut on demand.

    cut() closes every relayed connection and the listening socket, so a
    client behind it loses its TCP connection without sending closeSession
    and cannot reconnect: the server has to expire the session.
    restore() listens again on the same port.
    """

    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.hostport = "127.0.0.1:%d" % self.port
        self._lock = threading.Lock()
        self._conns = []
        self._listener = None
        self._stop = threading.Event()
        self.restore()

    def restore(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(16)
        self._listener = ls
        t = threading.Thread(target=self._accept_loop, args=(ls,), daemon=True)
        t.start()

    def _accept_loop(self, ls):
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            with self._lock:
                self._conns.append((c, s))
            threading.Thread(target=self._pump, args=(c, s), daemon=True).start()

    def _pump(self, a, b):
        socks = [a, b]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 0.5)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
                if a.fileno() < 0 or b.fileno() < 0:
                    return
        except (OSError, ValueError):
            return
        finally:
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self):
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for pair in conns:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.cut()


# ---------------------------------------------------------------------------
# Requests kazoo 2.x has no public API for. They are sent with kazoo's own
# connection (client._call), so framing, xids and sessions are kazoo's.
# ---------------------------------------------------------------------------


def _create_body(path, data, acl, flags):
    b = bytearray()
    b.extend(write_string(path))
    b.extend(write_buffer(data))
    b.extend(int_struct.pack(len(acl)))
    for a in acl:
        b.extend(int_struct.pack(a.perms) + write_string(a.id.scheme) + write_string(a.id.id))
    b.extend(int_struct.pack(flags))
    return b


def _read_create2_response(buf, offset):
    path, offset = read_string(buf, offset)
    stat = ZnodeStat._make(stat_struct.unpack_from(buf, offset))
    return path, stat


class CreateContainer(namedtuple("CreateContainer", "path data acl flags")):
    type = 19

    def serialize(self):
        return _create_body(self.path, self.data, self.acl, self.flags)

    @classmethod
    def deserialize(cls, buf, offset):
        return _read_create2_response(buf, offset)


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = 21

    def serialize(self):
        b = _create_body(self.path, self.data, self.acl, self.flags)
        b.extend(long_struct.pack(self.ttl))
        return b

    @classmethod
    def deserialize(cls, buf, offset):
        return _read_create2_response(buf, offset)


class RawCreate(namedtuple("RawCreate", "path data acl flags")):
    """Opcode 1 with arbitrary flags."""

    type = 1

    def serialize(self):
        return _create_body(self.path, self.data, self.acl, self.flags)

    @classmethod
    def deserialize(cls, buf, offset):
        return read_string(buf, offset)[0]


def barrier(client, base, name, timeout=10.0):
    """Wait until every watch callback queued on `client` before now has run.

    kazoo delivers watch callbacks in order on one thread, and the server sends
    a notification before the reply to any later request on the same
    connection. So: set an exists-watch on a new path, create it, and wait for
    that event; every earlier event has been delivered by then. The node is a
    sibling of `base`, so no watch below `base` fires.
    """
    import queue
    from kazoo.protocol.states import EventType

    seen = queue.Queue()
    p = "%s__barrier-%s" % (base, name)
    assert client.exists(p, watch=seen.put) is None
    client.create(p)
    ev = seen.get(timeout=timeout)
    assert ev.type == EventType.CREATED and ev.path == p


def call(client, request, timeout=10.0):
    async_result = client.handler.async_result()
    client._call(request, async_result)
    return async_result.get(timeout=timeout)


# The *stored* ephemeralOwner of containers and TTL nodes (snapshot / txn log,
# as signed longs). Clients never see these: their Stat shows 0.
STORED_CONTAINER_OWNER = -(1 << 63)  # 0x8000000000000000


def stored_ttl_owner(ttl_ms):
    return (0xFF00000000000000 | ttl_ms) - (1 << 64)
