# The delete step of a control-plane node's bootstrap: leave the cluster cleanly. `kubeadm reset`
# removes this node's etcd member (stacked etcd), so a replacement can join with quorum intact; then
# the Node object is deleted with a copy of the admin credentials reset would remove.
# Parameters: NODE_NAME.
: "${NODE_NAME:?}"
admin=$(mktemp /run/kubeadm-ha.XXXXXX)
trap 'rm -f "$admin"' EXIT
if [ -f /etc/kubernetes/admin.conf ]; then
  cp /etc/kubernetes/admin.conf "$admin"
fi
run_logged reset kubeadm reset -f
if [ -s "$admin" ]; then
  kubectl --kubeconfig "$admin" delete node "$NODE_NAME" --ignore-not-found --timeout=60s >/dev/null 2>&1 ||
    log "could not delete Node $NODE_NAME; remove it with kubectl if it lingers"
fi
unpin_endpoint
log "$NODE_NAME left the cluster"
