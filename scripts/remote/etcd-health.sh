# The health gate between external etcd and kubeadm init: waits until every member of the cluster
# answers healthy over TLS, for at most ten minutes.
# Parameters: MEMBER_IP (this member), EXPECTED_MEMBERS.
: "${MEMBER_IP:?}" "${EXPECTED_MEMBERS:?}"
# Under ROOT like every path of the remote steps (empty on a node).
ETCD_CLIENT_BIN=$ROOT/usr/local/bin/etcdctl
etcdctl_local() {
  ETCDCTL_API=3 "$ETCD_CLIENT_BIN" --endpoints="https://$MEMBER_IP:2379" --dial-timeout=5s --command-timeout=10s \
    --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/healthcheck-client.crt" --key "$PKI_DIR/healthcheck-client.key" "$@"
}
deadline=$((SECONDS + 600))
# Read as `-w fields` (members.sh): every member is listed with its health.
until healthy=$(etcdctl_local endpoint health --cluster -w fields 2>/dev/null | healthy_endpoints) &&
  [ "$(grep -c . <<<"$healthy")" -ge "$EXPECTED_MEMBERS" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "etcd did not report $EXPECTED_MEMBERS healthy members within 10 minutes"
  sleep 5
done
log "etcd cluster healthy: $(grep -c . <<<"$healthy") members"
