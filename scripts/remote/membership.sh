# After every control-plane node has converged: make the cluster's membership equal the plan. Stacked
# etcd members and control-plane Node objects that belong to no planned node (scaled down, replaced,
# or lost) are removed one at a time, each only while the healthy voting members left keep a
# majority; then etcd must hold exactly the planned members, all healthy and voting.
# Parameters: PLANNED_NODES (every planned control-plane node's name), STACKED (true|false).
: "${PLANNED_NODES:?}" "${STACKED:?}"
ADMIN_KUBECONFIG=$(mint_admin_kubeconfig 127.0.0.1)
trap 'rm -f "$ADMIN_KUBECONFIG"' EXIT
ETCDCTL=etcdctl_in_pod
wait_for_local_api 600
if [ "$STACKED" = true ]; then
  find_etcd_pod "$PLANNED_NODES"
  remove_members "$PLANNED_NODES" surplus >/dev/null
  wait_for_etcd_settled 600 "$(wc -w <<<"$PLANNED_NODES")"
fi
remove_stale_control_plane_nodes "$PLANNED_NODES"
log "control-plane membership matches the plan: $PLANNED_NODES"
