# On each external etcd member, after its certificates are placed: install the systemd unit and
# start the member. A member with no data decides how to bootstrap:
# - no peer answers, or the live cluster lists this member's peer URL as a voter: it is one of the
#   initial members (`new`, with the planned initial cluster);
# - a live cluster answers without it (or lists it as a learner, added by a run that stopped): it
#   joins that cluster without ever weakening its quorum. Members that are down and planned for no
#   instance go first (etcd adds no member while a voting member is down); it is added as a learner,
#   which does not count towards the quorum, and started (`existing`, with the cluster etcd lists);
#   it is promoted once it has caught up with the leader; only then does the member it replaces go,
#   and only while the healthy voting members left keep a majority (members.sh, the rules of every
#   membership change). Pulumi creates a replacement before it deletes the old instance, so the old
#   member is usually still healthy when this runs.
# A member that runs finishes what a stopped run left: promoted if it is still a learner, the member it
# replaces (its name, another address) removed.
# Parameters: MEMBER_NAME, MEMBER_IP, INITIAL_CLUSTER (the planned members), PEER_IPS (the other
# members), ETCD_UNIT; BACKUP_PROGRAM, PEER_BACKUP_ENV and SNAPSHOT_NOW_SERVICE (a snapshot through the
# live peer before this member is added, scripts/remote/snapshot.sh; empty with backups off).
: "${MEMBER_NAME:?}" "${MEMBER_IP:?}" "${INITIAL_CLUSTER:?}" "${ETCD_UNIT:?}"
PEER_IPS=${PEER_IPS:-}
peer_url="https://$MEMBER_IP:2380"
# The node's paths, under ROOT like every path of the remote steps (empty on a node).
ETCD_CLIENT_BIN=$ROOT/usr/local/bin/etcdctl
UNIT_FILE=$ROOT/etc/systemd/system/etcd.service
CLUSTER_ENV=$ROOT/etc/etcd/cluster.env
DATA_DIR=$ROOT/var/lib/etcd
# The membership rules (members.sh) know external members by their peer URLs: a replacement keeps its
# name. The planned ones are the initial cluster's.
MEMBER_KEY=peer
planned_peers=$(tr ',' '\n' <<<"$INITIAL_CLUSTER" | sed 's/^[^=]*=//' | paste -sd' ' -)

etcdctl_at() {
  local endpoint=$1
  shift
  ETCDCTL_API=3 "$ETCD_CLIENT_BIN" --endpoints="https://$endpoint:2379" --dial-timeout=5s --command-timeout=10s \
    --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/healthcheck-client.crt" --key "$PKI_DIR/healthcheck-client.key" "$@"
}
# The membership rules' etcdctl: through the live peer found below.
etcdctl_live() { etcdctl_at "$LIVE_PEER" "$@"; }
ETCDCTL=etcdctl_live

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

# The first planned peer that answers with the member list (which takes a quorum), and that list.
LIVE_PEER=""
members=""
for ip in $PEER_IPS; do
  if members=$(etcdctl_at "$ip" member list -w fields 2>/dev/null | member_rows); then
    LIVE_PEER=$ip
    break
  fi
done
mine=$(member_with_peer "$peer_url" <<<"$members")
mine_learner=$(awk '{ print $5 }' <<<"$mine")
# A member of this name at another address: the one this member replaces.
predecessor=$(awk -v name="$MEMBER_NAME" -v peer="$peer_url" '$2 == name && index("," $3 ",", "," peer ",") == 0' <<<"$members")
joining=false

if [ ! -d "$DATA_DIR/member" ]; then
  state=new
  cluster=$INITIAL_CLUSTER
  if [ -n "$LIVE_PEER" ] && { [ -z "$mine" ] || [ "$mine_learner" = true ]; }; then
    joining=true
    snapshot_through_peer "$LIVE_PEER" "$MEMBER_NAME joins the live cluster"
    remove_members "$planned_peers" down >/dev/null
    log "adding $MEMBER_NAME to the live cluster through $LIVE_PEER, as a learner"
    cluster=$(add_learner "$MEMBER_NAME" "$peer_url")
    [ -n "$cluster" ] || fail "etcd did not list the cluster to join"
    state=existing
  fi
  printf 'ETCD_INITIAL_CLUSTER=%s\nETCD_INITIAL_CLUSTER_STATE=%s\n' "$cluster" "$state" >"$CLUSTER_ENV.new"
  if ! cmp -s "$CLUSTER_ENV.new" "$CLUSTER_ENV"; then
    mv "$CLUSTER_ENV.new" "$CLUSTER_ENV"
    changed=true
  else
    rm -f "$CLUSTER_ENV.new"
  fi
  log "bootstrapping $MEMBER_NAME (initial cluster state: $state)"
fi

systemctl daemon-reload
systemctl enable etcd >/dev/null 2>&1
# Members start in parallel; a starting member waits for quorum, so do not block on it here: the
# health gate that follows waits for the whole cluster.
if [ "$changed" = true ] || ! systemctl is-active --quiet etcd; then
  systemctl restart --no-block etcd
fi
log "etcd member $MEMBER_NAME started at https://$MEMBER_IP:2379"

if [ "$joining" = true ] || { [ -n "$mine" ] && { [ "$mine_learner" = true ] || [ -n "$predecessor" ]; }; }; then
  promote_learner "$peer_url" 600
  remove_members "$planned_peers" surplus >/dev/null
fi
