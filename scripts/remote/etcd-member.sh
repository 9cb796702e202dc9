# On each external etcd member, after its certificates are placed: install the systemd unit and
# start the member. A member with no data decides how to bootstrap:
# - no peer answers, or the live cluster already lists this member's peer URL: it is one of the
#   initial members (`new`, with the planned initial cluster);
# - a live cluster answers without it: it replaces a lost member, so any old member with its name is
#   removed and it is added (`existing`, with the cluster etcd returns).
# Parameters: MEMBER_NAME, MEMBER_IP, INITIAL_CLUSTER, PEER_IPS (the other members), ETCD_UNIT;
# BACKUP_PROGRAM, PEER_BACKUP_ENV and SNAPSHOT_NOW_SERVICE (a snapshot through the live peer before
# this member is added, scripts/remote/snapshot.sh; empty with backups off).
: "${MEMBER_NAME:?}" "${MEMBER_IP:?}" "${INITIAL_CLUSTER:?}" "${ETCD_UNIT:?}"
PEER_IPS=${PEER_IPS:-}
peer_url="https://$MEMBER_IP:2380"
# The node's paths, under ROOT like every path of the remote steps (empty on a node).
ETCD_CLIENT_BIN=$ROOT/usr/local/bin/etcdctl
UNIT_FILE=$ROOT/etc/systemd/system/etcd.service
CLUSTER_ENV=$ROOT/etc/etcd/cluster.env
DATA_DIR=$ROOT/var/lib/etcd

etcdctl_at() {
  local endpoint=$1
  shift
  ETCDCTL_API=3 "$ETCD_CLIENT_BIN" --endpoints="https://$endpoint:2379" --dial-timeout=5s --command-timeout=10s \
    --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/healthcheck-client.crt" --key "$PKI_DIR/healthcheck-client.key" "$@"
}

# Byte for byte: a comparison through $(cat) drops the unit's trailing newlines, finds it changed on
# every run, and restarts a healthy member whenever the step runs again.
changed=false
printf '%s\n' "$ETCD_UNIT" >"$UNIT_FILE.new"
if ! cmp -s "$UNIT_FILE.new" "$UNIT_FILE"; then
  mv "$UNIT_FILE.new" "$UNIT_FILE"
  changed=true
else
  rm -f "$UNIT_FILE.new"
fi

if [ ! -d "$DATA_DIR/member" ]; then
  state=new
  cluster=$INITIAL_CLUSTER
  for ip in $PEER_IPS; do
    if members=$(etcdctl_at "$ip" member list -w simple 2>/dev/null); then
      if ! grep -qF "$peer_url" <<<"$members"; then
        snapshot_through_peer "$ip" "$MEMBER_NAME joins the live cluster"
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
  printf 'ETCD_INITIAL_CLUSTER=%s\nETCD_INITIAL_CLUSTER_STATE=%s\n' "$cluster" "$state" >"$CLUSTER_ENV.new"
  if ! cmp -s "$CLUSTER_ENV.new" "$CLUSTER_ENV"; then
    mv "$CLUSTER_ENV.new" "$CLUSTER_ENV"
    changed=true
  else
    rm -f "$CLUSTER_ENV.new"
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
