#!/usr/bin/env bash
# The instance metadata service for root only, from the first boot on: the first part of every node's
# user data (core/metadata-guard.ts). IMDSv2 with a hop limit of 1 keeps pods on the pod network from
# the instance role (their token response would need a second hop), but not host-network pods: their
# requests leave from the node itself. What needs the role on a node runs as root: cloud-init, the etcd
# snapshot units and the restore (their S3 uploads and download). This rejects 169.254.169.254 for every
# other user: non-root host-network pods (the node exporter runs as nobody), and EC2 Instance Connect's
# key lookup, which kubeadm-ha does not use. Root processes, host-network pods running as root among
# them (CNI agents, kube-proxy), still reach it. A unit reapplies the rules at every boot, before
# containerd and the kubelet start. KUBEADM_HA_ROOT is empty on a node (a test installs under it).
set -euo pipefail
imds_root=${KUBEADM_HA_ROOT:-}
echo "[kubeadm-ha prepare] the instance metadata service for root only (iptables owner match)"
if ! command -v iptables-restore >/dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=5 update
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=5 install -y iptables
fi
install -d -m 0755 "$imds_root/etc/kubeadm-ha" "$imds_root/usr/local/sbin" "$imds_root/etc/systemd/system"
cat >"$imds_root/etc/kubeadm-ha/imds-guard.rules" <<'RULES'
*filter
:KUBEADM-HA-IMDS - [0:0]
-A KUBEADM-HA-IMDS -m owner --uid-owner 0 -m comment --comment "kubeadm-ha: root may reach the instance metadata service" -j RETURN
-A KUBEADM-HA-IMDS -p tcp -m comment --comment "kubeadm-ha: no one else (a reset, so callers fail at once)" -j REJECT --reject-with tcp-reset
-A KUBEADM-HA-IMDS -j DROP
COMMIT
RULES
cat >"$imds_root/usr/local/sbin/kubeadm-ha-imds-guard" <<'APPLY'
#!/bin/sh
# Loads the rules (their chain is flushed and refilled) and jumps to them first in OUTPUT, once.
set -eu
rules=${1:-/etc/kubeadm-ha/imds-guard.rules}
iptables-restore --wait --noflush "$rules"
iptables --wait -C OUTPUT -d 169.254.169.254/32 -j KUBEADM-HA-IMDS 2>/dev/null ||
  iptables --wait -I OUTPUT 1 -d 169.254.169.254/32 -j KUBEADM-HA-IMDS
APPLY
chmod 0755 "$imds_root/usr/local/sbin/kubeadm-ha-imds-guard"
cat >"$imds_root/etc/systemd/system/kubeadm-ha-imds-guard.service" <<'UNIT'
[Unit]
Description=kubeadm-ha: the instance metadata service for root only
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target containerd.service kubelet.service shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/kubeadm-ha-imds-guard

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now kubeadm-ha-imds-guard.service
