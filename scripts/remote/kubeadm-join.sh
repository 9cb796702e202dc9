# On every other control-plane node: kubeadm join --control-plane, converging when re-run.
# Parameters: NODE_NAME, NODE_IP, ENDPOINT_HOST, API_SERVERS (addresses of nodes already in the
# cluster). Stdin: the JoinConfiguration (holds the token).
: "${NODE_NAME:?}" "${NODE_IP:?}" "${ENDPOINT_HOST:?}" "${API_SERVERS:?}"
config=$(stdin_to_private_file)
trap 'rm -f "$config"; unpin_endpoint' EXIT

if [ -f /etc/kubernetes/kubelet.conf ] && [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ] && local_api_ready; then
  log "$NODE_NAME has already joined; nothing to do"
  exit 0
fi
# Re-running a half-finished join fails ("peer URLs already exists"): reset first. kubeadm writes
# admin.conf before it adds the etcd member, so reset can remove that member again.
if [ -e /etc/kubernetes/kubelet.conf ] || [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ] || [ -d /var/lib/etcd/member ]; then
  log "found a half-finished join on $NODE_NAME; resetting it first"
  run_logged reset kubeadm reset -f
fi
restore_pki

# Join through the first cluster member whose API server is ready, verified with the cluster CA under
# the endpoint's name; retry for up to five minutes.
target=""
deadline=$((SECONDS + 300))
while [ -z "$target" ]; do
  for ip in $API_SERVERS; do
    if curl --silent --fail --max-time 5 --cacert "$PKI_DIR/ca.crt" --resolve "$ENDPOINT_HOST:6443:$ip" \
      "https://$ENDPOINT_HOST:6443/readyz" >/dev/null 2>&1; then
      target=$ip
      break
    fi
  done
  if [ -z "$target" ]; then
    [ "$SECONDS" -lt "$deadline" ] || fail "no API server among $API_SERVERS became ready"
    sleep 5
  fi
done
pin_endpoint "$ENDPOINT_HOST" "$target"
log "joining $NODE_NAME ($NODE_IP) to the control plane through $target"
run_logged join kubeadm join --config "$config"
wait_for_local_api 300
log "$NODE_NAME joined the control plane"
