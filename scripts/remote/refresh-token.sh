# On the first control-plane node, right before each join: (re)create the bootstrap token, read from
# stdin, so a join that happens long after init (a replacement, a scale-up) still finds it valid.
token=$(cat)
[[ "$token" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "stdin is not a bootstrap token"
# Talk to the local API server, not the load balancer, which may not route to a healthy target yet.
kubeconfig=$(mktemp /run/kubeadm-ha.XXXXXX)
trap 'rm -f "$kubeconfig"' EXIT
sed -E 's#^([[:space:]]*server:).*#\1 https://127.0.0.1:6443#' /etc/kubernetes/admin.conf >"$kubeconfig"
kubeadm token delete --kubeconfig "$kubeconfig" "${token%%.*}" >/dev/null 2>&1 || true
run_logged token kubeadm token create --kubeconfig "$kubeconfig" "$token" --ttl 1h \
  --description "kubeadm-ha control-plane join"
log "bootstrap token ${token%%.*} is valid for the next hour"
