# On every control-plane node: make it a working member of the control plane, converging when re-run.
# - Already a member with a ready local API server: nothing to do.
# - Half-finished (a failed earlier run): `kubeadm reset` first; re-running a half-finished join fails
#   otherwise ("peer URLs already exists"). kubeadm writes admin.conf before it adds an etcd member,
#   so reset can remove that member again.
# - A cluster already answers (any node but the first, or a replacement of the first): join it.
#   The node holds the cluster CA (kubeadm's manual certificate distribution), so it mints a
#   short-lived admin credential to make sure the bootstrap token exists, which keeps a join working
#   however long after init it runs, with no other node's help but a live API server.
# - The first node, with no cluster anywhere: kubeadm init.
# While kubeadm runs, the endpoint's name resolves to a live API server through /etc/hosts (this
# node for init), so nothing waits for the load balancer to mark its first target healthy.
# Parameters: NODE_NAME, NODE_IP, ENDPOINT_HOST, FIRST_NODE (true|false), API_SERVERS (the other
# control-plane nodes' addresses, earlier nodes first). Stdin: the JoinConfiguration; the first node
# also gets the init documents before it, after a line "# kubeadm-ha: init" and before "--- # kubeadm-ha: join".
: "${NODE_NAME:?}" "${NODE_IP:?}" "${ENDPOINT_HOST:?}" "${FIRST_NODE:?}"
API_SERVERS=${API_SERVERS:-}
documents=$(stdin_to_private_file)
init_config=$(mktemp /run/kubeadm-ha.XXXXXX)
join_config=$(mktemp /run/kubeadm-ha.XXXXXX)
admin=$(mktemp /run/kubeadm-ha.XXXXXX)
trap 'rm -f "$documents" "$init_config" "$join_config" "$admin"; unpin_endpoint' EXIT
awk -v init="$init_config" -v join="$join_config" '
  /^# kubeadm-ha: init$/ { out = init; next }
  /^--- # kubeadm-ha: join$/ { out = join; next }
  { print > (out == "" ? join : out) }
' "$documents"

if [ -f /etc/kubernetes/kubelet.conf ] && [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ] && local_api_ready; then
  log "$NODE_NAME is already a control-plane member; nothing to do"
  exit 0
fi
if [ -e /etc/kubernetes/kubelet.conf ] || [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ] || [ -d /var/lib/etcd/member ]; then
  log "found a half-finished bootstrap on $NODE_NAME; resetting it first"
  run_logged reset kubeadm reset -f
fi
restore_pki

# The first API server among API_SERVERS that answers, verified with the cluster CA under the
# endpoint's name; empty if none does.
live_api_server() {
  local ip
  for ip in $API_SERVERS; do
    if curl --silent --fail --max-time 5 --cacert "$PKI_DIR/ca.crt" --resolve "$ENDPOINT_HOST:6443:$ip" \
      "https://$ENDPOINT_HOST:6443/readyz" >/dev/null 2>&1; then
      printf '%s' "$ip"
      return 0
    fi
  done
  return 1
}

target=$(live_api_server || true)
if [ -z "$target" ] && [ "$FIRST_NODE" = true ]; then
  [ -s "$init_config" ] || fail "no init configuration on stdin for the first node"
  pin_endpoint "$ENDPOINT_HOST" "$NODE_IP"
  log "no cluster answers: running kubeadm init on $NODE_NAME ($NODE_IP)"
  run_logged init kubeadm init --config "$init_config"
  wait_for_local_api 300
  log "$NODE_NAME initialised the control plane at $ENDPOINT_HOST:6443"
  exit 0
fi

deadline=$((SECONDS + 300))
while [ -z "$target" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "no API server among $API_SERVERS became ready"
  sleep 5
  target=$(live_api_server || true)
done

token=$(awk '$1 == "token:" { print $2; exit }' "$join_config")
[[ "$token" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "the join configuration holds no bootstrap token"
kubeadm kubeconfig user --client-name "kubeadm-ha-join-$NODE_NAME" --org kubeadm:cluster-admins --validity-period 1h >"$admin" 2>>"$LOG_DIR/join.log"
sed -i -E "s#^([[:space:]]*server:).*#\\1 https://$target:6443#" "$admin"
if ! kubeadm token list --kubeconfig "$admin" 2>/dev/null | grep -qF "$token"; then
  # Parallel joins may race to create it; losing the race is fine if the token now exists.
  kubeadm token create "$token" --ttl 1h --description "kubeadm-ha control-plane join" --kubeconfig "$admin" >/dev/null 2>&1 ||
    kubeadm token list --kubeconfig "$admin" 2>/dev/null | grep -qF "$token" ||
    fail "could not create the bootstrap token ${token%%.*} through $target"
fi
pin_endpoint "$ENDPOINT_HOST" "$target"
log "joining $NODE_NAME ($NODE_IP) to the control plane through $target"
run_logged join kubeadm join --config "$join_config"
wait_for_local_api 300
log "$NODE_NAME joined the control plane"
