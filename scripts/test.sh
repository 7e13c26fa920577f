#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine. Later issues add system parts here
# (unbound, PostgreSQL, BlueZoo, nftables), each installed only when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo is required (rustup)"; exit 1; }
# The DNS tests (crates/zerotouch-dns) start a real unbound on loopback to see what a recursive
# resolver does to our traffic; Debian puts it in /usr/sbin, which may not be on PATH.
if ! command -v unbound >/dev/null && [ ! -x /usr/sbin/unbound ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && apt-get install -y -qq unbound
  elif sudo -n true 2>/dev/null; then
    sudo -n apt-get update -qq && sudo -n apt-get install -y -qq unbound
  else
    echo "unbound is required by the DNS tests: apt-get install unbound (as root)"; exit 1
  fi
fi
# openssl is only needed to regenerate test certificates (tests/data/certs/make.sh); the DER files are committed.
cargo test --workspace --locked "$@"
