#!/usr/bin/env bash
# Installs the system parts the workspace's build and tests need, each only when missing.
# Called by scripts/test.sh and by .ci/run before anything builds.
set -euo pipefail

# Runs apt-get as root, through sudo, or says what to run.
apt_install() {
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && apt-get install -y -qq "$@"
  elif sudo -n true 2>/dev/null; then
    sudo -n apt-get update -qq && sudo -n apt-get install -y -qq "$@"
  else
    echo "missing system packages; run as root: apt-get install $*"; exit 1
  fi
}

# The DNS tests (crates/zerotouch-dns) start a real unbound on loopback to see what a recursive
# resolver does to our traffic; Debian puts it in /usr/sbin, which may not be on PATH.
if ! command -v unbound >/dev/null && [ ! -x /usr/sbin/unbound ]; then
  apt_install unbound
fi
