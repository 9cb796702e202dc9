# A member converging to the cluster's configuration: the Kubernetes release (kubeadm's upgrade
# procedure, https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/) and the
# ClusterConfiguration (kubeadm's "Reconfiguring a kubeadm cluster"), on this node only; the member
# steps run one node at a time, each gated before and after. Needs ADMIN_KUBECONFIG, NODE_NAME,
# STACKED, and the rules of members.sh and certificates.sh, and containerd-pause.sh.

# Held packages are changed deliberately (unhold, install, hold); a changed configuration file of a
# package keeps the node's copy instead of asking a terminal the step does not have.
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=5 -o Dpkg::Options::=--force-confold)
KUBERNETES_APT_LIST=$ROOT/etc/apt/sources.list.d/kubernetes.list
# Records the configuration this node's static pods were last rendered from: the SHA-256 of its
# documents without the release, which upgrades move (and re-render for) on their own.
APPLIED_CONFIG=$STATE_DIR/cluster-configuration.sha256

# "1.34.2" from "v1.34.2", "Kubernetes v1.34.2" or "1.34.2-1.1".
plain_version() {
  sed -E 's/^[^0-9]*//; s/-.*$//' <<<"$1"
}

minor_of() {
  cut -d. -f1-2 <<<"$1"
}

# True when version $1 is older than $2 (both x.y.z).
older_than() {
  [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]
}

# The release the cluster runs: the kubernetesVersion kubeadm keeps in its kubeadm-config ConfigMap
# (init and each `upgrade apply` write it, resolved to an exact release).
cluster_version() {
  local v
  v=$(kubectl --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=30s -n kube-system get configmap kubeadm-config \
    -o jsonpath='{.data.ClusterConfiguration}' | awk '$1 == "kubernetesVersion:" { print $2; exit }') ||
    fail "could not read the cluster's version from the kubeadm-config ConfigMap"
  [ -n "$v" ] || fail "the kubeadm-config ConfigMap names no kubernetesVersion"
  plain_version "$v"
}

# The kubelet this node runs.
node_version() {
  plain_version "$(kubelet --version)"
}

# Points apt at the pkgs.k8s.io repository of minor $1 (one repository per minor; the signing key
# is the same), as kubeadm's upgrade guide does.
use_kubernetes_repository() {
  local line="deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v$1/deb/ /"
  if [ "$(cat "$KUBERNETES_APT_LIST" 2>/dev/null)" != "$line" ]; then
    make_dir 0755 "$(dirname "$KUBERNETES_APT_LIST")"
    printf '%s\n' "$line" >"$KUBERNETES_APT_LIST"
  fi
  run_logged apt-update "${APT[@]}" update
}

# The newest release of minor $1 in its repository.
newest_release() {
  apt-cache madison kubeadm | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | sed 's/-.*//' |
    grep -E "^${1//./\\.}\.[0-9]+$" | sort -V | tail -n1
}

# Installs packages ($2...) at release $1 from the repository apt points at, held where they are.
install_release() {
  local version=$1 pkg
  shift
  local pinned=()
  for pkg in "$@"; do pinned+=("$pkg=$version-*"); done
  run_logged apt-mark apt-mark unhold "$@"
  run_logged apt-install env DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y "${pinned[@]}"
  run_logged apt-mark apt-mark hold "$@"
}

# The kubelet's half of an upgrade to $1: drain, new kubelet and kubectl, restart, uncordon.
upgrade_kubelet() {
  log "draining $NODE_NAME"
  # kubectl drain cordons first: a drain that fails (a PodDisruptionBudget, a timeout) must not leave
  # the node cordoned with nothing to uncordon it.
  if ! kubectl --kubeconfig "$ADMIN_KUBECONFIG" drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout=600s >>"$LOG_DIR/drain.log" 2>&1; then
    kubectl --kubeconfig "$ADMIN_KUBECONFIG" uncordon "$NODE_NAME" >>"$LOG_DIR/drain.log" 2>&1 || true
    printf '[kubeadm-ha] ERROR: draining %s failed; it is uncordoned and not upgraded. Last lines of %s:\n' "$NODE_NAME" "$LOG_DIR/drain.log" >&2
    redacted_tail "$LOG_DIR/drain.log"
    exit 1
  fi
  install_release "$1" kubelet kubectl
  # A minor can move kubeadm's pause image; the node is drained, and containerd's restart leaves the
  # running containers (static pods included) to their shims.
  local pause
  pause=$(containerd_pause_image "$ROOT/etc/containerd/config.toml")
  if [ "$pause" = changed ]; then run_logged containerd-restart systemctl restart containerd; fi
  run_logged daemon-reload systemctl daemon-reload
  run_logged kubelet-restart systemctl restart kubelet
  wait_for_local_api 600
  run_logged uncordon kubectl --kubeconfig "$ADMIN_KUBECONFIG" uncordon "$NODE_NAME"
}

# kubeadm upgrades one minor at a time and never down (the program refuses both from its own record
# before any resource; this is the node's own check, against the release the cluster really runs,
# before apt is touched).
refuse_unsupported_upgrade() {
  local running_minor wanted_minor
  running_minor=$(minor_of "$1" | cut -d. -f2)
  wanted_minor=$(minor_of "$2" | cut -d. -f2)
  [ "$wanted_minor" -le $((running_minor + 1)) ] ||
    fail "the cluster runs $1 and $2 was asked for: kubeadm upgrades one minor at a time; upgrade to $(minor_of "$1" | cut -d. -f1).$((running_minor + 1)) first"
}

# What this node needs to reach release $1 ("1.34": the newest patch of that minor, unless the cluster
# runs the minor already; "1.34.2": that release). Sets UPGRADE to "apply" (the cluster is older: this
# node, the first to find it so, runs `kubeadm upgrade apply`), "node" (the cluster was upgraded, this
# node not yet) or "", and UPGRADE_TO to the release.
plan_release() {
  local wanted=$1 running node target
  running=$(cluster_version)
  node=$(node_version)
  UPGRADE=""
  UPGRADE_TO=""
  if [[ "$wanted" =~ ^[0-9]+\.[0-9]+$ ]]; then
    # A minor: any patch of it will do; only an older minor moves.
    if [ "$(minor_of "$running")" = "$wanted" ]; then
      target=""
    elif older_than "$running" "$wanted.0"; then
      refuse_unsupported_upgrade "$running" "$wanted.0"
      use_kubernetes_repository "$wanted"
      target=$(newest_release "$wanted") || fail "the pkgs.k8s.io repository of $wanted lists no kubeadm release"
    else
      fail "the cluster runs $running and $wanted was asked for: kubeadm has no downgrade; set kubernetesVersion to $(minor_of "$running") or later (to go back, restore a snapshot taken before the upgrade)"
    fi
  elif older_than "$running" "$wanted"; then
    refuse_unsupported_upgrade "$running" "$wanted"
    target=$wanted
  elif older_than "$wanted" "$running"; then
    fail "the cluster runs $running and $wanted was asked for: kubeadm has no downgrade; set kubernetesVersion to $running or later (to go back, restore a snapshot taken before the upgrade)"
  else
    target=""
  fi

  if [ -n "$target" ]; then
    UPGRADE=apply
    UPGRADE_TO=$target
    UPGRADE_FROM=$running
  elif older_than "$node" "$running"; then
    UPGRADE=node
    UPGRADE_TO=$running
    UPGRADE_FROM=$node
  fi
}

# Carries out plan_release's UPGRADE on this node; `kubeadm upgrade` renews the node's certificates too.
upgrade_release() {
  use_kubernetes_repository "$(minor_of "$UPGRADE_TO")"
  if [ "$UPGRADE" = apply ]; then
    snapshot_before "the upgrade of the cluster from $UPGRADE_FROM to $UPGRADE_TO"
    install_release "$UPGRADE_TO" kubeadm
    log "kubeadm upgrade apply v$UPGRADE_TO on $NODE_NAME (the cluster runs $UPGRADE_FROM)"
    run_logged upgrade-apply kubeadm upgrade apply "v$UPGRADE_TO" --yes
  else
    install_release "$UPGRADE_TO" kubeadm
    log "kubeadm upgrade node on $NODE_NAME ($UPGRADE_FROM to $UPGRADE_TO)"
    run_logged upgrade-node kubeadm upgrade node
  fi
  upgrade_kubelet "$UPGRADE_TO"
}

# Pins the configuration in $1 to the release $2 the cluster runs: a "stable-1.34" label would move
# the control plane to whatever patch is newest, outside the upgrade procedure.
pin_configuration() {
  sed -i -E "s/^kubernetesVersion: .*/kubernetesVersion: v$2/" "$1"
}

configuration_digest() {
  grep -v '^kubernetesVersion:' "$1" | sha256sum | cut -d' ' -f1
}

# Whether the configuration $1 differs from the one this node's static pods were last rendered from.
configuration_changed() {
  [ "$(cat "$APPLIED_CONFIG" 2>/dev/null)" != "$(configuration_digest "$1")" ]
}

# Notes that this node's static pods now follow the configuration in $1.
record_configuration() {
  install -d -m 0700 "$STATE_DIR"
  configuration_digest "$1" >"$APPLIED_CONFIG"
}

# Updates the cluster's copy of the configuration (kubeadm-config), which joins and `kubeadm
# upgrade` render from: the first node whose configuration changed changes it, the others write the
# same document again. Pinned to the release the cluster runs, which `kubeadm upgrade apply` moves.
upload_configuration() {
  run_logged upload-config kubeadm init phase upload-config kubeadm --config "$1"
}

# Re-renders this node's static pods from the configuration in $1 (InitConfiguration and
# ClusterConfiguration), as kubeadm's reconfiguration guide does; the kubelet restarts the pods whose
# manifest changed.
apply_configuration() {
  log "applying the cluster configuration to $NODE_NAME"
  run_logged control-plane kubeadm init phase control-plane all --config "$1"
  if [ "$STACKED" = true ]; then
    # A member with data ignores the bootstrap flags this renders; its other flags (metrics) apply.
    run_logged etcd-manifest kubeadm init phase etcd local --config "$1"
  fi
  wait_for_local_api 600
}
