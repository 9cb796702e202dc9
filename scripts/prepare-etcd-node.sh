#!/usr/bin/env bash
# External etcd member preparation, run once by cloud-init as EC2 user data: installs the pinned etcd
# release for this machine's architecture after checking its SHA-256, and an etcd system user. No
# secrets: certificates and the member's configuration arrive later over SSH.
# Parameters (set above this line by the renderer): ETCD_VERSION, ETCD_SHA256_AMD64, ETCD_SHA256_ARM64.
set -euo pipefail

: "${ETCD_VERSION:?}" "${ETCD_SHA256_AMD64:?}" "${ETCD_SHA256_ARM64:?}"
MARKER=/var/lib/kubeadm-ha/prepared

log() { printf '[kubeadm-ha prepare] %s\n' "$*"; }

arch=$(dpkg --print-architecture)
case "$arch" in
  amd64) sha256=$ETCD_SHA256_AMD64 ;;
  arm64) sha256=$ETCD_SHA256_ARM64 ;;
  *) log "unsupported architecture $arch"; exit 1 ;;
esac

name="etcd-v${ETCD_VERSION}-linux-${arch}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "downloading etcd v${ETCD_VERSION} for ${arch}"
curl -fsSL --retry 5 -o "$work/$name.tar.gz" \
  "https://github.com/etcd-io/etcd/releases/download/v${ETCD_VERSION}/${name}.tar.gz"
echo "${sha256}  $work/$name.tar.gz" | sha256sum --check --strict
tar -xzf "$work/$name.tar.gz" -C "$work"
install -m 0755 "$work/$name/etcd" "$work/$name/etcdctl" "$work/$name/etcdutl" /usr/local/bin/

log "creating the etcd user and its data directory"
id etcd >/dev/null 2>&1 || useradd --system --home-dir /var/lib/etcd --shell /usr/sbin/nologin etcd
install -d -m 0700 -o etcd -g etcd /var/lib/etcd
install -d -m 0755 /etc/etcd

install -d -m 0755 "$(dirname "$MARKER")"
echo "etcd $(/usr/local/bin/etcd --version | head -n 1)" > "$MARKER"
log "node prepared: $(cat "$MARKER")"
