#!/bin/sh
# Installs, from Debian 12's own archive, everything ork's tests and examples
# need to build Rust guests for WASI: rustc 1.63 with the wasm32-wasi standard
# library, wasm-ld, and the crates the SDK, the examples and the test guests
# use (as an offline cargo registry under /usr/share/cargo/registry); and a C
# compiler, which cgo needs to link the wasmtime engine into ork.
set -eu
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  rustc cargo libstd-rust-dev-wasm32 lld-14 gcc libc6-dev \
  librust-serde-dev librust-serde-derive-dev librust-serde-json-dev librust-serde-yaml-dev \
  librust-syn-dev librust-quote-dev librust-proc-macro2-dev \
  >/dev/null
# npm fetches the CPython WASI interpreter at build time; pytest runs the
# Python SDK's tests on the host's CPython; pip (ork python install) too.
command -v npm >/dev/null 2>&1 || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
python3 -m pip --version >/dev/null 2>&1 || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
if ! python3 -m pytest --version >/dev/null 2>&1; then
  if [ "$(command -v python3)" = /usr/bin/python3 ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pytest >/dev/null
  else
    python3 -m pip install -q pytest
  fi
fi
echo "installed: $(/usr/bin/rustc --version), wasm32-wasi std, wasm-ld-14"
