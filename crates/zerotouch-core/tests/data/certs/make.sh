#!/usr/bin/env bash
# Regenerates the device certificates used by tests/identity.rs with the openssl CLI.
# Device certificates never expire (notAfter 99991231235959Z, RFC 5280 4.1.2.5); `openssl ca`
# is used because it can set an exact end date. Run from this directory; outputs DER files.
set -euo pipefail
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat > "$work/ca.cnf" <<CNF
[ ca ]
default_ca = zt
[ zt ]
dir = $work
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = any
copy_extensions = none
[ any ]
commonName = supplied
CNF
: > "$work/index.txt"; echo 1000 > "$work/serial"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" \
  -subj "/CN=zerotouch test manufacturer CA" -days 3650 -out "$work/ca.pem" 2>/dev/null
issue() { # name keyspec...
  local name=$1; shift
  openssl req -new -nodes -newkey "$@" -keyout "$work/$name.key" -subj "/CN=$name" -out "$work/$name.csr" 2>/dev/null
  openssl ca -batch -config "$work/ca.cnf" -cert "$work/ca.pem" -keyfile "$work/ca.key" \
    -startdate 20260101000000Z -enddate 99991231235959Z -in "$work/$name.csr" -out "$work/$name.pem" 2>/dev/null
  openssl x509 -in "$work/$name.pem" -outform DER -out "$name.der"
  openssl pkey -in "$work/$name.key" -pubout -outform DER -out "$name.spki.der"
}
issue device-p256 ec -pkeyopt ec_paramgen_curve:P-256
issue device-ed25519 ed25519
issue device-rsa rsa:2048
issue device-p384 ec -pkeyopt ec_paramgen_curve:P-384
