# On each external etcd member, after its certificates are placed: install the systemd unit and
# start the member. A member with no data decides how to bootstrap:
# - no peer answers, or the live cluster already lists this member's peer URL: it is one of the
#   initial members (`new`, with the planned initial cluster);
# - a live cluster answers without it: it replaces a lost member, so any old member with its name is
#   removed and it is added (`existing`, with the cluster etcd returns).
# Parameters: MEMBER_NAME, MEMBER_IP, INITIAL_CLUSTER, PEER_IPS (the other members), ETCD_UNIT.
: "${MEMBER_NAME:?}" "${MEMBER_IP:?}" "${INITIAL_CLUSTER:?}" "${ETCD_UNIT:?}"
PEER_IPS=${PEER_IPS:-}
peer_url="https://$MEMBER_IP:2380"

etcdctl_at() {
  local endpoint=$1
  shift
  ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints="https://$endpoint:2379" --dial-timeout=5s --command-timeout=10s \
    --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/healthcheck-client.crt" --key "$PKI_DIR/healthcheck-client.key" "$@"
}

changed=false
if [ ! -f /etc/systemd/system/etcd.service ] || [ "$(cat /etc/systemd/system/etcd.service)" != "$ETCD_UNIT" ]; then
  printf '%s\n' "$ETCD_UNIT" >/etc/systemd/system/etcd.service
  changed=true
fi

if [ ! -d /var/lib/etcd/member ]; then
  state=new
  cluster=$INITIAL_CLUSTER
  for ip in $PEER_IPS; do
    if members=$(etcdctl_at "$ip" member list -w simple 2>/dev/null); then
      if ! grep -qF "$peer_url" <<<"$members"; then
        stale=$(awk -F', ' -v name="$MEMBER_NAME" '$3 == name { print $1 }' <<<"$members")
        if [ -n "$stale" ]; then
          log "removing the lost member $MEMBER_NAME ($stale) before replacing it"
          etcdctl_at "$ip" member remove "$stale" >/dev/null
        fi
        log "adding $MEMBER_NAME to the live cluster through $ip"
        added=$(etcdctl_at "$ip" member add "$MEMBER_NAME" --peer-urls="$peer_url")
        cluster=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$added")
        [ -n "$cluster" ] || fail "etcd did not return the cluster to join"
        state=existing
      fi
      break
    fi
  done
  printf 'ETCD_INITIAL_CLUSTER=%s\nETCD_INITIAL_CLUSTER_STATE=%s\n' "$cluster" "$state" >/etc/etcd/cluster.env.new
  if ! cmp -s /etc/etcd/cluster.env.new /etc/etcd/cluster.env; then
    mv /etc/etcd/cluster.env.new /etc/etcd/cluster.env
    changed=true
  else
    rm -f /etc/etcd/cluster.env.new
  fi
  log "bootstrapping $MEMBER_NAME as a $state member"
fi

systemctl daemon-reload
systemctl enable etcd >/dev/null 2>&1
# Members start in parallel; a starting member waits for quorum, so do not block on it here: the
# health gate that follows waits for the whole cluster.
if [ "$changed" = true ] || ! systemctl is-active --quiet etcd; then
  systemctl restart --no-block etcd
fi
log "etcd member $MEMBER_NAME started at https://$MEMBER_IP:2379"
