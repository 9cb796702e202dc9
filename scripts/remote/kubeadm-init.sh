# On the first control-plane node: kubeadm init, converging when re-run.
# Parameters: NODE_NAME, NODE_IP, ENDPOINT_HOST. Stdin: the kubeadm configuration (holds the token).
: "${NODE_NAME:?}" "${NODE_IP:?}" "${ENDPOINT_HOST:?}"
config=$(stdin_to_private_file)
trap 'rm -f "$config"; unpin_endpoint' EXIT

if [ -f /etc/kubernetes/admin.conf ] && local_api_ready; then
  log "$NODE_NAME is already initialised; nothing to do"
  exit 0
fi
# A second `kubeadm init` next to a live cluster would build a second, empty cluster behind the same
# load balancer. If the endpoint already answers with our CA, this node must join instead.
if curl --silent --fail --max-time 5 --cacert "$STAGED_PKI_DIR/ca.crt" "https://$ENDPOINT_HOST:6443/readyz" >/dev/null 2>&1; then
  fail "a cluster already answers at $ENDPOINT_HOST; refusing to init a second one on $NODE_NAME (see the README, 'Replacing a node')"
fi
if [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ] || [ -d /var/lib/etcd/member ]; then
  log "found a half-finished init on $NODE_NAME; resetting it first"
  run_logged reset kubeadm reset -f
fi
restore_pki
pin_endpoint "$ENDPOINT_HOST" "$NODE_IP"
log "running kubeadm init on $NODE_NAME ($NODE_IP)"
run_logged init kubeadm init --config "$config"
wait_for_local_api 300
log "$NODE_NAME initialised the control plane at $ENDPOINT_HOST:6443"
