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

demo: build
	./target/debug/kimai-mcp demo

bench:
	$(CARGO) bench --locked --bench bench

clean:
	$(CARGO) clean
