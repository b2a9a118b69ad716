#!/bin/busybox sh
# /init of the emulated cluster's initramfs (built by qemu-rdma.sh).
#
# Loads the modules the image carries, mounts the host's root file system
# read-only over virtio-9p, brings up the guest's network and a soft-RoCE
# device on it, and runs tests/cluster/guest-tests.sh inside a chroot into
# the host root, so the guest runs the very binaries and libraries the host
# built. Parameters come from the kernel command line (remora.*=): init's
# environment does not reliably carry them.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

arg() { sed -n "s/.*remora\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
ROLE=$(arg role)
SRC=$(arg src)
BUILD=$(arg build)
IP=$(arg ip)
PEER=$(arg peer)
NODE=$(arg node)

finish() {
  echo "GUEST DONE"
  sync
  poweroff -f
}

for m in $(cat /modules/order); do
  insmod /modules/$m.ko || echo "guest: insmod $m failed"
done

mkdir -p /host
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host; then
  echo "GUEST FAIL mount-host-root"
  finish
fi
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mount -t tmpfs run /host/run
# The source and build trees may live under /tmp (a CI checkout), and the
# guest's /tmp is a fresh tmpfs: reach them through /run before it hides them.
mkdir -p /host/run/remora-src /host/run/remora-build
if ! mount -o bind "/host$SRC" /host/run/remora-src || ! mount -o bind "/host$BUILD" /host/run/remora-build; then
  echo "GUEST FAIL bind-source-and-build: $SRC $BUILD"
  finish
fi
SRC=/run/remora-src
BUILD=/run/remora-build
mount -t tmpfs tmp /host/tmp

ip link set lo up
# One address per link: a memory node has one NIC, the processor of the
# four-guest cluster one per memory node (its MAC's fifth byte is the
# link's number), the single guest none (rxe on a dummy device).
if [ "$ROLE" = single ]; then
  ip link show dummy0 >/dev/null 2>&1 || ip link add dummy0 type dummy
fi
k=0
for addr in $(echo "$IP" | tr ',' ' '); do
  if [ "$ROLE" = single ]; then
    NETDEV=dummy0
  elif [ "$ROLE" = proc ]; then
    NETDEV=$(grep -l "^52:54:00:00:0$((k + 1)):01" /sys/class/net/*/address | cut -d/ -f5)
  else
    NETDEV=eth0
  fi
  if [ -z "$NETDEV" ]; then
    echo "GUEST FAIL network-device: none for link $((k + 1))"
    finish
  fi
  ip addr add "$addr/24" dev $NETDEV
  ip link set $NETDEV up
  # The guests' addresses exist only on their private links (loopback UDP on the host).
  if ! chroot /host /usr/bin/rdma link add rxe$k type rxe netdev $NETDEV; then
    echo "GUEST FAIL soft-roce-device: rxe$k on $NETDEV"
    cat /proc/modules; dmesg | tail -20
    finish
  fi
  k=$((k + 1))
done

chroot /host /bin/bash "$SRC/tests/cluster/guest-tests.sh" "$ROLE" "$BUILD" "$IP" "$PEER" "${NODE:-0}"
finish
