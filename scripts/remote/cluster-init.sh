# Once in the cluster's life, on the first control-plane node: kubeadm init. The command that runs
# this ignores every later change of its inputs, so no `pulumi up` runs it again; and even when it
# does run, it refuses to create a second cluster:
# - this node is already a member: nothing to do;
# - kubeadm init was interrupted here (the in-progress marker): reset and init again;
# - kubeadm left state here without the marker: refuse (it is, or was, a member);
# - any other planned node answers on 6443, or cannot be told not to (a timeout is not "no"): refuse.
# With etcd restored from a snapshot just before (the etcd-restore step), init runs against that data:
# the documents then let kubeadm's preflight accept the non-empty /var/lib/etcd.
# While kubeadm runs, the endpoint's name resolves to this node through /etc/hosts, so nothing waits
# for the load balancer to mark its first target healthy. Afterwards the pin is removed and the
# kube-proxy pod that may have started under it (the kubelet copies the node's /etc/hosts into
# host-network pods when they start) is restarted, so no pod keeps the pinned address.
# Parameters: NODE_NAME, NODE_IP, ENDPOINT_HOST, API_SERVERS (the other planned control-plane
# nodes' addresses), RESTORE_FROM (the snapshot restored before, or empty). Stdin: the kubeadm init documents (they hold the bootstrap token).
: "${NODE_NAME:?}" "${NODE_IP:?}" "${ENDPOINT_HOST:?}"
API_SERVERS=${API_SERVERS:-}
RESTORE_FROM=${RESTORE_FROM:-}
init_config=$(stdin_to_private_file)
trap 'rm -f "$init_config"; unpin_endpoint' EXIT

if is_member; then
  log "$NODE_NAME already runs the control plane; kubeadm init is not run again"
  wait_for_local_api 600
  exit 0
fi
reset_unfinished_node "$NODE_NAME"
restore_pki

cluster_exists "$API_SERVERS" 6443
if [ "$CLUSTER_EXISTS" = yes ]; then
  fail "a server answers on $CLUSTER_AT:6443 (another control-plane node): a cluster may already exist, so kubeadm init is refused. Bring that node back, or rebuild the stack from a backup"
fi
if [ -n "$RESTORE_FROM" ]; then
  [ -e "$ETCD_RESTORED_MARKER" ] ||
    fail "etcd was to be restored from $RESTORE_FROM, but this node holds no restored data (an interrupted init resets it); kubeadm init would start an empty cluster. Restore again: pulumi up --replace the etcd-restore step of $NODE_NAME"
  log "etcd data restored from $(cut -d' ' -f1 "$ETCD_RESTORED_MARKER"); kubeadm init runs against it"
fi

pin_endpoint "$ENDPOINT_HOST" "$NODE_IP"
log "no cluster exists: running kubeadm init on $NODE_NAME ($NODE_IP)"
run_kubeadm_marked init kubeadm init --config "$init_config"
wait_for_local_api 300
clear_kubeadm_marker
unpin_endpoint
# Through this node's own API server: the load balancer may not have marked it healthy yet.
kubectl --kubeconfig "$KUBERNETES_DIR/admin.conf" --server "https://127.0.0.1:6443" --request-timeout=60s -n kube-system \
  delete pod -l k8s-app=kube-proxy --field-selector "spec.nodeName=$NODE_NAME" --wait=false >/dev/null ||
  fail "could not restart kube-proxy on $NODE_NAME after removing the bootstrap pin"
log "$NODE_NAME initialised the control plane at $ENDPOINT_HOST:6443"
