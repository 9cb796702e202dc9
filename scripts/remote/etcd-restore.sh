# Before etcd first starts on this node: restore its data directory from a snapshot in S3, verified
# against the SHA-256 stored with it, as a member of a new cluster (new member names, peer URLs and
# cluster token). Does nothing when the data directory already holds a member, so a re-run never
# overwrites live data. The work is the backup program's `restore` mode: one S3 client on the nodes.
# Parameters: BACKUP_PROGRAM (the program's text), RESTORE_BUCKET, RESTORE_KEY, RESTORE_REGION,
# MEMBER_NAME, MEMBER_PEER_URL, INITIAL_CLUSTER, CLUSTER_TOKEN, DATA_DIR, DATA_OWNER, CLUSTER_ENV_FILE,
# ETCD_VERSION, ETCD_SHA256_AMD64, ETCD_SHA256_ARM64.
: "${BACKUP_PROGRAM:?}" "${RESTORE_BUCKET:?}" "${RESTORE_KEY:?}" "${RESTORE_REGION:?}" "${MEMBER_NAME:?}" "${MEMBER_PEER_URL:?}"
: "${INITIAL_CLUSTER:?}" "${CLUSTER_TOKEN:?}" "${DATA_DIR:?}"
export RESTORE_BUCKET RESTORE_KEY RESTORE_REGION MEMBER_NAME MEMBER_PEER_URL INITIAL_CLUSTER CLUSTER_TOKEN DATA_DIR
export DATA_OWNER="${DATA_OWNER:-}" CLUSTER_ENV_FILE="${CLUSTER_ENV_FILE:-}"
export ETCD_VERSION="${ETCD_VERSION:-}" ETCD_SHA256_AMD64="${ETCD_SHA256_AMD64:-}" ETCD_SHA256_ARM64="${ETCD_SHA256_ARM64:-}"
restore_program=$(mktemp)
trap 'rm -f "$restore_program"' EXIT
printf '%s\n' "$BACKUP_PROGRAM" >"$restore_program"
log "restoring etcd member $MEMBER_NAME from s3://$RESTORE_BUCKET/$RESTORE_KEY"
bash "$restore_program" restore || fail "the etcd restore of $MEMBER_NAME failed; etcd was not started"
