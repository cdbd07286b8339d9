#!/usr/bin/env bash
# Before/after the engine switch in one session: this tree's benchmark program, built once against
# the quinn-proto engine (commit 2ec6b87, checked out and built in a folder of its own) and once
# against this tree (quiche), run alternately — old, new, old, new … — one timed run per row each
# time, so both engines see the same machine load. Prints both tables (medians over the rounds).
#
#   benchmarks/compare-engines.sh OLD_TREE [--runs N] [--quick] [--mib M] [--only TEXT]
#   QUICSEND_OLD_TREE=/path/to/old benchmarks/compare-engines.sh [options]
#
#   OLD_TREE   a checkout of 2ec6b87 built with its own build, e.g.
#                git worktree add --detach ../quinn-old 2ec6b87 && (cd ../quinn-old && ./build.sh --target=Build)
#              (it supplies its own crates; it needs no quiche)
#   --runs N   rounds of old+new (default 5): each row gets N timed runs per engine
#   --quick    64 MiB, 3 rounds
#   --mib, --only are handed to the benchmark.
# This tree must be built first (./build.sh --target=Build). The normal benchmark
# (./build.sh --target=Bench) does not need any of this.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
die() { echo "compare-engines: $*" >&2; exit 1; }

old="${QUICSEND_OLD_TREE:-}"
if [[ $# -gt 0 && "$1" != --* ]]; then old="$1"; shift; fi
[[ -n "$old" ]] || die "name the quinn-proto tree: compare-engines.sh OLD_TREE (or QUICSEND_OLD_TREE=...)"
old="$(cd "$old" && pwd)" || die "$old is not a folder"

rounds=5
pass=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) rounds="$2"; shift 2 ;;
        --quick) rounds=3; pass+=(--mib 64); shift ;;
        --mib|--only) pass+=("$1" "$2"); shift 2 ;;
        *) die "unknown option $1" ;;
    esac
done

[[ -f "$old/src/QuicSend/QuicSend.csproj" && -f "$old/native/target/release/libquicsend_native.so" ]] ||
    die "$old has no built QuicSend; run its ./build.sh --target=Build first"
grep -q 'CongestionControl.Bbr\b\|Bbr = 0' "$old/src/QuicSend/Transport/QuicEndpointOptions.cs" ||
    die "$old does not look like the quinn-proto engine (no CongestionControl.Bbr)"
[[ -f "$repo/native/target/release/libquicsend_native.so" ]] || die "build this tree first: ./build.sh --target=Build"

# The old tree gets a copy of this benchmark's sources (its obj/bin stay apart from this tree's).
copy="$old/artifacts/bench-current"
mkdir -p "$copy"
cp "$here/QuicSend.Benchmarks/"*.cs "$here/QuicSend.Benchmarks/QuicSend.Benchmarks.csproj" "$copy/"
echo "compare-engines: building the benchmark against $old (quinn-proto) and $repo (quiche)"
dotnet build "$copy/QuicSend.Benchmarks.csproj" -c Release -nologo -v q \
    -p:QuicSendSource="$old/src" -p:QuicSendEngine=quinn-proto >"$copy/build.log" 2>&1 ||
    { cat "$copy/build.log" >&2; die "building the benchmark against the old tree failed"; }
dotnet build "$here/QuicSend.Benchmarks/QuicSend.Benchmarks.csproj" -c Release -nologo -v q >"$copy/build-new.log" 2>&1 ||
    { cat "$copy/build-new.log" >&2; die "building the benchmark failed"; }
old_dll="$copy/bin/Release/net10.0/QuicSend.Benchmarks.dll"
new_dll="$here/QuicSend.Benchmarks/bin/Release/net10.0/QuicSend.Benchmarks.dll"

out="$(mktemp -d "${TMPDIR:-/tmp}/compare-engines.XXXXXX")"
echo "compare-engines: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds; samples and logs in $out"
for ((i = 1; i <= rounds; i++)); do
    for engine in old new; do
        dll="$old_dll"; [[ "$engine" == new ]] && dll="$new_dll"
        echo "compare-engines: round $i/$rounds, $engine engine"
        dotnet "$dll" --runs 1 ${pass[@]+"${pass[@]}"} --samples "$out/$engine.tsv" >>"$out/$engine.log" 2>&1 ||
            { tail -20 "$out/$engine.log" >&2; die "the $engine engine's benchmark failed (log: $out/$engine.log)"; }
    done
done
echo "compare-engines: done $(date -u '+%H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"

for engine in old new; do
    echo
    [[ "$engine" == old ]] && echo "=== Before: quinn-proto engine ($old) ===" || echo "=== After: quiche engine ($repo) ==="
    dotnet "$new_dll" --table-from "$out/$engine.tsv"
done
