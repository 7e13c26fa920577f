#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine. Later issues add system parts here
# (unbound, PostgreSQL, BlueZoo, nftables), each installed only when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo is required (rustup)"; exit 1; }
bash scripts/system-deps.sh
# openssl is only needed to regenerate test certificates (tests/data/certs/make.sh); the DER files are committed.
cargo test --workspace --locked "$@"
