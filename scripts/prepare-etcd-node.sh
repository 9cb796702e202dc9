#!/usr/bin/env bash
# External etcd member preparation, run once by cloud-init as EC2 user data: installs the pinned etcd
# release for this machine's architecture after checking its SHA-256, and an etcd system user. No
# secrets: certificates and the member's configuration arrive later over SSH.
# Parameters (set above this line by the renderer): ETCD_VERSION, ETCD_SHA256_AMD64, ETCD_SHA256_ARM64,
# and node-functions.sh's functions.
set -euo pipefail

: "${ETCD_VERSION:?}" "${ETCD_SHA256_AMD64:?}" "${ETCD_SHA256_ARM64:?}"
MARKER=/var/lib/kubeadm-ha/prepared

log() { printf '[kubeadm-ha prepare] %s\n' "$*"; }
# To stderr: fetch_etcd_release runs in a command substitution, which would keep its stdout.
fail() {
  log "$*" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "downloading etcd v${ETCD_VERSION} for $(dpkg --print-architecture)"
release=$(fetch_etcd_release "$ETCD_VERSION" "$ETCD_SHA256_AMD64" "$ETCD_SHA256_ARM64" "$work" etcd etcdctl etcdutl)
install -m 0755 "$release/etcd" "$release/etcdctl" "$release/etcdutl" /usr/local/bin/

log "creating the etcd user and its data directory"
id etcd >/dev/null 2>&1 || useradd --system --home-dir /var/lib/etcd --shell /usr/sbin/nologin etcd
install -d -m 0700 -o etcd -g etcd /var/lib/etcd
install -d -m 0755 /etc/etcd

install -d -m 0755 "$(dirname "$MARKER")"
echo "etcd $(/usr/local/bin/etcd --version | head -n 1)" > "$MARKER"
log "node prepared: $(cat "$MARKER")"
