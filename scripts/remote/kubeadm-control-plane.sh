# On every control-plane node, one node at a time: make it a working member of the cluster that
# cluster-init created, and converge when run again (create and update run this same script).
# - A member (kubeadm finished here): wait for its API server, which may be restarting, for minutes;
#   never reset it. Then converge it, when it differs, to the cluster's release (kubeadm upgrade apply
#   on the first node to find the cluster older, upgrade node on the others, kubelet drained and
#   upgraded), to the cluster's configuration (static pods re-rendered), and renew its certificates
#   when they expire within RENEW_WITHIN_DAYS: each change after control_plane_gate passes, and
#   followed by it (scripts/remote/upgrade.sh, certificates.sh).
# - kubeadm was interrupted here (the in-progress marker): reset, then join again.
# - Anything else kubeadm left, with no marker: refuse, and say how to replace the node.
# - A new node: join through a live API server. Stacked etcd: first remove the etcd members that are
#   down and belong to no planned node (kubeadm refuses to join while a listed member is down), then
#   join, then remove surplus unplanned members while the rest keep a majority. kubeadm init never
#   runs here: only cluster-init does, once in the cluster's life.
# Ends gated: the local API server ready and, stacked, every etcd member healthy and voting.
# Parameters: NODE_NAME, NODE_IP, ENDPOINT_HOST, API_SERVERS (the other planned control-plane nodes'
# addresses), PLANNED_NODES (every planned control-plane node's name), STACKED (true|false),
# KUBERNETES_VERSION ("1.34" or "1.34.2"), RENEW_WITHIN_DAYS; BACKUP_PROGRAM, PEER_BACKUP_ENV and
# SNAPSHOT_NOW_SERVICE (the snapshot before a join; empty with backups off).
# Stdin: the JoinConfiguration (holds the bootstrap token), then, from a document headed by the comment
# "# kubeadm-ha: node configuration", this node's InitConfiguration and the ClusterConfiguration.
: "${NODE_NAME:?}" "${NODE_IP:?}" "${ENDPOINT_HOST:?}" "${PLANNED_NODES:?}" "${STACKED:?}" "${KUBERNETES_VERSION:?}" "${RENEW_WITHIN_DAYS:?}"
API_SERVERS=${API_SERVERS:-}
documents=$(stdin_to_private_file)
join_config=$(private_temp)
node_config=$(private_temp)
ADMIN_KUBECONFIG=""
trap 'rm -f "$documents" "$join_config" "$node_config" "$ADMIN_KUBECONFIG"' EXIT
# The document separator before the mark ends the join documents; it goes to neither file.
awk -v join="$join_config" -v node="$node_config" '
  held != "" { if ($0 == "# kubeadm-ha: node configuration") { into = node; held = ""; next } print held > join; held = "" }
  $0 == "---" && !into { held = $0; next }
  { print > (into ? into : join) }
  END { if (held != "") print held > join }' "$documents"
[ -s "$node_config" ] || fail "the step's input holds no node configuration"
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

# A member whose release, configuration or certificates differ from the cluster's: each change
# between two passes of the full gate (every control-plane Node and pod Ready, every etcd member
# healthy and voting), so a node that breaks stops the run before the next node is touched.
converge_member() {
  local changes=()
  plan_release "$KUBERNETES_VERSION"
  [ -z "$UPGRADE" ] || changes+=("upgrade ($UPGRADE) to $UPGRADE_TO")
  local running
  running=$(cluster_version)
  pin_configuration "$node_config" "$running"
  if [ ! -e "$APPLIED_CONFIG" ]; then
    # A member from before this record: what it runs is what it was built from; changes from now on apply.
    record_configuration "$node_config"
  elif configuration_changed "$node_config"; then
    changes+=("configuration")
  fi
  local renew=false
  if [ -z "$UPGRADE" ] && certificates_due "$RENEW_WITHIN_DAYS"; then
    renew=true
    changes+=("certificate renewal")
  fi
  [ "${#changes[@]}" -gt 0 ] || return 0
  log "$NODE_NAME: ${changes[*]}"
  control_plane_gate 600
  if configuration_changed "$node_config"; then
    # The cluster's copy first: `kubeadm upgrade` renders from it.
    upload_configuration "$node_config"
  fi
  if [ -n "$UPGRADE" ]; then
    upgrade_release
    pin_configuration "$node_config" "$UPGRADE_TO"
  elif configuration_changed "$node_config"; then
    apply_configuration "$node_config"
  fi
  record_configuration "$node_config"
  [ "$renew" = false ] || renew_certificates
  control_plane_gate 600
}

if is_member; then
  log "$NODE_NAME is a control-plane member; waiting for its API server"
  # A certificate renewal cut short leaves a component stopped: put it back first.
  restore_held_manifests
  wait_for_local_api 600
  ADMIN_KUBECONFIG=$(mint_admin_kubeconfig 127.0.0.1)
  if [ "$STACKED" = true ]; then
    find_etcd_pod "$PLANNED_NODES"
    # A lost node's member goes before the gate, which needs every member healthy.
    remove_unplanned "$PLANNED_NODES" down
  fi
  gate
  converge_member
  log "$NODE_NAME: member, API server ready"
  report_certificate_expiry
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
# The bootstrap token this join uses, with its full TTL: one made earlier (by init, or a join that
# stopped) may have minutes left, and the kubelet's TLS bootstrap with it comes at the end of the join,
# after the etcd join. kubeadm refuses to create a token whose id exists, so it goes first (absent is
# fine). The token is an argument of kubeadm only; neither command's output, which holds it, is kept.
fresh_join_token() {
  local id=${token%%.*}
  kubeadm token delete "$id" --kubeconfig "$ADMIN_KUBECONFIG" >/dev/null 2>&1 || true
  kubeadm token create "$token" --ttl 1h --description "kubeadm-ha control-plane join" --kubeconfig "$ADMIN_KUBECONFIG" >/dev/null 2>&1 ||
    fail "could not create the bootstrap token $id through $target"
}

deadline=$((SECONDS + 600))
until target=$(live_api_server); do
  [ "$SECONDS" -lt "$deadline" ] || fail "no API server of the cluster answered within 10 minutes (tried ${API_SERVERS:-none} and $ENDPOINT_HOST)"
  sleep 5
done
ADMIN_KUBECONFIG=$(mint_admin_kubeconfig "$target")

# A node rebuilt from the launch template version it was first built from (`pulumi up --replace`
# after an upgrade: each node keeps its version, core/node-image.ts) carries an older release than the
# cluster runs. It installs the cluster's release before it joins: kubeadm supports no control plane
# newer than itself.
joining_release=$(cluster_version)
if older_than "$(plain_version "$(kubeadm version -o short)")" "$joining_release"; then
  log "$NODE_NAME was prepared with kubeadm $(kubeadm version -o short); installing the cluster's release $joining_release before it joins"
  use_kubernetes_repository "$(minor_of "$joining_release")"
  install_release "$joining_release" kubeadm kubelet kubectl
  run_logged daemon-reload systemctl daemon-reload
  run_logged kubelet-restart systemctl restart kubelet
fi

# Stacked etcd: a snapshot of the live cluster before its membership changes (a lost member removed,
# this node's added), through a live member (scripts/remote/snapshot.sh): the API server that
# answered, else the first etcd pod that answers on 2379 (the pods use their node's address). The
# client certificate is kubeadm's healthcheck-client, made from the placed etcd CA; the join keeps it.
if [ "$STACKED" = true ] && [ -n "${BACKUP_PROGRAM:-}" ]; then
  running=$(cluster_version)
  pin_configuration "$node_config" "$running"
  run_logged etcd-client-certificate kubeadm init phase certs etcd-healthcheck-client --config "$node_config"
  peer=""
  if [[ "$target" =~ ^[0-9.]+$ ]]; then
    peer=$target
  else
    pod_ips=$(kubectl --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=30s -n kube-system get pods -l component=etcd \
      -o jsonpath='{.items[*].status.podIP}') || fail "could not list the etcd pods to snapshot through"
    for ip in $pod_ips; do
      status=0
      probe_port "$ip" 2379 || status=$?
      if [ "$status" -eq 1 ]; then
        peer=$ip
        break
      fi
    done
  fi
  [ -n "$peer" ] || fail "no live etcd member to snapshot through before $NODE_NAME joins"
  snapshot_through_peer "$peer" "the join of $NODE_NAME"
fi

if [ "$STACKED" = true ]; then
  find_etcd_pod "$PLANNED_NODES"
  remove_unplanned "$PLANNED_NODES" down
fi

token=$(awk '$1 == "token:" { gsub(/["\047]/, "", $2); print $2; exit }' "$join_config")
[[ "$token" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "the join configuration holds no bootstrap token"
fresh_join_token
# No pin: kubeadm join reaches the endpoint through the load balancer, which serves a live cluster.
log "joining $NODE_NAME ($NODE_IP) to the control plane through $target"
run_kubeadm_marked join kubeadm join --config "$join_config"
wait_for_local_api 300
clear_kubeadm_marker
log "$NODE_NAME joined the control plane"
# The kubelet finished its TLS bootstrap inside the join: the token has done its work.
kubeadm token delete "${token%%.*}" --kubeconfig "$ADMIN_KUBECONFIG" >/dev/null 2>&1 ||
  log "could not delete the bootstrap token ${token%%.*}; it expires within the hour"
# Its static pods were rendered from the cluster's configuration, which the member steps keep current.
joined_version=$(cluster_version)
pin_configuration "$node_config" "$joined_version"
record_configuration "$node_config"

if [ "$STACKED" = true ]; then
  find_etcd_pod "$PLANNED_NODES"
  # Keep as many members as planned: a rolling replacement removes one old member per new one.
  remove_unplanned "$PLANNED_NODES" surplus
fi
gate
log "$NODE_NAME: member, API server ready${planned_count:+, $planned_count control-plane nodes planned}"
report_certificate_expiry
