# On every control-plane node, one node at a time: make it a working member of the cluster that
# cluster-init created, and converge when run again (create and update run this same script).
# - A member (kubeadm finished here): wait for its API server, which may be restarting, for minutes;
#   never reset it.
# - kubeadm was interrupted here (the in-progress marker): reset, then join again.
# - Anything else kubeadm left, with no marker: refuse, and say how to replace the node.
# - A new node: join through a live API server. Stacked etcd: first remove the etcd members that are
#   down and belong to no planned node (kubeadm refuses to join while a listed member is down), then
#   join, then remove surplus unplanned members while the rest keep a majority. kubeadm init never
#   runs here: only cluster-init does, once in the cluster's life.
# Ends gated: the local API server ready and, stacked, every etcd member healthy and voting.
# Parameters: NODE_NAME, NODE_IP, ENDPOINT_HOST, API_SERVERS (the other planned control-plane nodes'
# addresses), PLANNED_NODES (every planned control-plane node's name), STACKED (true|false).
# Stdin: the JoinConfiguration (holds the bootstrap token).
: "${NODE_NAME:?}" "${NODE_IP:?}" "${ENDPOINT_HOST:?}" "${PLANNED_NODES:?}" "${STACKED:?}"
API_SERVERS=${API_SERVERS:-}
join_config=$(stdin_to_private_file)
ADMIN_KUBECONFIG=""
trap 'rm -f "$join_config" "$ADMIN_KUBECONFIG"' EXIT
ETCDCTL=etcdctl_in_pod
planned_count=$(wc -w <<<"$PLANNED_NODES")

gate() {
  wait_for_local_api 600
  if [ "$STACKED" = true ]; then
    ADMIN_KUBECONFIG=${ADMIN_KUBECONFIG:-$(mint_admin_kubeconfig 127.0.0.1)}
    find_etcd_pod "$PLANNED_NODES"
    # Unplanned members may remain until the membership step; the gate is that all are healthy voters.
    wait_for_etcd_settled 600 ""
  fi
}

if is_member; then
  log "$NODE_NAME is a control-plane member; waiting for its API server"
  if [ "$STACKED" = true ]; then
    wait_for_local_api 600
    ADMIN_KUBECONFIG=$(mint_admin_kubeconfig 127.0.0.1)
    find_etcd_pod "$PLANNED_NODES"
    # A lost node's member goes before the gate, which needs every member healthy.
    remove_unplanned "$PLANNED_NODES" down
  fi
  gate
  log "$NODE_NAME: member, API server ready"
  exit 0
fi
reset_unfinished_node "$NODE_NAME"
restore_pki

# The first planned API server that answers, verified with the cluster CA under the endpoint's name;
# else the load balancer itself (the replaced nodes of a rolling change still serve behind it).
live_api_server() {
  local ip
  for ip in $API_SERVERS; do
    if curl --silent --fail --max-time 5 --cacert "$PKI_DIR/ca.crt" --resolve "$ENDPOINT_HOST:6443:$ip" \
      "https://$ENDPOINT_HOST:6443/readyz" >/dev/null 2>&1; then
      printf '%s' "$ip"
      return 0
    fi
  done
  if curl --silent --fail --max-time 5 --cacert "$PKI_DIR/ca.crt" "https://$ENDPOINT_HOST:6443/readyz" >/dev/null 2>&1; then
    printf '%s' "$ENDPOINT_HOST"
    return 0
  fi
  return 1
}
deadline=$((SECONDS + 600))
until target=$(live_api_server); do
  [ "$SECONDS" -lt "$deadline" ] || fail "no API server of the cluster answered within 10 minutes (tried ${API_SERVERS:-none} and $ENDPOINT_HOST)"
  sleep 5
done
ADMIN_KUBECONFIG=$(mint_admin_kubeconfig "$target")

if [ "$STACKED" = true ]; then
  find_etcd_pod "$PLANNED_NODES"
  remove_unplanned "$PLANNED_NODES" down
fi

token=$(awk '$1 == "token:" { print $2; exit }' "$join_config")
[[ "$token" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "the join configuration holds no bootstrap token"
# The token expires an hour after it is made; re-create it for a join long after init.
if ! kubeadm token list --kubeconfig "$ADMIN_KUBECONFIG" 2>/dev/null | grep -qF "${token%%.*}"; then
  kubeadm token create "$token" --ttl 1h --description "kubeadm-ha control-plane join" --kubeconfig "$ADMIN_KUBECONFIG" >/dev/null 2>&1 ||
    fail "could not create the bootstrap token ${token%%.*} through $target"
fi
# No pin: kubeadm join reaches the endpoint through the load balancer, which serves a live cluster.
log "joining $NODE_NAME ($NODE_IP) to the control plane through $target"
run_kubeadm_marked join kubeadm join --config "$join_config"
wait_for_local_api 300
clear_kubeadm_marker
log "$NODE_NAME joined the control plane"

if [ "$STACKED" = true ]; then
  find_etcd_pod "$PLANNED_NODES"
  # Keep as many members as planned: a rolling replacement removes one old member per new one.
  remove_unplanned "$PLANNED_NODES" surplus
fi
gate
log "$NODE_NAME: member, API server ready${planned_count:+, $planned_count control-plane nodes planned}"
