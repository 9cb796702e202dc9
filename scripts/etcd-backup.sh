#!/usr/bin/env bash
# kubeadm-ha etcd backup: snapshots of the local etcd member kept on the node, copies uploaded to S3,
# and the restore of such a copy into a new member's data directory.
#
#   kubeadm-ha-etcd-backup           a snapshot into BACKUP_DIR, keeping the newest RETENTION (hourly
#                                    timer, every member)
#   kubeadm-ha-etcd-backup upload    on the etcd leader only: a snapshot, checked, uploaded to S3 with
#                                    its SHA-256 (timer every interval, on every member: one acts)
#   kubeadm-ha-etcd-backup now       the same from this member whoever leads; run before a risky change,
#                                    it fails when the snapshot cannot be uploaded
#   kubeadm-ha-etcd-backup restore   a snapshot from S3, verified against its SHA-256, restored with
#                                    etcdutl into DATA_DIR before etcd first starts
#
# Settings (environment; systemd passes /etc/kubeadm-ha/etcd-backup.env, and a run by hand reads it):
#   ETCD_ENDPOINT, ETCD_CACERT, ETCD_CERT, ETCD_KEY  the member and a client identity
#   ETCD_ACCESS   "binary" runs etcdctl on the host (external members), "container" runs it inside
#                 kubeadm's etcd static pod, whose data directory is shared with the host (stacked)
#   BACKUP_DIR, RETENTION                            local snapshots: where, and how many to keep
#   MEMBER_NAME, S3_BUCKET, S3_PREFIX, S3_REGION     uploads: s3://S3_BUCKET/S3_PREFIX/<UTC time>-MEMBER_NAME.db
#   S3_KMS_KEY_ID        SSE-KMS with this key (otherwise SSE-S3)
#   BACKUP_INTERVAL_SECONDS, METRICS_DIR             node exporter textfile metrics (last success)
# Restore settings: RESTORE_BUCKET, RESTORE_KEY, RESTORE_REGION, MEMBER_NAME, MEMBER_PEER_URL,
#   INITIAL_CLUSTER, CLUSTER_TOKEN, DATA_DIR, DATA_OWNER, CLUSTER_ENV_FILE (optional), and ETCD_VERSION,
#   ETCD_SHA256_AMD64, ETCD_SHA256_ARM64 to fetch etcdutl where the node has none.
# AWS credentials are the instance role's, from IMDSv2; requests are signed by curl (--aws-sigv4) and
# the secrets reach curl on its stdin, never on a command line.
set -euo pipefail
umask 077
mode=${1:-local}

fail() {
  printf 'kubeadm-ha-etcd-backup: %s\n' "$*" >&2
  exit 1
}

# Run by hand (sudo kubeadm-ha-etcd-backup now), read the settings systemd would pass.
ENV_FILE=${BACKUP_ENV_FILE:-/etc/kubeadm-ha/etcd-backup.env}
if [ "$mode" != restore ] && [ -z "${ETCD_ENDPOINT:-}" ] && [ -r "$ENV_FILE" ]; then
  while IFS='=' read -r name value; do
    [[ "$name" =~ ^[A-Z][A-Z0-9_]*$ ]] && export "$name=$value"
  done <"$ENV_FILE"
fi

ETCD_ACCESS=${ETCD_ACCESS:-binary}
ETCD_CLIENT_BIN=${ETCD_CLIENT_BIN:-/usr/local/bin/etcdctl}
ETCDUTL_BIN=${ETCDUTL_BIN:-/usr/local/bin/etcdutl}
STACKED_DATA_DIR=${STACKED_DATA_DIR:-/var/lib/etcd}
CRI_ENDPOINT=unix:///run/containerd/containerd.sock
# Fixed to AWS. The test suite points them at a local fake; nothing on a node sets these.
IMDS=${KUBEADM_HA_TEST_IMDS:-http://169.254.169.254}
S3_TEST_ENDPOINT=${KUBEADM_HA_TEST_S3:-}
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# --- AWS: instance-role credentials and signed S3 requests -----------------------------------------

# Sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the instance role (IMDSv2).
instance_role_credentials() {
  local token role document
  token=$(curl --silent --show-error --fail --max-time 5 --retry 3 -X PUT \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$IMDS/latest/api/token") ||
    fail "no IMDSv2 token from the instance metadata service"
  role=$(curl --silent --show-error --fail --max-time 5 --retry 3 -H "X-aws-ec2-metadata-token: $token" \
    "$IMDS/latest/meta-data/iam/security-credentials/" | head -n 1) ||
    fail "this instance has no instance profile: the etcd members' role is missing"
  [[ "$role" =~ ^[A-Za-z0-9+=,.@_-]+$ ]] || fail "the instance metadata service returned no role name"
  document=$(curl --silent --show-error --fail --max-time 5 --retry 3 -H "X-aws-ec2-metadata-token: $token" \
    "$IMDS/latest/meta-data/iam/security-credentials/$role") ||
    fail "no credentials for role $role from the instance metadata service"
  AWS_ACCESS_KEY_ID=$(json_string AccessKeyId <<<"$document")
  AWS_SECRET_ACCESS_KEY=$(json_string SecretAccessKey <<<"$document")
  AWS_SESSION_TOKEN=$(json_string Token <<<"$document")
  for value in "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN"; do
    [[ "$value" =~ ^[A-Za-z0-9/+=]+$ ]] || fail "the credentials of role $role are malformed"
  done
}

# The string value of a top-level key in the flat JSON document on stdin.
json_string() {
  sed -n "s/^.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*\$/\\1/p" | head -n 1
}

# https://<bucket>.s3.<region>.amazonaws.com (virtual-hosted style, TLS).
s3_base_url() {
  if [ -n "$S3_TEST_ENDPOINT" ]; then
    printf '%s/%s' "$S3_TEST_ENDPOINT" "$1"
  else
    printf 'https://%s.s3.%s.amazonaws.com' "$1" "$2"
  fi
}

# A SigV4-signed S3 request: s3_request <region> <response body file> <curl arguments...>. Prints the
# HTTP status; fails unless it is 200, showing S3's error document.
s3_request() {
  local region=$1 body=$2 status
  shift 2
  instance_role_credentials
  # Secrets on curl's stdin (a config), never in its arguments, where any local user could read them.
  status=$(curl --silent --show-error --max-time 1800 --retry 3 \
    --aws-sigv4 "aws:amz:$region:s3" --config - -o "$body" -w '%{http_code}' "$@" <<EOF
user = "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
header = "x-amz-security-token: $AWS_SESSION_TOKEN"
EOF
  ) || fail "the S3 request did not complete (curl exit $?)"
  if [ "$status" != 200 ]; then
    printf 'kubeadm-ha-etcd-backup: S3 answered HTTP %s:\n' "$status" >&2
    head -c 2000 "$body" >&2 || true
    printf '\n' >&2
    return 1
  fi
}

# --- etcd ------------------------------------------------------------------------------------------

etcd_flags() {
  flags=(--endpoints="$ETCD_ENDPOINT" --cacert="$ETCD_CACERT" --cert="$ETCD_CERT" --key="$ETCD_KEY" --command-timeout=120s)
}

etcd_container() {
  local id
  id=$(crictl --runtime-endpoint "$CRI_ENDPOINT" ps --name '^etcd$' --state running -q | head -n 1)
  [ -n "$id" ] || fail "no running etcd container"
  printf '%s' "$id"
}

# etcdctl against this member, on the host or inside kubeadm's etcd pod.
etcdctl_run() {
  case "$ETCD_ACCESS" in
    binary) ETCDCTL_API=3 "$ETCD_CLIENT_BIN" "${flags[@]}" "$@" ;;
    container) crictl --runtime-endpoint "$CRI_ENDPOINT" exec "$(etcd_container)" etcdctl "${flags[@]}" "$@" ;;
    *) fail "unknown ETCD_ACCESS $ETCD_ACCESS" ;;
  esac
}

# Writes a snapshot of this member to $1. With $2 = check, prints `etcdutl snapshot status -w fields`
# of it, which fails on a file that is not a whole etcd database.
take_snapshot() {
  local out=$1 check=${2:-}
  case "$ETCD_ACCESS" in
    binary)
      if ! ETCDCTL_API=3 "$ETCD_CLIENT_BIN" "${flags[@]}" snapshot save "$out" >"$out.log" 2>&1; then
        cat "$out.log" >&2
        rm -f "$out.log"
        fail "etcdctl snapshot save failed"
      fi
      rm -f "$out.log"
      [ -s "$out" ] || fail "etcd returned an empty snapshot"
      [ "$check" != check ] || "$ETCDUTL_BIN" snapshot status "$out" -w fields || fail "etcdutl snapshot status rejects the snapshot"
      ;;
    container)
      local id inside="$STACKED_DATA_DIR/kubeadm-ha-snapshot.db"
      id=$(etcd_container)
      # Written inside the pod's data directory, which is the host's, checked there, then moved out.
      if ! crictl --runtime-endpoint "$CRI_ENDPOINT" exec "$id" etcdctl "${flags[@]}" snapshot save "$inside" >"$out.log" 2>&1; then
        cat "$out.log" >&2
        rm -f "$out.log"
        fail "etcdctl snapshot save failed"
      fi
      rm -f "$out.log"
      [ -s "$inside" ] || fail "etcd returned an empty snapshot"
      if [ "$check" = check ]; then
        crictl --runtime-endpoint "$CRI_ENDPOINT" exec "$id" etcdutl snapshot status "$inside" -w fields 2>/dev/null ||
          crictl --runtime-endpoint "$CRI_ENDPOINT" exec "$id" etcdctl snapshot status "$inside" -w fields ||
          fail "etcdutl snapshot status rejects the snapshot"
      fi
      mv "$inside" "$out"
      ;;
    *) fail "unknown ETCD_ACCESS $ETCD_ACCESS" ;;
  esac
}

field() {
  awk -F' : ' -v name="\"$1\"" '$1 == name { print $2; exit }'
}

# --- modes -----------------------------------------------------------------------------------------

local_snapshot() {
  : "${BACKUP_DIR:?}" "${RETENTION:?}"
  local name
  name="etcd-$(hostname -s)-$(date -u +%Y%m%dT%H%M%SZ).db"
  take_snapshot "$BACKUP_DIR/.$name.partial"
  mv "$BACKUP_DIR/.$name.partial" "$BACKUP_DIR/$name"
  # Keep the newest RETENTION snapshots (names sort by time).
  local old f
  mapfile -t old < <(find "$BACKUP_DIR" -maxdepth 1 -name 'etcd-*.db' -printf '%f\n' | sort -r | tail -n +"$((RETENTION + 1))")
  for f in "${old[@]}"; do rm -f "$BACKUP_DIR/$f"; done
  echo "etcd snapshot $BACKUP_DIR/$name ($(stat -c %s "$BACKUP_DIR/$name") bytes); keeping $RETENTION"
}

# The node exporter's textfile collector reads *.prom files; it runs as nobody, so they are 0644.
write_metrics() {
  [ -n "${METRICS_DIR:-}" ] || return 0
  local tmp
  install -d -m 0755 "$METRICS_DIR"
  tmp=$(mktemp "$METRICS_DIR/.kubeadm_ha_etcd_backup.XXXXXX")
  {
    echo "# HELP kubeadm_ha_etcd_backup_interval_seconds How often one etcd member uploads a snapshot to S3."
    echo "# TYPE kubeadm_ha_etcd_backup_interval_seconds gauge"
    echo "kubeadm_ha_etcd_backup_interval_seconds ${BACKUP_INTERVAL_SECONDS:-0}"
    if [ -f "$BACKUP_DIR/.last-upload" ]; then
      local at size seconds _key
      read -r at size seconds _key <"$BACKUP_DIR/.last-upload"
      echo "# HELP kubeadm_ha_etcd_backup_last_success_timestamp_seconds When this node last uploaded an etcd snapshot to S3."
      echo "# TYPE kubeadm_ha_etcd_backup_last_success_timestamp_seconds gauge"
      echo "kubeadm_ha_etcd_backup_last_success_timestamp_seconds $at"
      echo "# HELP kubeadm_ha_etcd_backup_last_size_bytes Size of the last etcd snapshot this node uploaded."
      echo "# TYPE kubeadm_ha_etcd_backup_last_size_bytes gauge"
      echo "kubeadm_ha_etcd_backup_last_size_bytes $size"
      echo "# HELP kubeadm_ha_etcd_backup_last_duration_seconds Time the last upload took, snapshot included."
      echo "# TYPE kubeadm_ha_etcd_backup_last_duration_seconds gauge"
      echo "kubeadm_ha_etcd_backup_last_duration_seconds $seconds"
    fi
  } >"$tmp"
  chmod 0644 "$tmp"
  mv "$tmp" "$METRICS_DIR/kubeadm_ha_etcd_backup.prom"
}

upload_snapshot() {
  : "${BACKUP_DIR:?}" "${MEMBER_NAME:?}" "${S3_BUCKET:?}" "${S3_PREFIX:?}" "${S3_REGION:?}"
  local started=$EPOCHREALTIME
  if [ "$1" = upload ]; then
    # Every member's timer fires in the same slot; the raft leader acts. It is healthy by definition
    # (it holds a quorum's lease) and holds every committed write, and each member can tell on its own.
    local status member leader
    status=$(etcdctl_run endpoint status -w fields) || fail "etcd member $MEMBER_NAME does not answer"
    member=$(field MemberID <<<"$status")
    leader=$(field Leader <<<"$status")
    if [ -z "$member" ] || [ "$member" != "$leader" ]; then
      write_metrics
      echo "etcd member $MEMBER_NAME is not the leader; the leader uploads"
      return 0
    fi
  fi

  local work key digest hex size fields
  work=$(mktemp -d "$BACKUP_DIR/.upload.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  fields=$(take_snapshot "$work/snapshot.db" check)
  openssl dgst -sha256 -binary "$work/snapshot.db" >"$work/sha256"
  hex=$(od -An -v -tx1 "$work/sha256" | tr -d ' \n')
  digest=$(base64 -w0 "$work/sha256")
  size=$(stat -c %s "$work/snapshot.db")
  key="$S3_PREFIX/$(date -u +%Y%m%dT%H%M%SZ)-$MEMBER_NAME.db"

  local headers=(
    # The signed payload hash, x-amz-checksum-sha256 (S3 checks the body against it and keeps it) and
    # the same digest as metadata, which the restore compares against what it downloads.
    -H "x-amz-content-sha256: $hex"
    -H "x-amz-checksum-sha256: $digest"
    -H "x-amz-meta-sha256: $hex"
  )
  if [ -n "${S3_KMS_KEY_ID:-}" ]; then
    headers+=(-H "x-amz-server-side-encryption: aws:kms" -H "x-amz-server-side-encryption-aws-kms-key-id: $S3_KMS_KEY_ID")
  else
    headers+=(-H "x-amz-server-side-encryption: AES256")
  fi
  s3_request "$S3_REGION" "$work/response" -X PUT "${headers[@]}" -T "$work/snapshot.db" \
    "$(s3_base_url "$S3_BUCKET" "$S3_REGION")/$key" || fail "the upload of s3://$S3_BUCKET/$key failed"

  local seconds
  seconds=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  printf '%s %s %s %s\n' "$(date +%s)" "$size" "$seconds" "$key" >"$BACKUP_DIR/.last-upload"
  write_metrics
  echo "uploaded s3://$S3_BUCKET/$key ($size bytes, sha256 $hex, revision $(field Revision <<<"$fields"), $(field Keys <<<"$fields") keys) in ${seconds}s"
}

# etcdctl and etcdutl from the pinned etcd release, checksum verified, where the node lacks either
# (control-plane nodes run etcd in kubeadm's pod only): a restore needs etcdutl, and a snapshot taken
# through another member before a change ("binary" access from a node that joins) needs both.
# Arguments: the tools needed (etcdutl, etcdctl).
ensure_etcd_tools() {
  local tool missing=()
  for tool in "$@"; do
    case $tool in
      etcdutl) [ -x "$ETCDUTL_BIN" ] || missing+=(etcdutl) ;;
      etcdctl) [ -x "$ETCD_CLIENT_BIN" ] || missing+=(etcdctl) ;;
    esac
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  : "${ETCD_VERSION:?}" "${ETCD_SHA256_AMD64:?}" "${ETCD_SHA256_ARM64:?}"
  local arch sha256 name tmp
  arch=$(dpkg --print-architecture)
  case "$arch" in
    amd64) sha256=$ETCD_SHA256_AMD64 ;;
    arm64) sha256=$ETCD_SHA256_ARM64 ;;
    *) fail "unsupported architecture $arch" ;;
  esac
  name="etcd-v${ETCD_VERSION}-linux-${arch}"
  tmp=$(mktemp -d)
  curl -fsSL --retry 5 -o "$tmp/$name.tar.gz" "https://github.com/etcd-io/etcd/releases/download/v${ETCD_VERSION}/${name}.tar.gz"
  echo "${sha256}  $tmp/$name.tar.gz" | sha256sum --check --strict --quiet || fail "the etcd release does not match its pinned SHA-256"
  tar -xzf "$tmp/$name.tar.gz" -C "$tmp" "${missing[@]/#/$name/}"
  for tool in "${missing[@]}"; do
    if [ "$tool" = etcdutl ]; then install -m 0755 "$tmp/$name/etcdutl" "$ETCDUTL_BIN"; else install -m 0755 "$tmp/$name/etcdctl" "$ETCD_CLIENT_BIN"; fi
  done
  rm -rf "$tmp"
}

restore_snapshot() {
  : "${RESTORE_BUCKET:?}" "${RESTORE_KEY:?}" "${RESTORE_REGION:?}" "${MEMBER_NAME:?}" "${MEMBER_PEER_URL:?}" \
    "${INITIAL_CLUSTER:?}" "${CLUSTER_TOKEN:?}" "${DATA_DIR:?}"
  local source="s3://$RESTORE_BUCKET/$RESTORE_KEY" marker=${RESTORE_MARKER:-/var/lib/kubeadm-ha/etcd-restored}
  if [ -d "$DATA_DIR/member" ]; then
    echo "$DATA_DIR already holds etcd data; not restoring $source over it"
    return 0
  fi
  ensure_etcd_tools etcdutl
  local work expected actual
  install -d -m 0700 "$(dirname "$DATA_DIR")"
  # Next to the data directory, so the restored member moves into place with a rename.
  work=$(mktemp -d "$(dirname "$DATA_DIR")/.kubeadm-ha-restore.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  s3_request "$RESTORE_REGION" "$work/snapshot.db" -D "$work/headers" -H "x-amz-content-sha256: $EMPTY_SHA256" \
    "$(s3_base_url "$RESTORE_BUCKET" "$RESTORE_REGION")/$RESTORE_KEY" || fail "could not download $source"
  expected=$(tr -d '\r' <"$work/headers" | awk -F': ' 'tolower($1) == "x-amz-meta-sha256" { print $2; exit }')
  [[ "$expected" =~ ^[0-9a-f]{64}$ ]] || fail "$source carries no SHA-256 (x-amz-meta-sha256); refusing to restore an unverifiable snapshot"
  actual=$(sha256sum "$work/snapshot.db" | cut -d' ' -f1)
  [ "$actual" = "$expected" ] || fail "$source does not match its SHA-256 (stored $expected, downloaded $actual); refusing to restore it"
  "$ETCDUTL_BIN" snapshot status "$work/snapshot.db" -w fields >"$work/status" || fail "etcdutl rejects $source"
  "$ETCDUTL_BIN" snapshot restore "$work/snapshot.db" --data-dir "$work/data" --name "$MEMBER_NAME" \
    --initial-cluster "$INITIAL_CLUSTER" --initial-cluster-token "$CLUSTER_TOKEN" \
    --initial-advertise-peer-urls "$MEMBER_PEER_URL" >"$work/restore.log" 2>&1 ||
    { cat "$work/restore.log" >&2; fail "etcdutl snapshot restore failed"; }
  install -d -m 0700 "$DATA_DIR"
  mv "$work/data/member" "$DATA_DIR/member"
  [ -z "${DATA_OWNER:-}" ] || chown -R "$DATA_OWNER" "$DATA_DIR"
  # An external member's unit reads its bootstrap flags from this file; a restored member has its
  # cluster in its data, but the file must exist.
  if [ -n "${CLUSTER_ENV_FILE:-}" ] && [ ! -f "$CLUSTER_ENV_FILE" ]; then
    printf 'ETCD_INITIAL_CLUSTER=%s\nETCD_INITIAL_CLUSTER_STATE=new\n' "$INITIAL_CLUSTER" >"$CLUSTER_ENV_FILE"
  fi
  install -d -m 0700 "$(dirname "$marker")"
  printf '%s sha256:%s revision:%s restored:%s\n' "$source" "$actual" "$(field Revision <"$work/status")" "$(date -u +%FT%TZ)" >"$marker"
  echo "restored $MEMBER_NAME from $source (sha256 $actual, revision $(field Revision <"$work/status"), $(field Keys <"$work/status") keys) into $DATA_DIR"
}

case "$mode" in
  restore)
    restore_snapshot
    ;;
  local | upload | now)
    : "${ETCD_ENDPOINT:?}" "${ETCD_CACERT:?}" "${ETCD_CERT:?}" "${ETCD_KEY:?}" "${BACKUP_DIR:?}"
    # A node that reaches another member ("binary" access) without etcd's tools of its own gets them.
    if [ "$ETCD_ACCESS" = binary ] && [ -n "${ETCD_VERSION:-}" ]; then ensure_etcd_tools etcdctl etcdutl; fi
    etcd_flags
    install -d -m 0700 "$BACKUP_DIR"
    # One snapshot at a time on a node: the hourly one, the upload and a "now" wait for each other.
    # The lock sits beside the directory, which holds snapshots only.
    exec 9>"$BACKUP_DIR.lock"
    flock -w 900 9 || fail "another backup has held $BACKUP_DIR.lock for 15 minutes"
    if [ "$mode" = local ]; then local_snapshot; else upload_snapshot "$mode"; fi
    ;;
  *)
    fail "unknown mode $mode; allowed: local (default), upload, now, restore"
    ;;
esac
