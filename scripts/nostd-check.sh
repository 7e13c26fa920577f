#!/usr/bin/env bash
# The no_std proof and footprint check of zerotouch-core, zerotouch-provisioner,
# zerotouch-device, zerotouch-peer and the framings of zerotouch-dns and zerotouch-ble.
#
# No bare-metal target can be installed here, so no_std is proved by checks that together
# leave no gap (see shared notes, "Proving no_std without a bare-metal target"):
#   0. the check crate (nostd-check/, its own workspace) compiles exactly the dependency graph
#      of the crates it covers (the core; the provisioner, the device session, the peer roles and
#      the DNS and BLE framings too in the sets with `provisioner`, `device`, `peer`, `dns` and
#      `ble`)
#      with exactly their features, and names each of those crates and every direct dependency
#      of them with `extern crate`;
#   a. it builds as a #![no_std] staticlib with its own panic handler and allocator, for each
#      device feature set (a dependency that links std fails with E0152);
#   b. `cargo tree` for a bare-metal target shows no `std` feature (on any package, the crate
#      itself included) and no getrandom, for the core, the provisioner (without its default
#      `std`), the device session, the peer roles, the DNS framing (zerotouch-dns without its
#      default server and client), the BLE framing (zerotouch-ble without its default tokio,
#      bluer and relay) and the check crate;
#   c. the library's undefined symbols are only mem*/bcmp, unwinding and compiler-runtime ones;
#   d. a C runner linked with the library alone runs the crates' real API and reports code size
#      (linked with --gc-sections, minus the same runner not calling the library) and peak heap;
#      in the sets with `device`, also the code of zerotouch-device (symbols of the linked runner
#      attributed by name) and the peak heap of its flow-1 session with 30 visible networks;
#      in the sets with `peer`, likewise the code of zerotouch-peer and the peak heap of its
#      joiner and of its sponsor through a whole flow-2 handoff; in the sets with `dns`, the code
#      of zerotouch-dns and the peak heap of its TunnelClient through two whole exchanges; in the
#      sets with `ble`, the code of zerotouch-ble and the peak heap of a device's BleLink carrying
#      a 4,202-byte message each way at ATT MTU 23;
#   e. the figures are compared with nostd-check/budgets.txt.
#
# Usage: scripts/nostd-check.sh [--write-budgets]
#   --write-budgets  rewrite nostd-check/budgets.txt from this run's figures (rounded up to
#                    4 KiB for sizes and 1 KiB for heap). Review the diff: budgets only go down.
# Environment: CARGO_TARGET_DIR (default nostd-check/target), CC (default gcc),
#   NOSTD_CHECK_BREAKDOWN=1 also prints the biggest contributors to code size (needs python3),
#   RUSTFLAGS (the script adds -C symbol-mangling-version=v0; CARGO_ENCODED_RUSTFLAGS would
#   override it and is refused).
set -euo pipefail

write_budgets=0
case "${1:-}" in
  "") ;;
  --write-budgets) write_budgets=1 ;;
  *) echo "usage: $0 [--write-budgets]" >&2; exit 2 ;;
esac

# Resolve CARGO_TARGET_DIR against the caller's directory before moving to the repo root.
if [[ -n "${CARGO_TARGET_DIR:-}" && "${CARGO_TARGET_DIR}" != /* ]]; then
  CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/nostd-check/target}
export CARGO_TARGET_DIR="$target_dir"
cc=${CC:-gcc}

manifest=nostd-check/Cargo.toml
budgets=nostd-check/budgets.txt
bare_metal=thumbv7em-none-eabihf
work="$target_dir/nostd-check"
mkdir -p "$work"

# Feature sets: name and the check crate's features. `provisioner` adds zerotouch-provisioner,
# `device` zerotouch-device, `peer` zerotouch-peer, `dns` zerotouch-dns and `ble` zerotouch-ble
# (all default-features = false); the other features are the core's.
#   p256-only         the core alone as a new device builds it: P-256 only, no certificate
#                     parsing, no barcode;
#   p256-device       a new device's firmware: the same core plus the flow-1 device session,
#                     run through a whole setup;
#   p256-provisioner  an already-joined device that opens a setup network on a signed order;
#   p256-peer         a device that hands the home credential over to a new one, or receives it
#                     (flow 2: both roles, run through a whole handoff);
#   p256-dns          the same core plus the DNS binding's framing, for a device whose only way
#                     out is DNS (a TunnelClient run through whole exchanges);
#   p256-ble          the same core plus the BLE binding's framing, for a device that is set up
#                     over BLE (two BleLinks, a 4,202-byte message each way at MTU 23);
#   full              everything the no_std crates can do.
set_names=(p256-only p256-device p256-provisioner p256-peer p256-dns p256-ble full)
set_features=("" "device" "provisioner" "peer" "dns" "ble" "ed25519,x25519,x509,barcode,provisioner,device,peer,dns,ble")

# Undefined symbols a no_std library may leave to the platform: the C memory functions (libc
# or compiler_builtins on a device), unwinding symbols that core and alloc, precompiled with
# panic=unwind, name but never reach under panic=abort (rust-lang/rust#106864), and integer
# and shift helpers of the compiler runtime (libgcc / compiler-rt; compiler_builtins on a
# device), e.g. __ashlti3 for the provisioner's 128-bit IPv6 prefix masks.
allowed_undefined='^(memcpy|memmove|memset|memcmp|bcmp|_Unwind_[A-Za-z_]+|rust_eh_personality|__u?(div|mod|mul)[sdt]i3|__mulv[sdt]i3|__(ashl|ashr|lshr)[sdt]i3)$'

failures=()
fail() {
  echo "nostd-check: FAIL: $*" >&2
  failures+=("$*")
}
note() { echo "nostd-check: $*"; }
indent() { sed 's/^/    /' >&2; }

# ---------------------------------------------------------------------------------------------
# 0. The check crate covers the dependency graphs of the core and the provisioner, and nothing
#    more.
# ---------------------------------------------------------------------------------------------
core_features() { # check features -> the core's features among them, comma-separated
  local f out=() fs
  IFS=',' read -r -a fs <<< "$1"
  for f in "${fs[@]}"; do
    [[ -n "$f" && "$f" != provisioner && "$f" != device && "$f" != peer && "$f" != dns && "$f" != ble ]] && out+=("$f")
  done
  (IFS=','; echo "${out[*]}")
}
# The crates a feature set covers, then the check crate itself.
scopes_of() { # check features -> "core [provisioner] [device] [peer] [dns] [ble] check"
  local out=core
  [[ ",$1," == *,provisioner,* ]] && out+=" provisioner"
  [[ ",$1," == *,device,* ]] && out+=" device"
  [[ ",$1," == *,peer,* ]] && out+=" peer"
  [[ ",$1," == *,dns,* ]] && out+=" dns"
  [[ ",$1," == *,ble,* ]] && out+=" ble"
  echo "$out check"
}
# The `cargo tree` arguments of one scope for a feature set, into the array `scope_args`:
#   core         zerotouch-core with the set's core features;
#   provisioner  zerotouch-provisioner without its default `std` (likewise zerotouch-device for
#   device, peer `device`, zerotouch-peer for `peer`, zerotouch-dns without its default server
#   dns, ble     and client for `dns`, zerotouch-ble without its default tokio, bluer and relay
#                for `ble`), with the set's core features turned on through it (as a firmware
#                depending on both gets them);
#   check        the check crate with the set's features.
set_scope_args() { # scope check-features
  local cf
  cf=$(core_features "$2")
  case $1 in
    core)
      scope_args=(-p zerotouch-core --no-default-features)
      [[ -n "$cf" ]] && scope_args+=(--features "$cf") ;;
    provisioner | device | peer | dns | ble)
      scope_args=(-p "zerotouch-$1" --no-default-features)
      [[ -n "$cf" ]] && scope_args+=(--features "$(sed 's/[^,][^,]*/zerotouch-core\/&/g' <<< "$cf")") ;;
    check)
      scope_args=(--manifest-path "$manifest" --no-default-features)
      [[ -n "$2" ]] && scope_args+=(--features "$2") ;;
  esac
  return 0
}
# Every package of the graph as one line, and each of its enabled features as one line
# 'package feature "name"'. `--format {f}` lists all of a package's features, including those
# of the root and those the root's own features turn on, which `-e features` does not show.
tree_lines() { # cargo tree args... -> sorted unique lines, the check crate's own left out
  local out
  if ! out=$(cargo tree -q --target "$bare_metal" -e normal --prefix none --format '{p}|{f}' \
               "$@" 2> "$work/tree-err"); then
    fail "'cargo tree $*' failed:"
    indent < "$work/tree-err"
    return 1
  fi
  # A package seen before ends in " (*)".
  awk -F'|' '{ print $1; n = split($2, fs, ","); for (i = 1; i <= n; i++) print $1 " feature \"" fs[i] "\"" }' \
      <<< "${out// (\*)/}" \
    | grep -v '^nostd-check v' | sort -u
}
declare -A graphs_ok
for i in "${!set_names[@]}"; do
  name=${set_names[$i]} features=${set_features[$i]}
  read -r -a scopes <<< "$(scopes_of "$features")"
  graphs_ok[$name]=1
  for scope in "${scopes[@]}"; do
    set_scope_args "$scope" "$features"
    tree_lines "${scope_args[@]}" > "$work/graph-$scope-$name" || graphs_ok[$name]=0
  done
  [[ ${graphs_ok[$name]} == 1 ]] || continue
  crates=("${scopes[@]:0:${#scopes[@]}-1}") # all but "check"
  for scope in "${crates[@]}"; do cat "$work/graph-$scope-$name"; done | sort -u > "$work/graph-crates-$name"
  if ! diff "$work/graph-crates-$name" "$work/graph-check-$name" > "$work/graph-$name.diff"; then
    fail "$name: nostd-check does not build the dependency graph of ${crates[*]} (versions or features differ;"
    echo "  '<' only in the crates' graphs, '>' only in nostd-check's; align nostd-check/Cargo.toml" >&2
    echo "  with [workspace.dependencies] and nostd-check/Cargo.lock with Cargo.lock):" >&2
    indent < "$work/graph-$name.diff"
  fi
done
# Each crate, and every direct dependency of it, is named with `extern crate` (else it is
# never loaded).
for crate_args in "zerotouch-core --features ed25519,x509,barcode" "zerotouch-provisioner" "zerotouch-device" "zerotouch-peer" "zerotouch-dns" "zerotouch-ble"; do
  read -r crate_pkg crate_features <<< "$crate_args"
  # shellcheck disable=SC2086 # crate_features is empty or "--features list"
  if direct=$(cargo tree -q -p "$crate_pkg" --target "$bare_metal" -e normal --depth 1 --prefix none \
                --no-default-features $crate_features 2> "$work/tree-err"); then
    while read -r dep _; do
      crate=${dep//-/_}
      if ! grep -Eq "^extern crate ${crate};" nostd-check/src/lib.rs; then
        fail "nostd-check/src/lib.rs does not name '$dep' ($crate_pkg or its dependency) with 'extern crate $crate;'"
      fi
    done < <(sort -u <<< "$direct")
  else
    fail "'cargo tree -p $crate_pkg --depth 1' failed:"
    indent < "$work/tree-err"
  fi
done

# ---------------------------------------------------------------------------------------------
# b. No std feature and no getrandom in the graphs for a bare-metal target.
# ---------------------------------------------------------------------------------------------
for i in "${!set_names[@]}"; do
  name=${set_names[$i]} features=${set_features[$i]}
  read -r -a scopes <<< "$(scopes_of "$features")"
  for scope in "${scopes[@]}"; do
    set_scope_args "$scope" "$features"
    if [[ ${graphs_ok[$name]} == 1 ]]; then
      std_lines=$(grep -F ' feature "std"' "$work/graph-$scope-$name" || true)
      if [[ -n "$std_lines" ]]; then
        fail "$name: 'cargo tree ${scope_args[*]}' shows std features for $bare_metal:"
        indent <<< "$std_lines"
      fi
    fi
    # `cargo tree -i` exits non-zero when getrandom is in no lock file at all, and prints a
    # warning when it is locked but not reached: either way, nothing on stdout is success.
    # When the package's lock entry names several versions (zerotouch-dns's optional server
    # and client use getrandom), `-i getrandom` is ambiguous: each version is asked for.
    specs=(getrandom)
    for ((attempt = 0; attempt < 2; attempt++)); do
      ambiguous=()
      for spec in "${specs[@]}"; do
        set +e
        out=$(cargo tree -q "${scope_args[@]}" --target "$bare_metal" -e normal -i "$spec" \
                2> "$work/tree-err")
        rc=$?
        set -e
        if [[ -n "$out" ]]; then
          fail "$name: $spec is in the graph of '${scope_args[*]}' for $bare_metal:"
          indent <<< "$out"
        elif [[ $rc -ne 0 && $attempt -eq 0 ]] && grep -q 'is ambiguous' "$work/tree-err"; then
          mapfile -t ambiguous < <(sed -n 's/^ *\(getrandom@[^ ]*\)$/\1/p' "$work/tree-err")
        elif [[ $rc -ne 0 ]] && ! grep -q 'did not match any packages' "$work/tree-err"; then
          fail "$name: 'cargo tree ${scope_args[*]} -i $spec' failed:"
          indent < "$work/tree-err"
        fi
      done
      [[ ${#ambiguous[@]} -gt 0 ]] || break
      specs=("${ambiguous[@]}")
    done
  done
done

# ---------------------------------------------------------------------------------------------
# a, c, d. Build, inspect symbols, link and run, per feature set.
# ---------------------------------------------------------------------------------------------
sizes() { # executable -> "text rodata data eh_frame bss"
  size -A "$1" | awk '
    $1 == ".text" { t += $2 }
    $1 == ".rodata" || $1 == ".data.rel.ro" || $1 == ".gcc_except_table" { r += $2 }
    $1 == ".data" { d += $2 }
    $1 ~ /^\.eh_frame/ { e += $2 }
    $1 == ".bss" { b += $2 }
    END { print t + 0, r + 0, d + 0, e + 0, b + 0 }'
}
round_up() { echo $(( ($1 + $2 - 1) / $2 * $2 )); }

# The baseline: the same runner calling nothing from the library.
"$cc" -Os -no-pie -DZT_BASELINE -Wl,--gc-sections -o "$work/runner-baseline" nostd-check/runner.c
read -r base_text base_rodata base_data base_eh base_bss < <(sizes "$work/runner-baseline")

# v0 symbol mangling: demangled names then carry generic arguments, so generic code instantiated
# for zerotouch-device's types (its sorts, its queues) can be attributed to it. It changes
# symbol names, and the image by a few bytes (p256-device, when this was added: .text 4 and
# .rodata 24 bytes smaller than with the default mangling).
if [[ -n "${CARGO_ENCODED_RUSTFLAGS:-}" ]]; then
  echo "nostd-check: CARGO_ENCODED_RUSTFLAGS is set; unset it (use RUSTFLAGS)" >&2
  exit 2
fi
build_rustflags="${RUSTFLAGS:+$RUSTFLAGS }-C symbol-mangling-version=v0"

# The code of zerotouch-device in a linked runner: the .text symbols (aliases at one address
# counted once) whose demangled name names zerotouch_device (its functions, its types' trait
# impls and drop glue, generic code instantiated for its types), plus the check's entry points
# `nostd_check::device::entry::*`, never inlined, one per session method it calls, which hold
# what LTO inlined of the session into its caller. Under LTO code moves between crates: the
# core's functions inlined into the session count here, and session code inlined elsewhere
# does not.
# The same attribution serves zerotouch-peer (`nostd_check::peer::entry::*`) and zerotouch-dns
# (`nostd_check::dns::entry::*`; there the check's fake server calls the framing's decoders too,
# and those count where LTO keeps them out of line) and zerotouch-ble
# (`nostd_check::ble::entry::*`; the check's central counts where LTO keeps it out of line).
crate_symbols() { # executable device|peer|dns|ble -> one "size(hex) name" line per symbol
  nm -S -C --defined-only "$1" \
    | awk '$3 ~ /^[tTwW]$/' | sort -u -k1,1 \
    | awk -v c="$2" '{ n = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", n)
             if (index(n, "zerotouch_" c "::") || index(n, "nostd_check::" c "::entry::") == 1) print $2, n }'
}

declare -A figure
# The code of zerotouch-<crate> in the linked runner, into figure[<set>.<crate>_code_bytes].
crate_code() { # set runner device|peer|dns|ble
  # (grep -c, not -q: with pipefail, nm killed by SIGPIPE would fail the test.)
  if [[ "$(nm "$2" | grep -c ' _R' || true)" == 0 ]]; then
    fail "$1: the runner's symbols are not v0-mangled (RUSTFLAGS ignored?): zerotouch-$3's code cannot be attributed"
    return 0
  fi
  crate_symbols "$2" "$3" > "$work/$3-symbols-$1"
  local code=0 size
  while read -r size _; do code=$(( code + 16#$size )); done < "$work/$3-symbols-$1"
  (( code > 0 )) || fail "$1: no symbol of zerotouch-$3 in the runner"
  figure[$1.$3_code_bytes]=$code
}
for i in "${!set_names[@]}"; do
  name=${set_names[$i]} features=${set_features[$i]}
  build_args=(build --release --manifest-path "$manifest" --no-default-features)
  [[ -n "$features" ]] && build_args+=(--features "$features")
  note "$name: cargo ${build_args[*]}"
  if ! RUSTFLAGS="$build_rustflags" cargo "${build_args[@]}" 2> "$work/build-$name.log"; then
    cat "$work/build-$name.log" >&2
    fail "$name: the no_std staticlib does not build (errors above; E0152 'duplicate lang item' means something links std)"
    continue
  fi
  lib="$work/libnostd_check-$name.a"
  cp "$target_dir/release/libnostd_check.a" "$lib"

  # c. Undefined symbols of the archive, less those another member defines.
  nm --undefined-only "$lib" 2>/dev/null | awk '$1 == "U" { print $2 }' | sort -u > "$work/undef-$name"
  nm --defined-only "$lib" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u > "$work/def-$name"
  bad=$(comm -23 "$work/undef-$name" "$work/def-$name" | grep -Ev "$allowed_undefined" || true)
  if [[ -n "$bad" ]]; then
    fail "$name: the staticlib needs symbols a no_std library must not (std, libc beyond mem*, threads, an OS RNG?):"
    indent <<< "$bad"
  fi

  # d. Link the runner with the library alone (no -lpthread, -ldl, ...) and run it.
  runner="$work/runner-$name"
  if ! "$cc" -Os -no-pie -Wl,--gc-sections -o "$runner" nostd-check/runner.c "$lib" 2> "$work/link-$name.log"; then
    cat "$work/link-$name.log" >&2
    fail "$name: the runner does not link against the staticlib alone"
    continue
  fi
  if ! out=$(timeout 120 "$runner"); then
    echo "$out" >&2
    fail "$name: the runner failed (status = number of the failed step in nostd-check/src/run.rs)"
    continue
  fi
  field() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  # Bits of zt_check_features: 1 ed25519, 2 x509, 4 barcode, 8 provisioner, 16 device, 32 peer,
  # 64 dns, 128 ble.
  expect_features=0
  [[ ",$features," == *,ed25519,* ]] && expect_features=$(( expect_features | 1 ))
  [[ ",$features," == *,x509,* ]] && expect_features=$(( expect_features | 2 ))
  [[ ",$features," == *,barcode,* ]] && expect_features=$(( expect_features | 4 ))
  [[ ",$features," == *,provisioner,* ]] && expect_features=$(( expect_features | 8 ))
  [[ ",$features," == *,device,* ]] && expect_features=$(( expect_features | 16 ))
  [[ ",$features," == *,peer,* ]] && expect_features=$(( expect_features | 32 ))
  [[ ",$features," == *,dns,* ]] && expect_features=$(( expect_features | 64 ))
  [[ ",$features," == *,ble,* ]] && expect_features=$(( expect_features | 128 ))
  if [[ "$(field features)" != "$expect_features" ]]; then
    fail "$name: the library reports features=$(field features), expected $expect_features"
  fi
  read -r text rodata data eh bss < <(sizes "$runner")
  figure[$name.code_bytes]=$(( text - base_text ))
  figure[$name.flash_bytes]=$(( text + rodata + data - base_text - base_rodata - base_data ))
  figure[$name.peak_heap_bytes]=$(field peak_heap)
  figure[$name.arena_high_water]=$(field arena_high_water)
  figure[$name.allocs]=$(field allocs)
  figure[$name.static_ram_bytes]=$(( data + bss - base_data - base_bss - $(field arena_size) ))
  figure[$name.eh_frame_bytes]=$(( eh - base_eh ))
  if [[ ",$features," == *,device,* ]]; then
    crate_code "$name" "$runner" device
    figure[$name.device_session_peak_heap_bytes]=$(field device_session_peak_heap)
    figure[$name.device_request_len]=$(field device_request_len)
  fi
  if [[ ",$features," == *,peer,* ]]; then
    crate_code "$name" "$runner" peer
    figure[$name.joiner_peak_heap_bytes]=$(field joiner_peak_heap)
    figure[$name.sponsor_peak_heap_bytes]=$(field sponsor_peak_heap)
  fi
  if [[ ",$features," == *,dns,* ]]; then
    crate_code "$name" "$runner" dns
    figure[$name.dns_tunnel_peak_heap_bytes]=$(field dns_tunnel_peak_heap)
  fi
  if [[ ",$features," == *,ble,* ]]; then
    crate_code "$name" "$runner" ble
    figure[$name.ble_link_peak_heap_bytes]=$(field ble_link_peak_heap)
  fi

  if [[ "${NOSTD_CHECK_BREAKDOWN:-0}" == 1 ]] && command -v python3 > /dev/null; then
    note "$name: biggest contributors to .text (bytes, by crate of the symbol):"
    nm -S -C "$runner" | python3 -c '
import collections, re, sys
sizes = collections.Counter()
for line in sys.stdin:
    parts = line.split(None, 3)
    if len(parts) < 4 or parts[2] not in "tT":
        continue
    if parts[3].startswith("nostd_check::device::entry::"):
        sizes["zerotouch_device (entry points)"] += int(parts[1], 16)
        continue
    names = re.findall(r"(?:^|[<&( ])(?:mut )?([a-z_][a-z0-9_]*)::", parts[3])
    sizes[names[0] if names else parts[3].strip()[:40]] += int(parts[1], 16)
for crate, n in sizes.most_common(15):
    print(f"    {n:8d} {crate}")'
    if [[ -s "$work/ble-symbols-$name" ]]; then
      note "$name: biggest symbols counted as zerotouch-ble's code (bytes; all in $work/ble-symbols-$name):"
      while read -r size sym; do printf '    %8d %s\n' $(( 16#$size )) "${sym:0:150}"; done \
        < <(sort -r "$work/ble-symbols-$name" | head -12)
    fi
    if [[ -s "$work/dns-symbols-$name" ]]; then
      note "$name: biggest symbols counted as zerotouch-dns's code (bytes; all in $work/dns-symbols-$name):"
      while read -r size sym; do printf '    %8d %s\n' $(( 16#$size )) "${sym:0:150}"; done \
        < <(sort -r "$work/dns-symbols-$name" | head -12)
    fi
    if [[ -s "$work/device-symbols-$name" ]]; then
      note "$name: biggest symbols counted as zerotouch-device's code (bytes; all in $work/device-symbols-$name):"
      while read -r size sym; do printf '    %8d %s\n' $(( 16#$size )) "${sym:0:150}"; done \
        < <(sort -r "$work/device-symbols-$name" | head -12)
    fi
  fi
done

# ---------------------------------------------------------------------------------------------
# e. Budgets.
# ---------------------------------------------------------------------------------------------
declare -A budget aim
if [[ -f "$budgets" ]]; then
  while IFS='=' read -r key value; do
    key=${key//[[:space:]]/} value=${value//[[:space:]]/}
    [[ -z "$key" || "$key" == \#* ]] && continue
    if [[ "$key" == *.aim ]]; then aim[${key%.aim}]=$value; else budget[$key]=$value; fi
  done < "$budgets"
fi

checked_keys=(code_bytes flash_bytes peak_heap_bytes)
device_keys=(device_code_bytes device_session_peak_heap_bytes)
peer_keys=(peer_code_bytes joiner_peak_heap_bytes sponsor_peak_heap_bytes)
dns_keys=(dns_code_bytes dns_tunnel_peak_heap_bytes)
ble_keys=(ble_code_bytes ble_link_peak_heap_bytes)
keys_of() { # set name -> the budgeted keys of its figures
  local key
  for key in "${checked_keys[@]}" "${device_keys[@]}" "${peer_keys[@]}" "${dns_keys[@]}" "${ble_keys[@]}"; do
    [[ -n "${figure[$1.$key]:-}" ]] && echo "$key"
  done
  return 0
}
granule() { [[ $1 == *heap* ]] && echo 1024 || echo 4096; }
if [[ $write_budgets -eq 1 ]]; then
  {
    echo "# Budgets of scripts/nostd-check.sh: a figure above its budget fails the check."
    echo "# Each budget is the measured figure rounded up (4 KiB for sizes, 1 KiB for heap): where a"
    echo "# figure does not meet its aim yet, the budget holds it where it is so it cannot grow."
    echo "# Lower a budget when a figure drops (scripts/nostd-check.sh --write-budgets); never raise"
    echo "# one without saying why in the commit."
    echo "#"
    echo "# code_bytes: .text of the x86_64 runner linked with --gc-sections, minus the runner"
    echo "#   that calls nothing (opt-level z, LTO). Thumb-2 code for a Cortex-M is smaller."
    echo "# flash_bytes: code_bytes plus read-only data (.rodata, .data.rel.ro) and .data."
    echo "# peak_heap_bytes: most heap bytes live at once during zt_check_run (requested sizes,"
    echo "#   without a general-purpose allocator's overhead), the check's server side included."
    echo "# device_code_bytes (sets with device): the runner's .text symbols attributed to"
    echo "#   zerotouch-device by name (its functions, its types' impls and drop glue, generic code"
    echo "#   instantiated for them, the check's never-inlined entry points into the session)."
    echo "# device_session_peak_heap_bytes (sets with device): most heap bytes live at once from"
    echo "#   the device session's creation to its drop, the check's server side excluded, with 30"
    echo "#   visible networks."
    echo "# peer_code_bytes (sets with peer): the runner's .text symbols attributed to"
    echo "#   zerotouch-peer by name, as for device_code_bytes (entry points nostd_check::peer::entry)."
    echo "# joiner_peak_heap_bytes, sponsor_peak_heap_bytes (sets with peer): most heap bytes live at"
    echo "#   once in one role through a whole flow-2 handoff, the other role and the server excluded."
    echo "# dns_code_bytes (sets with dns): the runner's .text symbols attributed to zerotouch-dns by"
    echo "#   name, as for device_code_bytes (entry points nostd_check::dns::entry; the framing's"
    echo "#   decoders the check's fake server calls count where LTO keeps them out of line)."
    echo "# dns_tunnel_peak_heap_bytes (sets with dns): most heap bytes live at once in the"
    echo "#   TunnelClient through two whole exchanges (a 3,072-byte message), the fake server excluded."
    echo "# ble_code_bytes (sets with ble): the runner's .text symbols attributed to zerotouch-ble by"
    echo "#   name, as for device_code_bytes (entry points nostd_check::ble::entry)."
    echo "# ble_link_peak_heap_bytes (sets with ble): most heap bytes live at once in the device's"
    echo "#   BleLink carrying a 4,202-byte message each way at ATT MTU 23, the central excluded."
    echo "# *.aim: the long-term aim, shown in the summary, not enforced."
    for name in "${set_names[@]}"; do
      [[ -n "${figure[$name.code_bytes]:-}" ]] || { fail "$name: no figures to write"; continue; }
      echo
      for key in $(keys_of "$name"); do
        echo "$name.$key=$(round_up "${figure[$name.$key]}" "$(granule "$key")")"
      done
      for key in $(keys_of "$name"); do
        [[ -n "${aim[$name.$key]:-}" ]] && echo "$name.$key.aim=${aim[$name.$key]}"
      done
    done
  } > "$budgets.new"
  mv "$budgets.new" "$budgets"
  note "wrote $budgets"
  unset budget; declare -A budget
  while IFS='=' read -r key value; do
    [[ -z "$key" || "$key" == \#* || "$key" == *.aim ]] && continue
    budget[$key]=$value
  done < "$budgets"
fi

for name in "${set_names[@]}"; do
  [[ -n "${figure[$name.code_bytes]:-}" ]] || continue
  for key in $(keys_of "$name"); do
    value=${figure[$name.$key]} limit=${budget[$name.$key]:-}
    if [[ -z "$limit" ]]; then
      fail "$name.$key=$value has no budget in $budgets"
    elif (( value > limit )); then
      fail "$name.$key=$value exceeds its budget of $limit bytes in $budgets (by $(( value - limit )) bytes)"
    fi
  done
done

# ---------------------------------------------------------------------------------------------
# f. Summary.
# ---------------------------------------------------------------------------------------------
show() { # name key -> "value bytes (budget B, aim A)"
  local v=${figure[$1.$2]:-?} b=${budget[$1.$2]:-none} a=${aim[$1.$2]:-}
  printf '%s bytes (budget %s%s)' "$v" "$b" "${a:+, aim $a}"
}
for name in "${set_names[@]}"; do
  [[ -n "${figure[$name.code_bytes]:-}" ]] || { note "$name: no figures"; continue; }
  echo "nostd-check: $name code=$(show "$name" code_bytes) flash=$(show "$name" flash_bytes)" \
    "peak_heap=$(show "$name" peak_heap_bytes)"
  echo "nostd-check: $name   arena_high_water=${figure[$name.arena_high_water]} allocations=${figure[$name.allocs]}" \
    "static_ram=${figure[$name.static_ram_bytes]} host_unwind_tables=${figure[$name.eh_frame_bytes]}"
  if [[ -n "${figure[$name.device_session_peak_heap_bytes]:-}" ]]; then
    echo "nostd-check: $name   device_code=$(show "$name" device_code_bytes)" \
      "device_session_peak_heap=$(show "$name" device_session_peak_heap_bytes)" \
      "credential_request=${figure[$name.device_request_len]} bytes (30 visible networks)"
  fi
  if [[ -n "${figure[$name.peer_code_bytes]:-}" ]]; then
    echo "nostd-check: $name   peer_code=$(show "$name" peer_code_bytes)" \
      "joiner_peak_heap=$(show "$name" joiner_peak_heap_bytes)" \
      "sponsor_peak_heap=$(show "$name" sponsor_peak_heap_bytes)"
  fi
  if [[ -n "${figure[$name.dns_code_bytes]:-}" ]]; then
    echo "nostd-check: $name   dns_code=$(show "$name" dns_code_bytes)" \
      "dns_tunnel_peak_heap=$(show "$name" dns_tunnel_peak_heap_bytes)"
  fi
  if [[ -n "${figure[$name.ble_code_bytes]:-}" ]]; then
    echo "nostd-check: $name   ble_code=$(show "$name" ble_code_bytes)" \
      "ble_link_peak_heap=$(show "$name" ble_link_peak_heap_bytes)"
  fi
done

if (( ${#failures[@]} > 0 )); then
  echo "nostd-check: ${#failures[@]} failure(s):" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  exit 1
fi
note "OK: no_std, no std features, no getrandom, only allowed undefined symbols, within budgets"
