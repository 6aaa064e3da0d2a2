#!/usr/bin/env bash
# The main job: the whole story on a real (emulated) machine.
#   1. build the tools, a static boot-select, the boot initramfs from Debian's cloud kernel;
#   2. build three releases of a small busybox OS (3.0.0's init dies: a kernel panic),
#      sign them into a TUF repository, serve it with update-server over HTTPS;
#   3. make a UEFI disk image (systemd-boot -> boot selector) holding 1.0.0 in slot A;
#   4. boot it in qemu (OVMF, -accel tcg): it updates to 2.0.0 from the server over the VM
#      network, reboots into slot B for a trial boot and marks it good;
#   5. publish the broken 3.0.0: the VM installs it, its trial boot panics, and the boot
#      selector falls back to 2.0.0 by itself.
# The slot table (as update-agent and cgpt read it) and the server's view are printed along
# the way; console logs are kept in $OUT. Takes about five minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_cargo
install_packages scripts/packages/base.txt scripts/packages/vm.txt

OUT=${MOHO_DEMO_DIR:-out/demo}
CACHE=${MOHO_VM_CACHE:-/var/cache/moho-e2e}
rm -rf "$OUT" && mkdir -p "$OUT" "$CACHE"
OUT=$(cd "$OUT" && pwd)
step() { printf '\n== %s\n' "$*"; }

step "building update-agent, image-tools, update-server (release) and a static boot-select"
cargo build --release --locked --quiet -p update-agent -p image-tools -p update-server \
    || die "cargo build failed"
cargo rustc --release --locked --quiet -p update-agent --bin boot-select -- \
    -C target-feature=+crt-static -C strip=debuginfo || die "building boot-select failed"
BIN=$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)
cp "$BIN/boot-select" "$OUT/boot-select"
AGENT=$BIN/update-agent
TOOLS=$BIN/image-tools
SERVER=$BIN/update-server

step "Debian's cloud kernel (apt-get download, cached in $CACHE)"
KDIR=$CACHE/debian-cloud-kernel
if [ ! -e "$CACHE/debian-cloud-kernel.done" ]; then
    rm -rf "$KDIR" && mkdir -p "$KDIR"
    pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    (cd "$KDIR" && apt-get download -qq "$pkg") || die "apt-get download $pkg failed"
    dpkg-deb -x "$KDIR"/*.deb "$KDIR/root" && rm "$KDIR"/*.deb
    depmod -b "$KDIR/root" "$(ls "$KDIR/root/lib/modules")"
    touch "$CACHE/debian-cloud-kernel.done"
fi
KVER=$(ls "$KDIR/root/lib/modules")
VMLINUZ=$KDIR/root/boot/vmlinuz-$KVER
echo "kernel $KVER"

step "image-tools initramfs: boot-select as /init, virtio disk, network, entropy, fw_cfg"
"$TOOLS" initramfs --kernel-modules "$KDIR/root/lib/modules/$KVER" \
    --modules virtio_blk,virtio_pci,virtio_net,virtio_rng,qemu_fw_cfg \
    --init "$OUT/boot-select" --out "$OUT/initrd.img"

step "signing keys and an empty TUF repository"
"$TOOLS" keygen --out "$OUT/keys" >/dev/null
"$TOOLS" repo init --repo "$OUT/repo" --keys "$OUT/keys"

step "a throwaway CA and a server certificate for the address the VM uses (10.0.2.100)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=moho-demo-ca \
    -keyout "$OUT/ca.key" -out "$OUT/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=moho-demo-server \
    -keyout "$OUT/server.key" -out "$OUT/server.csr" 2>/dev/null
printf 'subjectAltName=IP:10.0.2.100,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$OUT/server.ext"
openssl x509 -req -in "$OUT/server.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" -CAcreateserial \
    -days 2 -extfile "$OUT/server.ext" -out "$OUT/server.pem" 2>/dev/null

# The demo OS: busybox, the real update-agent, the kernel and initramfs in /boot, and a plain
# init that marks a trial boot good and, once per VM run (the run number comes in through
# qemu's fw_cfg), installs the newest release and reboots into it. Until the agent daemon
# (issue 6) exists, that "once per run" stands in for its deny list of failed releases.
make_tree() { # VERSION good|panic
    local v=$1 kind=$2 t=$OUT/tree-$1 applet
    rm -rf "$t"
    mkdir -p "$t"/{bin,sbin,usr/bin,usr/sbin,usr/lib/moho,etc/moho/agent.d,etc/ssl/certs,boot,proc,sys,dev,run,tmp,var,root}
    cp /bin/busybox "$t/bin/busybox"
    for applet in $(/bin/busybox --list-full); do
        case $applet in bin/busybox|sbin/init|linuxrc) continue ;; esac
        [ -e "$t/$applet" ] || ln -s /bin/busybox "$t/$applet"
    done
    objcopy --strip-debug "$AGENT" "$t/usr/bin/update-agent"
    for lib in $(ldd "$AGENT" | grep -o '/[^ ]*'); do
        mkdir -p "$t$(dirname "$lib")" && cp -L "$lib" "$t$lib"
    done
    cp "$VMLINUZ" "$t/boot/vmlinuz"
    cp "$OUT/initrd.img" "$t/boot/initrd.img"
    echo "console=ttyS0 quiet panic=5 moho.retry=5" >"$t/boot/cmdline"
    printf 'NAME="Moho demo OS"\nID=moho-demo\nVERSION_ID=%s\n' "$v" >"$t/usr/lib/os-release"
    ln -s ../usr/lib/os-release "$t/etc/os-release"
    cp "$OUT/repo/metadata/1.root.json" "$t/usr/lib/moho/root.json"
    cp "$OUT/ca.pem" "$t/usr/lib/moho/server-ca.pem"
    cp /etc/ssl/certs/ca-certificates.crt "$t/etc/ssl/certs/"
    cat >"$t/etc/moho/agent.d/10-demo.toml" <<'TOML'
[repository]
url = "https://10.0.2.100/repo/"
root = "/usr/lib/moho/root.json"
ca_cert = "/usr/lib/moho/server-ca.pem"
[node]
board = "amd64-demo"
channel = "stable"
TOML
    if [ "$kind" = panic ]; then
        printf '#!/bin/sh\necho "demo: release %s: init exits at once (the kernel will panic)"\nexit 1\n' "$v" >"$t/sbin/init"
    else
        cat >"$t/sbin/init" <<'INIT'
#!/bin/sh
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
mount -t ext4 "$(findfs LABEL=STATE)" /var && mkdir -p /var/lib/moho /var/lib/moho-demo
ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2
. /usr/lib/os-release
echo "demo: up: release $VERSION_ID from slot $(sed -n 's/.*moho\.slot=\([AB]\).*/\1/p' /proc/cmdline)"
update-agent slots mark-good 2>/dev/null | head -1
update-agent slots
run=$(cat /sys/firmware/qemu_fw_cfg/by_name/opt/moho/run/raw 2>/dev/null)
if [ ! -e "/var/lib/moho-demo/run-$run" ]; then
    touch "/var/lib/moho-demo/run-$run"; sync
    out=$(update-agent install 2>&1); echo "$out" | sed 's/^/demo: agent: /'
    case "$out" in *"into slot"*"armed"*) echo "demo: rebooting into the new slot"; sync; reboot -f ;; esac
fi
echo "demo: nothing more to do in this run; powering off"
sync; poweroff -f
INIT
    fi
    chmod 755 "$t/sbin/init"
}

release() { # VERSION good|panic
    make_tree "$1" "$2"
    "$TOOLS" build --rootfs "$OUT/tree-$1" --version "$1" --board amd64-demo \
        --out "$OUT/release-$1.img" --chunk-size 1MiB --source-date-epoch 1700000000 >/dev/null
    rm -rf "$OUT/tree-$1"
    echo "built release $1 ($2): $(stat -c %s "$OUT/release-$1.img") bytes"
}

step "three releases: 1.0.0 and 2.0.0 work, 3.0.0's init dies"
release 1.0.0 good
release 2.0.0 good
release 3.0.0 panic
"$TOOLS" repo add --repo "$OUT/repo" --keys "$OUT/keys" --image "$OUT/release-1.0.0.img" --channel stable

step "update-server: serving the signed repository over HTTPS"
PORT=$((20000 + RANDOM % 20000))
"$SERVER" serve --data-dir "$OUT/server" --repo "$OUT/repo" \
    --trusted-root "$OUT/repo/metadata/1.root.json" --listen "127.0.0.1:$PORT" \
    --tls-cert "$OUT/server.pem" --tls-key "$OUT/server.key" 2>"$OUT/server.log" &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
kill -0 $SERVER_PID 2>/dev/null || die "update-server did not start; see $OUT/server.log"
ADMIN=$("$SERVER" token create --data-dir "$OUT/server" --role admin --name demo)
api() { curl -fsS --cacert "$OUT/ca.pem" -H "Authorization: Bearer $ADMIN" "$@"; }
publish() { # VERSION
    "$TOOLS" repo add --repo "$OUT/repo" --keys "$OUT/keys" --image "$OUT/release-$1.img" --channel stable
    api -X POST "https://127.0.0.1:$PORT/api/v1/releases/sync" >/dev/null
}
server_view() {
    echo "server: releases $(api "https://127.0.0.1:$PORT/api/v1/releases" | tr -d '\n' | head -c 400)"
}
server_view

step "image-tools disk create: ESP with systemd-boot and the boot selector, 1.0.0 in slot A"
DISK=$OUT/disk.img
"$TOOLS" disk create --out "$DISK" --size 400M --slot-size 144M --esp-size 40M \
    --slot-a "$OUT/release-1.0.0.img" --boot-kernel "$VMLINUZ" --boot-initramfs "$OUT/initrd.img" \
    --boot-cmdline "console=ttyS0 moho.retry=5"
table() { "$AGENT" slots --disk "$DISK"; echo "cgpt: A priority $(cgpt show -i 2 -P "$DISK") tries $(cgpt show -i 2 -T "$DISK") successful $(cgpt show -i 2 -S "$DISK"); B priority $(cgpt show -i 3 -P "$DISK") tries $(cgpt show -i 3 -T "$DISK") successful $(cgpt show -i 3 -S "$DISK")"; }
table

cp /usr/share/OVMF/OVMF_VARS_4M.fd "$OUT/OVMF_VARS.fd"
vm() { # RUN LOG: boot until the guest powers off
    echo "(qemu -accel tcg, OVMF; console in $2; lines from the boot selector and the OS:)"
    timeout 900 qemu-system-x86_64 -accel tcg -m 512 -nodefaults -no-user-config -display none \
        -serial stdio -device virtio-rng-pci -fw_cfg "name=opt/moho/run,string=$1" \
        -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
        -drive "if=pflash,format=raw,unit=1,file=$OUT/OVMF_VARS.fd" \
        -drive "file=$DISK,format=raw,if=virtio" \
        -netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:443-cmd:socat - TCP:127.0.0.1:$PORT" \
        -device virtio-net-pci,netdev=n0 </dev/null | tr -d '\r' | tee "$2" \
        | grep --line-buffered -E '^moho-boot: (slot .*: (trial|booting)|WARNING|ERROR)|^demo:|^(SLOT|A  |B  |next)|Kernel panic -' \
        || die "the VM did not finish; see $2"
}

step "publish 2.0.0; boot the VM: 1.0.0 installs it from the server, reboots, B's trial boot marks it good"
publish 2.0.0
server_view
vm 1 "$OUT/console-1.log"
table

step "boot 2: publish the broken 3.0.0; the VM installs it, its trial boot panics, and the selector falls back"
publish 3.0.0
server_view
vm 2 "$OUT/console-2.log"
table

printf '\ndemo finished: the disk is %s, console logs in %s\n' "$DISK" "$OUT"
