# kimai-mcp: build, test and measure.
#   make build   debug build
#   make test    unit + integration tests, then the real-client interop checks
#   make lint    rustfmt check and clippy with warnings as errors
#   make demo    run the stdio server against the built-in simulated Kimai
#   make bench   release build, then the speed and memory figures
#   make static  statically linked x86-64 Linux binary in target/static/kimai-mcp
#   make image   the container image (Dockerfile) from that binary; make image-test checks it
#   make install / uninstall   the static binary, its two links, the systemd unit and the
#                example configs (PREFIX, DESTDIR honoured; see below)
CARGO ?= cargo

.PHONY: soak fuzz bench-compare build release test unit interop deploy lint demo bench clean static install uninstall image image-test

build:
	$(CARGO) build

release:
	$(CARGO) build --release

test: unit interop deploy image-test

# The isolation tests open over 1,000 sockets at once (an attacker's idle connections) and
# the server under test accepts them: more than the usual soft limit of 1,024 open files. Raise
# the soft limit for the test process up to NOFILE, or to the hard limit where that is lower.
NOFILE ?= 8192
RAISE_NOFILE = soft=$$(ulimit -n); hard=$$(ulimit -Hn); want=$(NOFILE); \
	if [ "$$hard" != unlimited ] && [ "$$hard" -lt "$$want" ]; then want=$$hard; fi; \
	if [ "$$soft" != unlimited ] && [ "$$soft" -lt "$$want" ]; then ulimit -n "$$want"; fi

# tests/shared_state.rs runs Debian's redis-server (installed with apt-get when missing and root).
unit:
	$(RAISE_NOFILE); $(CARGO) test --locked

interop: build
	bash tests/interop/run.sh

# The systemd unit: `systemd-analyze security` (fails above 2.0) and `verify`, and the
# install/uninstall round trip into a scratch DESTDIR; then nginx as a TLS proxy in front of
# `kimai-mcp serve` (one and two instances; two with --state behind least_conn, against
# redis-server). Installs nginx (and redis-server) with apt-get when missing.
deploy: build
	bash tests/deploy.sh
	bash tests/deploy/nginx.sh

# The long load test: 32 Streamable HTTP and 16 SSE sessions for SOAK_SECONDS (default 300),
# in release mode; fails if RSS grows by more than 10% from the first to the last minute, or
# if /health or a tool call takes over 100 ms with 500 idle connections open.
SOAK_SECONDS ?= 300
soak:
	$(RAISE_NOFILE); SOAK_SECONDS=$(SOAK_SECONDS) $(CARGO) test --release --locked --test tests long_soak -- --ignored --nocapture

# Fuzzing (cargo fuzz, libFuzzer): each target for FUZZ_SECONDS (default 60). cargo fuzz
# needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = jsonrpc tool_args users_json dates http_request oauth jws
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

# The same workload against the Python kimai-mcp 2.20.1 (installed with its [server] extra
# into target/pycompare/): stdio figures, then Streamable HTTP at 1/8/32 sessions, side by side.
bench-compare: release
	test -x target/pycompare/bin/kimai-mcp-streamable || (python3 -m venv target/pycompare && target/pycompare/bin/pip install --quiet "kimai-mcp[server]==2.20.1")
	python3 benches/compare_python.py target/release/kimai-mcp target/pycompare/bin/kimai-mcp
	PYTHON_KIMAI_MCP_STREAMABLE=$(CURDIR)/target/pycompare/bin/kimai-mcp-streamable $(CARGO) bench --locked --bench bench

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# A scripted MCP session against the built-in simulated Kimai: handshake, tool list, two calls.
DEMO_SESSION = \
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"make-demo","version":"1"}}}' \
  '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
  '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"user_current","arguments":{}}}' \
  '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"config","arguments":{"type":"timesheet"}}}'

demo: build
	@printf '%s\n' $(DEMO_SESSION) | RUST_LOG=warn ./target/debug/kimai-mcp demo | python3 -c 'import json,sys; [print("<- id %s: %s\n" % (m.get("id"), "\n".join(c["text"] for c in m["result"]["content"]) if "content" in m.get("result", {}) else json.dumps(m["result"])[:200])) for m in map(json.loads, sys.stdin)]'

# The noisy-neighbour rows hold over 1,000 sockets at once, and so does the server they attack
# (it inherits the limit): RAISE_NOFILE as for the tests. BENCH_ONLY=noisy runs that table alone.
bench:
	$(RAISE_NOFILE); $(CARGO) bench --locked --bench bench

clean:
	$(CARGO) clean

# A statically linked binary (glibc, static-pie) that runs on any x86-64 Linux with nothing
# else installed: TLS uses the compiled-in webpki roots, and name lookups use the "files" and
# "dns" sources that glibc (2.34+) builds into libc itself. The linker's warning that
# getaddrinfo "requires at runtime the shared libraries from the glibc version used for
# linking" concerns only other NSS sources (mdns, ldap, systemd-resolved's "resolve"): those
# are skipped when their module cannot be loaded, and lookups fall through to /etc/hosts and
# the servers in /etc/resolv.conf. RUSTFLAGS reach only the target crates with --target, so
# build scripts and proc macros stay dynamic, as they must.
STATIC_TARGET = x86_64-unknown-linux-gnu
STATIC_BIN = target/static/kimai-mcp

static:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --locked --release --target $(STATIC_TARGET)
	mkdir -p target/static
	cp target/$(STATIC_TARGET)/release/kimai-mcp $(STATIC_BIN)
	@# ldd says "not a dynamic executable" for static, "statically linked" for static-pie;
	@# the ELF headers decide: no program interpreter and no shared library needed.
	@ldd $(STATIC_BIN) 2>&1 | grep -Eq 'not a dynamic executable|statically linked' \
	  || { echo "make static: $(STATIC_BIN) is dynamically linked:"; ldd $(STATIC_BIN); exit 1; }
	@! readelf -lW $(STATIC_BIN) | grep -q 'INTERP' \
	  || { echo "make static: $(STATIC_BIN) has a program interpreter"; exit 1; }
	@! readelf -dW $(STATIC_BIN) | grep -q '(NEEDED)' \
	  || { echo "make static: $(STATIC_BIN) needs shared libraries"; exit 1; }
	@echo "$(STATIC_BIN): static ($$(ldd $(STATIC_BIN) 2>&1 | tr -d '\t')), $$(stat -c %s $(STATIC_BIN)) bytes, $$($(STATIC_BIN) --version)"

# Installation layout (the unit's paths are rewritten when PREFIX or SYSCONFDIR differ):
#   $(PREFIX)/bin/kimai-mcp, kimai-mcp-streamable -> kimai-mcp, kimai-mcp-server -> kimai-mcp
#   $(UNITDIR)/kimai-mcp.service     /etc/systemd/system: the directory for units the
#                                    administrator installs (a distribution package would use
#                                    /usr/lib/systemd/system instead: UNITDIR=…)
#   $(SYSCONFDIR)/kimai-mcp/kimai-mcp.env.example, users.example.json
# `install` does not build: `make static` as yourself, then `sudo make install` (cargo never
# runs as root). BINARY= installs another build, e.g. target/release/kimai-mcp.
# `uninstall` removes exactly those files, and the config directory only when nothing else
# (your kimai-mcp.env and users.json) is in it.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= /etc/systemd/system
CONFDIR = $(SYSCONFDIR)/kimai-mcp
BINARY ?= $(STATIC_BIN)
INSTALL ?= install

install:
	@test -x "$(BINARY)" || { echo "make install: $(BINARY) is missing: run \`make static\` first (or pass BINARY=path)"; exit 1; }
	$(INSTALL) -d -m 755 "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(CONFDIR)"
	$(INSTALL) -m 755 "$(BINARY)" "$(DESTDIR)$(BINDIR)/kimai-mcp"
	ln -sf kimai-mcp "$(DESTDIR)$(BINDIR)/kimai-mcp-streamable"
	ln -sf kimai-mcp "$(DESTDIR)$(BINDIR)/kimai-mcp-server"
	sed -e 's|/usr/local/bin/kimai-mcp|$(BINDIR)/kimai-mcp|g' -e 's|/etc/kimai-mcp/|$(CONFDIR)/|g' \
	  kimai-mcp.service > "$(DESTDIR)$(UNITDIR)/kimai-mcp.service"
	chmod 644 "$(DESTDIR)$(UNITDIR)/kimai-mcp.service"
	$(INSTALL) -m 644 config/kimai-mcp.env.example "$(DESTDIR)$(CONFDIR)/kimai-mcp.env.example"
	$(INSTALL) -m 644 config/users.example.json "$(DESTDIR)$(CONFDIR)/users.example.json"
	@echo "Installed. Next: copy $(CONFDIR)/*.example to kimai-mcp.env and users.json, edit, chmod 600,"
	@echo "then: systemctl daemon-reload && systemctl enable --now kimai-mcp"

uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/kimai-mcp" "$(DESTDIR)$(BINDIR)/kimai-mcp-streamable" \
	  "$(DESTDIR)$(BINDIR)/kimai-mcp-server" "$(DESTDIR)$(UNITDIR)/kimai-mcp.service" \
	  "$(DESTDIR)$(CONFDIR)/kimai-mcp.env.example" "$(DESTDIR)$(CONFDIR)/users.example.json"
	@if [ -d "$(DESTDIR)$(CONFDIR)" ]; then rmdir "$(DESTDIR)$(CONFDIR)" 2>/dev/null \
	  || echo "kept $(DESTDIR)$(CONFDIR): it holds your own files"; fi

# The container image (Dockerfile: FROM scratch, the static binary, user 10001), tagged
# $(IMAGE):<Cargo.toml version> and $(IMAGE):latest, built with the first of docker, podman and
# buildah that works here (docker only when `docker info` reaches a daemon; CONTAINER_TOOL=
# chooses). Docker image format, so that the HEALTHCHECK is kept. Does not build the binary:
# `make static` first. IMAGE_SOURCE= fills the org.opencontainers.image.source label.
IMAGE ?= kimai-mcp
IMAGE_SOURCE ?=
CONTAINER_TOOL ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -1)

image:
	@test -x $(STATIC_BIN) || { echo "make image: $(STATIC_BIN) is missing: run \`make static\` first"; exit 1; }
	@tool="$(CONTAINER_TOOL)"; \
	if [ -z "$$tool" ]; then \
	  for t in docker podman buildah; do \
	    command -v $$t >/dev/null 2>&1 && $$t info >/dev/null 2>&1 && { tool=$$t; break; }; \
	  done; \
	fi; \
	[ -n "$$tool" ] || { echo "make image: none of docker (with a daemon), podman, buildah works here"; exit 1; }; \
	case $$tool in docker) build="docker build" ;; podman) build="podman build --format docker" ;; \
	  buildah) build="buildah build --format docker" ;; *) echo "make image: unknown CONTAINER_TOOL $$tool"; exit 1 ;; esac; \
	echo "make image: $$build -t $(IMAGE):$(VERSION) -t $(IMAGE):latest ."; \
	$$build --build-arg VERSION=$(VERSION) --build-arg SOURCE="$(IMAGE_SOURCE)" \
	  -t $(IMAGE):$(VERSION) -t $(IMAGE):latest . || exit 1; \
	if [ $$tool = buildah ]; then size=$$(buildah images --format '{{.Size}}' $(IMAGE):$(VERSION)); \
	else size="$$($$tool image inspect --format '{{.Size}}' $(IMAGE):$(VERSION)) bytes"; fi; \
	echo "make image: $(IMAGE):$(VERSION) and $(IMAGE):latest built with $$tool, $$size"

# Builds the image with podman (and `make static` when the binary is missing or older than the
# sources), checks its configuration and file system, runs it as the image would run (its root
# file system read-only, as user 10001, in a network namespace of its own) against the
# simulated Kimai behind TLS with a private CA, and validates compose.yaml. Installs podman and
# docker-compose with apt-get when missing (root); skips only where that cannot be done.
image-test:
	bash tests/image/run.sh
