# Once in the cluster's life, on the first control-plane node: kubeadm init. The command that runs
# this ignores every later change of its inputs, so no `pulumi up` runs it again; and even when it
# does run, it refuses to create a second cluster:
# - this node is already a member: nothing to do;
# - kubeadm init was interrupted here (the in-progress marker): reset and init again;
# - kubeadm left state here without the marker: refuse (it is, or was, a member);
# - any other planned node answers on 6443, or cannot be told not to (a timeout is not "no"): refuse.
# While kubeadm runs, the endpoint's name resolves to this node through /etc/hosts, so nothing waits
# for the load balancer to mark its first target healthy. Afterwards the pin is removed and the
# kube-proxy pod that may have started under it (the kubelet copies the node's /etc/hosts into
# host-network pods when they start) is restarted, so no pod keeps the pinned address.
# Parameters: NODE_NAME, NODE_IP, ENDPOINT_HOST, API_SERVERS (the other planned control-plane
# nodes' addresses). Stdin: the kubeadm init documents (they hold the bootstrap token).
: "${NODE_NAME:?}" "${NODE_IP:?}" "${ENDPOINT_HOST:?}"
API_SERVERS=${API_SERVERS:-}
init_config=$(stdin_to_private_file)
trap 'rm -f "$init_config"; unpin_endpoint' EXIT

if is_member; then
  log "$NODE_NAME already runs the control plane; kubeadm init is not run again"
  wait_for_local_api 600
  exit 0
fi
reset_unfinished_node "$NODE_NAME"
restore_pki

# 0: nothing listens on $1:6443 (the connection is refused); 1: an API server, or something, answers;
# 2: no answer in time, which says nothing.
probe_api_port() {
  local status=0
  curl --silent --insecure --connect-timeout 5 --max-time 10 --output /dev/null "https://$1:6443/healthz" || status=$?
  case $status in
    7) return 0 ;;
    28) return 2 ;;
    *) return 1 ;;
  esac
}
for ip in $API_SERVERS; do
  deadline=$((SECONDS + 300))
  while true; do
    result=0
    probe_api_port "$ip" || result=$?
    case $result in
      0) break ;;
      1) fail "a server answers on $ip:6443 (another control-plane node): a cluster may already exist, so kubeadm init is refused. Bring that node back, or rebuild the stack from a backup" ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || fail "$ip:6443 neither answered nor refused for 5 minutes; kubeadm init is refused rather than run on a guess"
    sleep 5
  done
done

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
