#!/usr/bin/env bash
# Installs the quicsend tool from the local package feed, as a user would, and moves a file with it:
#   tool-check.sh FEED VERSION
# A private NuGet cache, so a stale package of the same version cannot stand in for the one just packed.
set -euo pipefail
feed="$1"; version="$2"
work="$(mktemp -d)"
server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export NUGET_PACKAGES="$work/nuget"
dotnet tool install QuicSend.Cli --version "$version" --add-source "$feed" --tool-path "$work/tools" >/dev/null
qs="$work/tools/quicsend"
help="$("$qs" --help)"
for command in certs serve send get rpc bench; do
    grep -q "$command" <<<"$help" || { echo "tool-check: 'quicsend --help' does not list $command" >&2; exit 1; }
done
cd "$work"
"$qs" certs init >/dev/null
head -c $((40 << 20)) /dev/urandom > big.bin
port=$(( 20000 + RANDOM % 30000 ))
QUICSEND_TOKEN=tool-check "$qs" serve ./data --port "$port" > serve.log 2>&1 &
server=$!
for _ in $(seq 1 100); do grep -q Serving serve.log && break; sleep 0.2; done
grep -q Serving serve.log || { echo "tool-check: the server did not start:" >&2; cat serve.log >&2; exit 1; }
QUICSEND_TOKEN=tool-check "$qs" send big.bin "https://localhost:$port/" >/dev/null
QUICSEND_TOKEN=tool-check "$qs" get "https://localhost:$port/files/big.bin" copy.bin >/dev/null
cmp -s big.bin copy.bin || { echo "tool-check: the file that came back differs" >&2; exit 1; }
echo "tool-check: QuicSend.Cli $version installed from $feed; quicsend sent 40 MiB and got it back identical"
