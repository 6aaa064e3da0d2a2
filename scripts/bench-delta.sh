#!/usr/bin/env bash
# Consecutive node-OS releases share what did not change (issue 14): builds
# two releases with `image-tools os build` that differ by one Debian package
# (and their version), and prints the fraction of the second image a node
# running the first downloads: the bytes of the chunks whose hash is not
# among the first image's chunks (the agent copies those from its booted
# slot), over the image's length. Figures go to docs/benchmarks.md.
# 1.0.1 is built on 1.0.0's image (`os build --previous`, as a release
# pipeline should); `--fresh` builds it from scratch instead (the old layout).
#
#   scripts/bench-delta.sh [--package NAME] [--chunk-size SIZE] [--fresh] [--keep DIR]
# Needs root, debootstrap and the Debian mirror (the packages are cached in
# $MOHO_OS_CACHE, default /var/cache/moho-os, so a second run is quick).
set -euo pipefail
cd "$(dirname "$0")/.."
package=jq
chunk=4MiB
keep=
fresh=
while [ $# -gt 0 ]; do
  case "$1" in
    --package) package=$2; shift 2 ;;
    --chunk-size) chunk=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    *) echo "usage: $0 [--package NAME] [--chunk-size SIZE] [--fresh] [--keep DIR]" >&2; exit 2 ;;
  esac
done
cargo build --quiet -p image-tools -p update-agent --bin image-tools --bin update-agent
boot_select=$(cargo rustc --quiet -p update-agent --bin boot-select --message-format=json \
  -- -C target-feature=+crt-static -C strip=debuginfo \
  | jq -r 'select(.target.name == "boot-select") | .executable // empty' | tail -n1)
work=${keep:-$(mktemp -d /tmp/moho-bench-delta.XXXXXX)}
mkdir -p "$work"
[ -n "$keep" ] || trap 'rm -rf "$work"' EXIT
cp "$boot_select" "$work/boot-select"
it=target/debug/image-tools
[ -d "$work/keys" ] || "$it" keygen --out "$work/keys" >/dev/null
[ -d "$work/repo" ] || "$it" repo init --repo "$work/repo" --keys "$work/keys" >/dev/null
config() { # $1: extra package or nothing
  sed -e 's|^trusted_root = .*|trusted_root = "repo/metadata/1.root.json"|' \
      -e "s|^packages = \[\(.*\)\]|packages = [\1${1:+, \"$1\"}]|" \
      -e "s|^chunk_size = .*|chunk_size = \"$chunk\"|" image-tools/node-os/node-os.toml
}
config "" >"$work/a.toml"
config "$package" >"$work/b.toml"
for r in a b; do
  v=1.0.0; previous=()
  if [ "$r" = b ]; then
    v=1.0.1
    [ -n "$fresh" ] || previous=(--previous "$work/a/root.img")
  fi
  start=$(date +%s)
  "$it" os build --config "$work/$r.toml" --out "$work/$r" --version "$v" --force \
    --agent target/debug/update-agent --boot-select "$work/boot-select" "${previous[@]}" >"$work/$r.log"
  echo "release $v ($r.toml${previous[*]:+, built on the 1.0.0 image}): built in $(( $(date +%s) - start )) s"
  grep -h "paths kept" "$work/$r.log" || true
done
diff <(cut -d' ' -f1 "$work/a/packages.txt") <(cut -d' ' -f1 "$work/b/packages.txt") \
  | sed -n 's/^> /packages only in 1.0.1: /p' || true
jq -rn --slurpfile a "$work/a/root.img.chunks" --slurpfile b "$work/b/root.img.chunks" '
  ($a[0].chunks | map({(.): true}) | add) as $have
  | $b[0] as $n
  | ($n.chunks | length) as $count
  | ([range(0; $count) | select($have[$n.chunks[.]] | not)]) as $new
  | ($new | map(if . == $count - 1 then $n.image_length - . * $n.chunk_size else $n.chunk_size end) | add // 0) as $bytes
  | "image 1.0.1: \($n.image_length) bytes, \($count) chunks of \($n.chunk_size) bytes\n"
    + "a node on 1.0.0 downloads \($new | length) chunks, \($bytes) bytes: \($bytes * 10000 / $n.image_length | floor / 100) % of the image"'
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; commit $(git rev-parse --short HEAD)"
