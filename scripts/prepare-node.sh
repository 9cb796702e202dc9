#!/usr/bin/env bash
# Node preparation, run once by cloud-init as EC2 user data. It installs and configures what kubeadm
# needs and nothing secret: certificates, tokens and kubeadm configuration arrive later over SSH.
# Parameters (set above this line by the renderer): KUBERNETES_MINOR (1.37), KUBERNETES_PATCH (1.37.2 or empty),
# and containerd-pause.sh's function.
set -euo pipefail

: "${KUBERNETES_MINOR:?}"
KUBERNETES_PATCH="${KUBERNETES_PATCH:-}"
MARKER=/var/lib/kubeadm-ha/prepared
export DEBIAN_FRONTEND=noninteractive
# A fresh Ubuntu image runs unattended-upgrades at boot; wait for its dpkg lock instead of failing.
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=5)

log() { printf '[kubeadm-ha prepare] %s\n' "$*"; }

log "disabling swap (the kubelet refuses to run with it)"
swapoff -a
sed -i -E '/^[^#].*[[:space:]]swap[[:space:]]/s/^/#/' /etc/fstab

log "loading kernel modules for container networking"
cat > /etc/modules-load.d/kubernetes.conf <<'CONF'
overlay
br_netfilter
CONF
modprobe overlay
modprobe br_netfilter

log "setting sysctls for bridged traffic and forwarding"
cat > /etc/sysctl.d/99-kubernetes.conf <<'CONF'
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward = 1
CONF
sysctl --system >/dev/null

log "installing containerd with the systemd cgroup driver"
"${APT[@]}" update
"${APT[@]}" install -y containerd apt-transport-https ca-certificates curl gpg
# Made only when missing: a directory a package installed keeps the mode and owner it was given.
make_dir 0755 /etc/containerd
containerd config default > /etc/containerd/config.toml
# Both containerd 1.7 and 2.x default configs carry this key; kubeadm configures the kubelet for systemd.
sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml
grep -q 'SystemdCgroup = true' /etc/containerd/config.toml
systemctl restart containerd
systemctl enable containerd

log "installing kubelet, kubeadm and kubectl ${KUBERNETES_PATCH:-$KUBERNETES_MINOR} from pkgs.k8s.io"
make_dir 0755 /etc/apt/keyrings
curl -fsSL --retry 5 "https://pkgs.k8s.io/core:/stable:/v${KUBERNETES_MINOR}/deb/Release.key" \
  | gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v${KUBERNETES_MINOR}/deb/ /" \
  > /etc/apt/sources.list.d/kubernetes.list
"${APT[@]}" update
if [ -n "$KUBERNETES_PATCH" ]; then
  "${APT[@]}" install -y "kubelet=${KUBERNETES_PATCH}-*" "kubeadm=${KUBERNETES_PATCH}-*" "kubectl=${KUBERNETES_PATCH}-*"
else
  "${APT[@]}" install -y kubelet kubeadm kubectl
fi
apt-mark hold kubelet kubeadm kubectl
systemctl enable kubelet

log "pointing containerd's sandbox image at the pause image of kubeadm $(kubeadm version -o short)"
pause=$(containerd_pause_image /etc/containerd/config.toml)
if [ "$pause" = changed ]; then systemctl restart containerd; fi

install -d -m 0755 "$(dirname "$MARKER")"
echo "kubeadm $(kubeadm version -o short)" > "$MARKER"
log "node prepared: $(cat "$MARKER")"
