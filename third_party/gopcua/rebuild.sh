#!/usr/bin/env bash
# rebuild.sh rebuilds the patched gopcua copy (opcua/ beside this script)
# from the upstream module, as the Go module proxy serves it, plus the
# patches in patches/ applied in name order. See PATCHES.md.
#
#   rebuild.sh check     rebuild in a temporary directory and compare it
#                        with opcua/ byte for byte (exit 1 and the diff if
#                        they differ). Works offline once the module is in
#                        the module cache.
#   rebuild.sh write     replace opcua/ with the rebuilt copy (after an
#                        upgrade: change UPSTREAM_VERSION, write, fix the
#                        patches that no longer apply, re-test).
#   rebuild.sh new NAME  write what opcua/ has beyond the patches as the
#                        next patch, patches/NNNN-NAME.patch (edit opcua/
#                        first, then describe the change at the top of the
#                        new file and in PATCHES.md).
set -euo pipefail

UPSTREAM_MODULE=github.com/gopcua/opcua
UPSTREAM_VERSION=v0.9.1

here=$(cd "$(dirname "$0")" && pwd)
go=${GO:-go}

# The parts of the upstream module the build needs: the non-test sources of
# these packages, the node set schema/uaNodeSet.go embeds, LICENSE, go.mod
# and go.sum (the first patch trims go.mod to what these packages import).
PACKAGES=". debug errors id monitor schema server server/attrs server/refs stats ua uacp uapolicy uasc"
EXTRA_FILES="LICENSE go.mod go.sum schema/Opc.Ua.NodeSet2.xml"

work=$(mktemp -d "${TMPDIR:-/tmp}/gopcua-rebuild.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# upstream's directory in the module cache (downloaded when missing); run
# outside this module so that its replace directive plays no part.
src=$(cd "$work" && GOFLAGS=-mod=mod "$go" mod download -json "$UPSTREAM_MODULE@$UPSTREAM_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$src" ] && [ -d "$src" ] || { echo "rebuild.sh: cannot find $UPSTREAM_MODULE@$UPSTREAM_VERSION in the module cache" >&2; exit 1; }

rebuilt=$work/opcua
mkdir -p "$rebuilt"
for pkg in $PACKAGES; do
	mkdir -p "$rebuilt/$pkg"
	for f in "$src/$pkg"/*.go; do
		case $f in *_test.go | */generate.go) continue ;; esac
		cp "$f" "$rebuilt/$pkg/"
	done
done
for f in $EXTRA_FILES; do cp "$src/$f" "$rebuilt/$f"; done
chmod -R u+w "$rebuilt"

# Apply each patch exactly: no fuzz, no reversed patches, no backup files.
shopt -s nullglob
patches=("$here"/patches/*.patch)
for p in "${patches[@]}"; do
	if ! out=$(patch -d "$rebuilt" -p1 -F0 -N -s --no-backup-if-mismatch <"$p" 2>&1); then
		echo "rebuild.sh: $(basename "$p") does not apply to $UPSTREAM_VERSION plus the patches before it:" >&2
		echo "$out" >&2
		exit 1
	fi
done

case ${1:-check} in
check)
	if ! d=$(cd "$work" && cp -r "$here/opcua" committed && git diff --no-index --no-prefix --stat opcua committed); then
		echo "rebuild.sh: third_party/gopcua/opcua differs from $UPSTREAM_MODULE@$UPSTREAM_VERSION + patches/:" >&2
		echo "$d" >&2
		echo "(edit the copy only through a patch: rebuild.sh new NAME writes the difference as one)" >&2
		exit 1
	fi
	echo "third_party/gopcua/opcua = $UPSTREAM_MODULE@$UPSTREAM_VERSION + ${#patches[@]} patches"
	;;
write)
	rm -rf "$here/opcua"
	cp -r "$rebuilt" "$here/opcua"
	echo "third_party/gopcua/opcua rebuilt: $UPSTREAM_MODULE@$UPSTREAM_VERSION + ${#patches[@]} patches"
	;;
new)
	name=${2:?usage: rebuild.sh new NAME}
	n=$(printf '%04d' $((${#patches[@]} + 1)))
	out=$here/patches/$n-$name.patch
	cp -r "$here/opcua" "$work/b"
	mv "$rebuilt" "$work/a"
	if (cd "$work" && git diff --no-index --quiet a b); then
		echo "rebuild.sh: opcua/ has nothing beyond the patches" >&2
		exit 1
	fi
	{
		echo "$name: (say what this patch changes and why; patch(1) skips this text)"
		echo
		(cd "$work" && git diff --no-index --no-prefix a b || true)
	} >"$out"
	echo "wrote $out"
	;;
*)
	echo "usage: rebuild.sh [check|write|new NAME]" >&2
	exit 2
	;;
esac
