#!/usr/bin/env bash
# The other JavaScript runtimes CI runs warren on, from the npm registry only: each is a binary
# inside a registry package, unpacked into .runtimes/<name>/ (git-ignored).
#
#   bash scripts/runtimes.sh bin bun     installs Bun (@oven/bun-linux-x64) if missing; prints its binary's path
#   bash scripts/runtimes.sh bin deno    installs Deno (@deno/linux-x64-glibc) if missing; prints its binary's path
#   bash scripts/runtimes.sh names       bun deno
set -euo pipefail
cd "$(dirname "$0")/.."

BUN_VERSION="1.4"
DENO_VERSION="2.9"

case "${1:-}" in
  names)
    echo "bun deno"
    ;;
  bin)
    name="${2:?usage: $0 bin bun|deno}"
    case "$name" in
      bun) package="@oven/bun-linux-x64@$BUN_VERSION" inside="package/bin/bun" ;;
      deno) package="@deno/linux-x64-glibc@$DENO_VERSION" inside="package/deno" ;;
      *) echo "usage: $0 bin bun|deno" >&2; exit 2 ;;
    esac
    bin="$PWD/.runtimes/$name/$name"
    if [[ ! -x "$bin" ]]; then
      bash scripts/npm-binary.sh "$package" "$inside" "$bin"
      echo "[runtimes] installed $name $("$bin" --version | head -1) into .runtimes/$name" >&2
    fi
    echo "$bin"
    ;;
  *)
    echo "usage: $0 bin bun|deno | names" >&2
    exit 2
    ;;
esac
