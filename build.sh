#!/usr/bin/env bash
# Builds QuicSend and runs a target of build/build.cake (default: Demo).
#   ./build.sh                  build everything and run the demo
#   ./build.sh --target=Test    build everything and run the tests
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
command -v dotnet >/dev/null || { echo "build.sh: the .NET SDK (dotnet) is required: https://dot.net" >&2; exit 1; }
dotnet tool restore >/dev/null
exec dotnet cake build/build.cake "$@"
