# Before etcd first starts on this node: restore its data directory from a snapshot in S3, verified
# against the SHA-256 stored with it, as a member of a new cluster (new member names, peer URLs and
# cluster token). Does nothing when the data directory already holds a member, so a re-run never
# overwrites live data, and nothing when a cluster exists to join: (stacked etcd) another planned
# control-plane node answers on 6443, or (external) another member answers on 2379. The work is the backup program's `restore` mode: one
# S3 client on the nodes. It restores with the etcdutl of the etcd the cluster runs, and only a
# snapshot of that etcd's major.minor.
# Parameters: BACKUP_PROGRAM (the program's text), RESTORE_BUCKET, RESTORE_KEY, RESTORE_REGION,
# MEMBER_NAME, MEMBER_PEER_URL, INITIAL_CLUSTER, CLUSTER_TOKEN, DATA_DIR, DATA_OWNER, CLUSTER_ENV_FILE,
# CLUSTER_ETCD, ETCDUTL_RELEASES, REVISION_BUMP; API_SERVERS (stacked: the other planned
# control-plane nodes' addresses) or ETCD_PEERS (external: the other members' addresses).
: "${BACKUP_PROGRAM:?}" "${RESTORE_BUCKET:?}" "${RESTORE_KEY:?}" "${RESTORE_REGION:?}" "${MEMBER_NAME:?}" "${MEMBER_PEER_URL:?}"
: "${INITIAL_CLUSTER:?}" "${CLUSTER_TOKEN:?}" "${DATA_DIR:?}" "${CLUSTER_ETCD:?}" "${REVISION_BUMP:?}"
export RESTORE_BUCKET RESTORE_KEY RESTORE_REGION MEMBER_NAME MEMBER_PEER_URL INITIAL_CLUSTER CLUSTER_TOKEN CLUSTER_ETCD REVISION_BUMP
export ETCDUTL_RELEASES="${ETCDUTL_RELEASES:-}" DATA_OWNER="${DATA_OWNER:-}"
# The node's paths, under ROOT like every path of the remote steps (empty on a node).
export DATA_DIR=$ROOT$DATA_DIR ETCDUTL_BIN=$ROOT/usr/local/bin/etcdutl CLUSTER_ENV_FILE=${CLUSTER_ENV_FILE:+$ROOT$CLUSTER_ENV_FILE}
export RESTORE_MARKER=$ETCD_RESTORED_MARKER
if [ -n "${API_SERVERS:-}" ]; then
  cluster_exists "$API_SERVERS" 6443
  if [ "$CLUSTER_EXISTS" = yes ]; then
    log "a cluster answers at $CLUSTER_AT:6443; $MEMBER_NAME joins it, nothing is restored"
    exit 0
  fi
fi
if [ -n "${ETCD_PEERS:-}" ]; then
  cluster_exists "$ETCD_PEERS" 2379
  if [ "$CLUSTER_EXISTS" = yes ]; then
    log "an etcd member answers at $CLUSTER_AT:2379; $MEMBER_NAME joins its cluster, nothing is restored"
    exit 0
  fi
fi
restore_program=$(mktemp)
trap 'rm -f "$restore_program"' EXIT
printf '%s\n' "$BACKUP_PROGRAM" >"$restore_program"
log "restoring etcd member $MEMBER_NAME from s3://$RESTORE_BUCKET/$RESTORE_KEY"
bash "$restore_program" restore || fail "the etcd restore of $MEMBER_NAME failed; etcd was not started"
