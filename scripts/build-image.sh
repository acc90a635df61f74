#!/usr/bin/env bash
# Build the Crescendo container image (FROM scratch) with the three binaries.
#
#   scripts/build-image.sh [--profile release|dev] [--tag TAG]
#
# 1. cargo build --profile P of crescendo-controller, crescendo-agent, crescendo-flowsim;
#    `dev` reuses the debug build that `cargo test` already made (target/debug).
# 2. Stage a build context in a temp dir: the binaries (debug info stripped from the
#    copies, symbols kept), exactly the shared libraries `ldd` lists for them, at the same
#    paths, and deploy/image/{passwd,group,nsswitch.conf}. The binaries are
#    glibc-dynamic (no musl target on the build machines), so the image carries its
#    own libc, libm, libgcc_s and ld-linux.
# 3. docker build -f deploy/image/Dockerfile, tagged crescendo:<workspace version> or TAG.
#
# Prints the image reference and its size. Needs cargo, ldd, docker; no registry access
# (nothing is pulled).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 [--profile release|dev] [--tag TAG]" >&2; exit 2; }

profile=release
tag=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || usage; profile=$2; shift 2 ;;
    --profile=*) profile=${1#*=}; shift ;;
    --tag) [ $# -ge 2 ] || usage; tag=$2; shift 2 ;;
    --tag=*) tag=${1#*=}; shift ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
case "$profile" in
  release) bin_dir=target/release ;;
  dev) bin_dir=target/debug ;;
  *) echo "--profile must be release or dev, got '$profile'" >&2; exit 2 ;;
esac

# version = "…" inside [workspace.package] of the workspace Cargo.toml
version=$(awk '
  /^\[/ { in_pkg = ($0 == "[workspace.package]") }
  in_pkg && /^[[:space:]]*version[[:space:]]*=/ { gsub(/.*=[[:space:]]*"|".*/, ""); print; exit }
' Cargo.toml)
if [ -z "$version" ]; then
  echo "no version in [workspace.package] of Cargo.toml" >&2
  exit 1
fi
tag=${tag:-crescendo:$version}

bins=(crescendo-controller crescendo-agent crescendo-flowsim)

echo "==> cargo build --profile $profile (${bins[*]})"
cargo build --locked --profile "$profile" \
  -p crescendo-controller -p crescendo-agent -p crescendo-flowsim --bins

ctx=$(mktemp -d "${TMPDIR:-/tmp}/crescendo-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
rootfs=$ctx/rootfs
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp" "$ctx/home"
chmod 1777 "$rootfs/tmp"

# Copy a file (following symlinks) to the same absolute path under rootfs/.
stage_file() {
  local src=$1
  mkdir -p "$rootfs$(dirname "$src")"
  cp -L "$src" "$rootfs$src"
}

# The shared libraries a binary loads, one absolute path a line, from ldd:
#   libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)
#   /lib64/ld-linux-x86-64.so.2 (0x…)
# linux-vdso is provided by the kernel. A missing library is an error.
shared_libs() {
  local out
  if ! out=$(ldd "$1" 2>&1); then
    case "$out" in
      *"not a dynamic executable"*|*"statically linked"*) return 0 ;;
      *) echo "ldd $1 failed: $out" >&2; return 1 ;;
    esac
  fi
  if grep -q "not found" <<<"$out"; then
    echo "$1 needs libraries this machine lacks:" >&2
    grep "not found" <<<"$out" >&2
    return 1
  fi
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out"
}

strip_cmd=""
if command -v strip >/dev/null 2>&1; then strip_cmd=strip; fi

echo "==> staging the build context in $ctx"
libs=()
for b in "${bins[@]}"; do
  src=$bin_dir/$b
  if [ ! -x "$src" ]; then
    echo "missing $src after cargo build" >&2
    exit 1
  fi
  cp "$src" "$rootfs/usr/local/bin/$b"
  if [ -n "$strip_cmd" ]; then
    # Debug info only: symbol names stay, so panics still print readable backtraces.
    "$strip_cmd" --strip-debug "$rootfs/usr/local/bin/$b"
  fi
  while IFS= read -r lib; do
    [ -n "$lib" ] && libs+=("$lib")
  done < <(shared_libs "$src")
done
if [ ${#libs[@]} -gt 0 ]; then
  while IFS= read -r lib; do
    stage_file "$lib"
    echo "    $lib"
  done < <(printf '%s\n' "${libs[@]}" | sort -u)
fi
cp deploy/image/passwd deploy/image/group deploy/image/nsswitch.conf "$rootfs/etc/"
chmod 0644 "$rootfs"/etc/*
chmod 0755 "$rootfs/usr/local/bin"/*

previous=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)

echo "==> docker build $tag"
docker build \
  --file deploy/image/Dockerfile \
  --build-arg "VERSION=$version" \
  --build-arg "PROFILE=$profile" \
  --tag "$tag" \
  "$ctx"

# A rebuild moves the tag; drop the image it left untagged (CI rebuilds crescendo:e2e on
# every run). Fails harmlessly when a container or another tag still uses it.
current=$(docker image inspect -f '{{.Id}}' "$tag")
if [ -n "$previous" ] && [ "$previous" != "$current" ] &&
  [ "$(docker image inspect -f '{{len .RepoTags}}' "$previous" 2>/dev/null)" = 0 ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi

size=$(docker image inspect -f '{{.Size}}' "$tag")
printf '==> built %s (profile %s): %s bytes (%s MB)\n' \
  "$tag" "$profile" "$size" "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')"
