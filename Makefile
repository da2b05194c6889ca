# kimai-mcp: build, test and measure.
#   make build   debug build
#   make test    unit + integration tests, then the real-client interop checks
#   make lint    rustfmt check and clippy with warnings as errors
#   make demo    run the stdio server against the built-in simulated Kimai
#   make bench   release build, then the speed and memory figures
CARGO ?= cargo

.PHONY: build release test unit interop lint demo bench clean

build:
	$(CARGO) build

release:
	$(CARGO) build --release

test: unit interop

unit:
	$(CARGO) test --locked

interop: build
	bash tests/interop/run.sh

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

bench:
	$(CARGO) bench --locked --bench bench

clean:
	$(CARGO) clean
