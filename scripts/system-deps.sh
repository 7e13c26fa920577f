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

# The PostgreSQL store's tests (crates/zerotouch-store, crates/zerotouch-cli) start a throwaway
# cluster on loopback (zerotouch_store_suite::postgres): initdb, pg_ctl and psql from Debian's
# packages, run as the `postgres` user the package creates when we are root.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${ZEROTOUCH_PG_BIN:-}" ]; then
  apt_install postgresql
fi

# zerotouch-ble's BlueZ backend (feature bluer, on by default): building bluer needs libdbus's
# headers found through pkg-config; its tests run BlueZ's D-Bus API simulated by BlueZoo on a
# private dbus-daemon (crates/zerotouch-ble/src/bluez/bluezoo.rs).
ble_packages=()
command -v pkg-config >/dev/null || ble_packages+=(pkg-config)
pkg-config --exists dbus-1 2>/dev/null || ble_packages+=(libdbus-1-dev)
command -v dbus-daemon >/dev/null || [ -x /usr/bin/dbus-daemon ] || ble_packages+=(dbus)
if [ "${#ble_packages[@]}" -gt 0 ]; then
  apt_install "${ble_packages[@]}"
fi

# BlueZoo, pinned: bluezoo/launch.py patches the ATT MTU inside it. Python 3.11 or later; the
# tests use $ZEROTOUCH_PYTHON, else python3.
bluezoo_version=1.0.2
python="${ZEROTOUCH_PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "BlueZoo needs Python 3.11 or later as ${python} (or set ZEROTOUCH_PYTHON)"; exit 1
fi
if [ "$("$python" -c 'import importlib.metadata as m; print(m.version("bluezoo"))' 2>/dev/null)" != "$bluezoo_version" ]; then
  "$python" -m pip install --quiet --disable-pip-version-check "bluezoo==${bluezoo_version}"
fi

# zerotouch-router's tests build network namespaces (iproute2's `ip`), load the setup network's
# ruleset with `nft`, and run dnsmasq as the router's DHCP server and filtering DNS forwarder.
# dnsmasq-base is Debian's dnsmasq binary without the system service the `dnsmasq` package
# would start on the host.
netns_packages=()
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || netns_packages+=(iproute2)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || netns_packages+=(nftables)
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || netns_packages+=(dnsmasq-base)
if [ "${#netns_packages[@]}" -gt 0 ]; then
  apt_install "${netns_packages[@]}"
fi
