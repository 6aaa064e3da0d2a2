# Shared helpers for the top-level scripts (sourced, not run).
# shellcheck shell=bash

die() {
    echo "error: $*" >&2
    exit 1
}

# install_packages LIST_FILE...: apt-get install every package named in the
# files (one per line, '#' comments), skipping the ones already installed.
install_packages() {
    local wanted=() missing=() pkg
    for list in "$@"; do
        [ -r "$list" ] || die "package list $list is missing"
        while read -r pkg _; do
            case "$pkg" in ''|'#'*) continue ;; esac
            wanted+=("$pkg")
        done <"$list"
    done
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "apt-get not found: this needs Debian (missing packages: ${missing[*]})"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "not root and no sudo: cannot install ${missing[*]}"
        sudo=(sudo)
    fi
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq || die "apt-get update failed (is a Debian mirror reachable?)"
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install failed for: ${missing[*]}"
    # A package from another suite that the machine came with (qemu-utils from
    # backports, say) may have been removed to make room: put Debian's back.
    local removed=()
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || removed+=("$pkg")
    done
    [ ${#removed[@]} -eq 0 ] && return 0
    echo "reinstalling Debian packages removed by the install above: ${removed[*]}"
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${removed[@]}" >/dev/null \
        || die "apt-get install failed for: ${removed[*]}"
}

require_cargo() {
    command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (rustup) first"
}
