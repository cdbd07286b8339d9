#!/usr/bin/env bash
# Supplies the engine's sources and builds BoringSSL once.
#
#   engine.sh     populate quiche/ and BoringSSL, build BoringSSL (a no-op when done)
#
# quiche/ is a git submodule (cloudflare/quiche at 0.26.1). Where GitHub is
# reachable it comes from there, with quiche's own BoringSSL submodule;
# otherwise from the offline mirrors in ../shared/mirrors (a bare quiche
# repository and a BoringSSL tarball, checked against its sha256). Nothing
# third-party is committed: the submodule is a pointer, the sources live in the
# submodule's work tree and in .deps/ (gitignored).
#
# build/patches/quiche-*.patch are the project's own fixes to quiche, applied on top.
#
# BoringSSL is built with cmake into .deps/boringssl/build (static, PIC) and
# handed to quiche's build.rs through QUICHE_BSSL_PATH (native/.cargo/config.toml),
# so `cargo clean` never rebuilds it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
mirrors="${QUICSEND_MIRRORS:-$repo/../shared/mirrors}"
# A clone of a local checkout (git clone . /tmp/x) finds the mirrors beside the checkout it came from.
if [[ -z "${QUICSEND_MIRRORS:-}" && ! -d "$mirrors" ]]; then
    origin="$(git -C "$repo" remote get-url origin 2>/dev/null || true)"
    origin="${origin#file://}"
    [[ -d "$origin" && -d "$origin/../shared/mirrors" ]] && mirrors="$origin/../shared/mirrors"
fi
quiche_url="https://github.com/cloudflare/quiche.git"
quiche_commit="445292f46e05b72d56b9b957da77bfac3d24fc77"   # tag 0.26.1
bssl_commit="f1c75347daa2ea81a941e953f2263e0a4d970c8d"     # what quiche 0.26.1 pins
bssl_tarball="boringssl-f1c75347.tar.xz"
bssl_sha256="8b647c2dcbfe971a87ff76ac2e7e471e3e5352cb41d3a99c0da6ed6a22e5d993"
deps="$repo/.deps/boringssl"
stamp="$deps/stamp"

say() { echo "engine: $*"; }
die() { echo "engine: $*" >&2; exit 1; }

cd "$repo"

# 1. quiche: the submodule at its pinned commit.
if [[ ! -f quiche/quiche/Cargo.toml ]]; then
    [[ -d .git || -f .git ]] || die "quiche/ is empty and this is not a git checkout; clone the repository with git (git clone --recursive) so the submodule can be populated."
    if timeout 60 git submodule update --init quiche >/dev/null 2>&1; then
        say "quiche populated from $quiche_url"
    elif [[ -d "$mirrors/quiche.git" ]]; then
        mirror="$(cd "$mirrors" && pwd)/quiche.git"
        git -c protocol.file.allow=always -c url."file://$mirror".insteadOf="$quiche_url" \
            submodule update --init quiche >/dev/null \
            || die "could not populate quiche/ from the mirror $mirror"
        say "quiche populated from the offline mirror ($mirror)"
    else
        die "quiche/ is empty: $quiche_url is not reachable and there is no mirror at $mirrors/quiche.git. Run with Internet access once (git submodule update --init --recursive), or set QUICSEND_MIRRORS to a folder holding quiche.git and $bssl_tarball."
    fi
fi
have="$(git -C quiche rev-parse HEAD)"
[[ "$have" == "$quiche_commit" ]] || die "quiche/ is at $have, not at 0.26.1 ($quiche_commit); run 'git submodule update quiche'."

# Our fixes to quiche, applied to the submodule's work tree (never committed there), each once.
for patch in "$here"/patches/quiche-*.patch; do
    [[ -f "$patch" ]] || continue
    if git -C quiche apply --check --reverse "$patch" >/dev/null 2>&1; then
        continue # already applied
    fi
    git -C quiche apply "$patch" || die "could not apply $(basename "$patch") to quiche/; reset it with 'git -C quiche checkout .' and run again."
    say "applied $(basename "$patch")"
done
# Each patch must still read as applied with all of them in: the check above is how a checkout built before
# knows not to apply it again. A later patch that edits within three lines of an earlier one's change breaks that.
for patch in "$here"/patches/quiche-*.patch; do
    [[ -f "$patch" ]] || continue
    git -C quiche apply --check --reverse "$patch" >/dev/null 2>&1 \
        || die "$(basename "$patch") no longer reads as applied once all patches are in: a later patch changes lines within its context; move that change further away."
done

# 2. BoringSSL sources: quiche's nested submodule if present, else the tarball.
if [[ -f "$stamp" && "$(cat "$stamp")" == "$bssl_commit" && -f "$deps/build/libssl.a" && -f "$deps/build/libcrypto.a" ]]; then
    say "BoringSSL $bssl_commit already built (.deps/boringssl/build)"
    exit 0
fi
src=""
if [[ -f quiche/quiche/deps/boringssl/CMakeLists.txt ]]; then
    src="$repo/quiche/quiche/deps/boringssl"
elif timeout 120 git -C quiche submodule update --init quiche/deps/boringssl >/dev/null 2>&1 \
        && [[ -f quiche/quiche/deps/boringssl/CMakeLists.txt ]]; then
    src="$repo/quiche/quiche/deps/boringssl"
    say "BoringSSL populated from GitHub (quiche's submodule)"
else
    tarball="$mirrors/$bssl_tarball"
    [[ -f "$tarball" ]] || die "BoringSSL is not reachable on GitHub and $tarball is missing; set QUICSEND_MIRRORS to the folder that holds it."
    echo "$bssl_sha256  $tarball" | sha256sum -c --quiet - >/dev/null 2>&1 \
        || die "$tarball does not have the expected sha256 $bssl_sha256; the mirror is damaged or not the one quiche 0.26.1 pins."
    rm -rf "$deps/src"
    mkdir -p "$deps/src"
    tar -xJf "$tarball" -C "$deps/src" --strip-components=1
    src="$deps/src"
    say "BoringSSL unpacked from the offline mirror ($tarball, sha256 checked)"
fi

# 3. Build it once: static and position-independent, since it is linked into the shim's cdylib.
command -v cmake >/dev/null || die "cmake is required to build BoringSSL (apt-get install cmake)."
command -v c++ >/dev/null || die "a C++ compiler is required to build BoringSSL (apt-get install g++)."
say "building BoringSSL (once; about a minute on 2 cores)"
rm -rf "$deps/build"
cmake -S "$src" -B "$deps/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
      -DBUILD_TESTING=OFF >"$deps/cmake.log" 2>&1 || { tail -30 "$deps/cmake.log" >&2; die "cmake could not configure BoringSSL (log: .deps/boringssl/cmake.log)"; }
cmake --build "$deps/build" --target ssl crypto -j "$(nproc)" >>"$deps/cmake.log" 2>&1 \
    || { tail -30 "$deps/cmake.log" >&2; die "building BoringSSL failed (log: .deps/boringssl/cmake.log)"; }
[[ -f "$deps/build/libssl.a" && -f "$deps/build/libcrypto.a" ]] || die "the BoringSSL build produced no libssl.a/libcrypto.a in .deps/boringssl/build"
echo "$bssl_commit" > "$stamp"
say "BoringSSL built (.deps/boringssl/build)"
