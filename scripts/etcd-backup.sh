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
#                                    the etcdutl of the etcd the cluster runs into DATA_DIR before etcd
#                                    first starts
#
# Settings (environment; systemd passes /etc/kubeadm-ha/etcd-backup.env, and a run by hand reads it):
#   ETCD_ENDPOINT, ETCD_CACERT, ETCD_CERT, ETCD_KEY  the member and a client identity
#   ETCD_ACCESS   "binary" runs etcdctl on the host (external members), "container" runs it inside
#                 kubeadm's etcd static pod, whose data directory is shared with the host (stacked)
#   BACKUP_DIR, RETENTION                            local snapshots: where, and how many to keep
#   MEMBER_NAME, S3_BUCKET, S3_PREFIX, S3_REGION     uploads: s3://S3_BUCKET/S3_PREFIX/<UTC time>-MEMBER_NAME.db
#   S3_KMS_KEY_ID        SSE-KMS with this key (otherwise SSE-S3)
#   BACKUP_INTERVAL_SECONDS, METRICS_DIR             node exporter textfile metrics (last success)
#   ETCD_VERSION, ETCD_SHA256_AMD64, ETCD_SHA256_ARM64  the etcd release whose etcdctl and etcdutl a node
#                 that reaches another member fetches when it has none
# Restore settings: RESTORE_BUCKET, RESTORE_KEY, RESTORE_REGION, MEMBER_NAME, MEMBER_PEER_URL,
#   INITIAL_CLUSTER, CLUSTER_TOKEN, DATA_DIR, DATA_OWNER, CLUSTER_ENV_FILE (optional), RESTORE_MARKER;
#   CLUSTER_ETCD, the etcd the restored cluster runs: "kubeadm" (stacked: the etcd image the node's
#   kubeadm runs, whose etcdutl restores) or a release (external: the members', ETCDUTL_BIN);
#   ETCDUTL_RELEASES, "<version> <sha256 amd64> <sha256 arm64>" lines, one release per etcd minor, to
#   fetch where the cluster's etcd brings no etcdutl; REVISION_BUMP, for --bump-revision.
# Every snapshot uploaded carries the release of the etcd that wrote it (x-amz-meta-etcd-version): a
# restore refuses one of another major.minor than the cluster's etcd, whose etcdutl alone restores it.
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
  make_dir 0755 "$METRICS_DIR"
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
  local started=$EPOCHREALTIME status version
  status=$(etcdctl_run endpoint status -w fields) || fail "etcd member $MEMBER_NAME does not answer"
  # The release of the etcd that writes the snapshot, stored with it: only an etcdutl of its
  # major.minor may restore it.
  version=$(field Version <<<"$status" | tr -d '"')
  [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+[A-Za-z0-9.+-]*$ ]] || fail "etcd member $MEMBER_NAME reports no version"
  if [ "$1" = upload ]; then
    # Every member's timer fires in the same slot; the raft leader acts. It is healthy by definition
    # (it holds a quorum's lease) and holds every committed write, and each member can tell on its own.
    local member leader
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
    -H "x-amz-meta-etcd-version: $version"
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
  echo "uploaded s3://$S3_BUCKET/$key ($size bytes, sha256 $hex, etcd $version, revision $(field Revision <<<"$fields"), $(field Keys <<<"$fields") keys) in ${seconds}s"
}

# etcdctl and etcdutl from the pinned etcd release, checksum verified, where the node lacks either
# (control-plane nodes run etcd in kubeadm's pod only): a snapshot taken through another member before
# a change ("binary" access from a node that joins) needs both. Arguments: the tools needed.
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
  local tmp dir
  tmp=$(mktemp -d)
  dir=$(fetch_etcd_release "$ETCD_VERSION" "$ETCD_SHA256_AMD64" "$ETCD_SHA256_ARM64" "$tmp" "${missing[@]}") || exit 1
  for tool in "${missing[@]}"; do
    if [ "$tool" = etcdutl ]; then install -m 0755 "$dir/etcdutl" "$ETCDUTL_BIN"; else install -m 0755 "$dir/etcdctl" "$ETCD_CLIENT_BIN"; fi
  done
  rm -rf "$tmp"
}

# "3.6" of 3.6.8, 3.6.8-0 or 3.6; empty for anything else.
minor_of() {
  [[ "$1" =~ ^([0-9]+\.[0-9]+)(\.|-|$) ]] && printf '%s' "${BASH_REMATCH[1]}"
}

# The release an etcdutl (the command "$@") reports, such as 3.6.8; empty when it does not run.
etcdutl_version() {
  { "$@" version 2>/dev/null || true; } | sed -n 's/^etcdutl version: \([0-9][0-9A-Za-z.+-]*\)$/\1/p' | head -n 1
}

# etcdutl inside the etcd image $ETCD_IMAGE, through containerd, with the restore's work directory
# bound at its own path; each run is a container of its own name, removed when it ends.
image_etcdutl() {
  IMAGE_RUNS=$((IMAGE_RUNS + 1))
  ctr --namespace k8s.io run --rm --mount "type=bind,src=$RESTORE_WORK,dst=$RESTORE_WORK,options=rbind:rw" \
    "$ETCD_IMAGE" "kubeadm-ha-etcdutl-$BASHPID-$IMAGE_RUNS" etcdutl "$@"
}

# Chooses the etcdutl of the etcd the restored cluster runs (CLUSTER_ETCD) and sets ETCDUTL (the
# command), ETCDUTL_RELEASE (its release) and CLUSTER_ETCD_RELEASE. Stacked ("kubeadm"): the etcdutl in
# the etcd image this node's kubeadm runs, pulled as kubeadm pulls it, so the very release that then
# serves the data restores it. External: the members' own, installed with etcd. Where that brings no
# etcdutl of the cluster's minor (registry.k8s.io images Kubernetes built itself carry etcd and etcdctl
# only): the release of that minor pinned in ETCDUTL_RELEASES, checksum verified. Never another minor.
select_etcdutl() {
  local image found="" where version amd64 arm64 dir
  IMAGE_RUNS=0
  if [ "$CLUSTER_ETCD" = kubeadm ]; then
    image=$(kubeadm config images list --kubernetes-version "$(kubeadm version -o short)" 2>/dev/null | grep -E '/etcd:[^[:space:]]+$' | head -n 1) ||
      fail "kubeadm $(kubeadm version -o short 2>/dev/null) lists no etcd image; cannot tell which etcd the cluster runs"
    [[ "$image" =~ ^[A-Za-z0-9./:_-]+$ ]] || fail "kubeadm lists an unexpected etcd image: $image"
    CLUSTER_ETCD_RELEASE=${image##*:}
    CLUSTER_ETCD_RELEASE=${CLUSTER_ETCD_RELEASE%%-*}
    ETCD_IMAGE=$image
    where="the etcd image $image that kubeadm runs"
    ctr --namespace k8s.io images pull "$image" >"$RESTORE_WORK/pull.log" 2>&1 ||
      { tail -n 5 "$RESTORE_WORK/pull.log" >&2; fail "could not pull $image, the etcd kubeadm runs"; }
    found=$(etcdutl_version image_etcdutl)
    if [ -n "$found" ] && [ "$(minor_of "$found")" = "$(minor_of "$CLUSTER_ETCD_RELEASE")" ]; then
      ETCDUTL=(image_etcdutl)
      ETCDUTL_RELEASE=$found
      return 0
    fi
  else
    CLUSTER_ETCD_RELEASE=$CLUSTER_ETCD
    where="$ETCDUTL_BIN"
    [ ! -x "$ETCDUTL_BIN" ] || found=$(etcdutl_version "$ETCDUTL_BIN")
    if [ -n "$found" ] && [ "$(minor_of "$found")" = "$(minor_of "$CLUSTER_ETCD_RELEASE")" ]; then
      ETCDUTL=("$ETCDUTL_BIN")
      ETCDUTL_RELEASE=$found
      return 0
    fi
  fi
  [ -n "$(minor_of "$CLUSTER_ETCD_RELEASE")" ] || fail "the cluster's etcd release '$CLUSTER_ETCD_RELEASE' is not a version"
  echo "${where} has no etcdutl of etcd $(minor_of "$CLUSTER_ETCD_RELEASE")${found:+ (it has $found)}; fetching the pinned release of that minor"
  while read -r version amd64 arm64; do
    [ "$(minor_of "$version")" = "$(minor_of "$CLUSTER_ETCD_RELEASE")" ] || continue
    dir=$(fetch_etcd_release "$version" "$amd64" "$arm64" "$RESTORE_WORK" etcdutl) || exit 1
    ETCDUTL=("$dir/etcdutl")
    ETCDUTL_RELEASE=$version
    return 0
  done <<<"${ETCDUTL_RELEASES:-}"
  fail "no etcdutl of etcd $(minor_of "$CLUSTER_ETCD_RELEASE") to restore with: ${where} has none and kubeadm-ha pins no release of that minor"
}

# A header of the downloaded snapshot's S3 response ($1 in lower case).
snapshot_header() {
  tr -d '\r' <"$RESTORE_WORK/headers" | awk -F': ' -v name="$1" 'tolower($1) == name { print $2; exit }'
}

restore_snapshot() {
  : "${RESTORE_BUCKET:?}" "${RESTORE_KEY:?}" "${RESTORE_REGION:?}" "${MEMBER_NAME:?}" "${MEMBER_PEER_URL:?}" \
    "${INITIAL_CLUSTER:?}" "${CLUSTER_TOKEN:?}" "${DATA_DIR:?}" "${CLUSTER_ETCD:?}" "${REVISION_BUMP:?}"
  local source="s3://$RESTORE_BUCKET/$RESTORE_KEY" marker=${RESTORE_MARKER:-/var/lib/kubeadm-ha/etcd-restored}
  if [ -d "$DATA_DIR/member" ]; then
    echo "$DATA_DIR already holds etcd data; not restoring $source over it"
    return 0
  fi
  [[ "$REVISION_BUMP" =~ ^[1-9][0-9]*$ ]] || fail "REVISION_BUMP '$REVISION_BUMP' is not a positive number"
  local state expected actual written revision
  # The work happens in kubeadm-ha's own directory; the data directory's parent (/var/lib) is the
  # system's and keeps its mode.
  state=$(dirname "$marker")
  install -d -m 0700 "$state"
  make_dir 0755 "$(dirname "$DATA_DIR")"
  RESTORE_WORK=$(mktemp -d "$state/restore.XXXXXX")
  # shellcheck disable=SC2064 # expand now
  trap "rm -rf '$RESTORE_WORK'" EXIT
  select_etcdutl
  s3_request "$RESTORE_REGION" "$RESTORE_WORK/snapshot.db" -D "$RESTORE_WORK/headers" -H "x-amz-content-sha256: $EMPTY_SHA256" \
    "$(s3_base_url "$RESTORE_BUCKET" "$RESTORE_REGION")/$RESTORE_KEY" || fail "could not download $source"
  expected=$(snapshot_header x-amz-meta-sha256)
  [[ "$expected" =~ ^[0-9a-f]{64}$ ]] || fail "$source carries no SHA-256 (x-amz-meta-sha256); refusing to restore an unverifiable snapshot"
  actual=$(sha256sum "$RESTORE_WORK/snapshot.db" | cut -d' ' -f1)
  [ "$actual" = "$expected" ] || fail "$source does not match its SHA-256 (stored $expected, downloaded $actual); refusing to restore it"
  "${ETCDUTL[@]}" snapshot status "$RESTORE_WORK/snapshot.db" -w fields >"$RESTORE_WORK/status" || fail "etcdutl rejects $source"
  # The etcd that wrote the snapshot: recorded with the upload; for a snapshot uploaded before that,
  # the storage version etcd 3.6 and later keep in every snapshot (etcdutl 3.6 and later show it);
  # without either, etcd 3.5 (3.5 keeps none, and kubeadm-ha never ran an older etcd).
  written=$(snapshot_header x-amz-meta-etcd-version)
  [ -n "$written" ] || written=$(field Version <"$RESTORE_WORK/status")
  [ -n "$written" ] || written=3.5
  [ -n "$(minor_of "$written")" ] || fail "$source names its etcd as '$written', which is not a version"
  if [ "$(minor_of "$written")" != "$(minor_of "$CLUSTER_ETCD_RELEASE")" ]; then
    fail "$source was written by etcd $written, and this cluster runs etcd $CLUSTER_ETCD_RELEASE: etcd restores a snapshot only with the etcdutl of the major.minor that wrote it. Restore it into a cluster whose etcd is $(minor_of "$written") (stacked: a kubernetesVersion whose kubeadm runs that etcd, such as the release the snapshot's cluster ran; external: a kubeadm-ha release whose members run it), then upgrade that cluster"
  fi
  # --bump-revision and --mark-compacted: every revision a client of the old cluster saw is compacted
  # in the restored one, so watchers and informers list again instead of resuming at reused revisions.
  "${ETCDUTL[@]}" snapshot restore "$RESTORE_WORK/snapshot.db" --data-dir "$RESTORE_WORK/data" --name "$MEMBER_NAME" \
    --initial-cluster "$INITIAL_CLUSTER" --initial-cluster-token "$CLUSTER_TOKEN" \
    --initial-advertise-peer-urls "$MEMBER_PEER_URL" --bump-revision "$REVISION_BUMP" --mark-compacted >"$RESTORE_WORK/restore.log" 2>&1 ||
    { cat "$RESTORE_WORK/restore.log" >&2; fail "etcdutl snapshot restore failed"; }
  install -d -m 0700 "$DATA_DIR"
  mv "$RESTORE_WORK/data/member" "$DATA_DIR/member"
  [ -z "${DATA_OWNER:-}" ] || chown -R "$DATA_OWNER" "$DATA_DIR"
  # An external member's unit reads its bootstrap flags from this file; a restored member has its
  # cluster in its data, but the file must exist.
  if [ -n "${CLUSTER_ENV_FILE:-}" ] && [ ! -f "$CLUSTER_ENV_FILE" ]; then
    printf 'ETCD_INITIAL_CLUSTER=%s\nETCD_INITIAL_CLUSTER_STATE=new\n' "$INITIAL_CLUSTER" >"$CLUSTER_ENV_FILE"
  fi
  revision=$(field Revision <"$RESTORE_WORK/status")
  printf '%s sha256:%s revision:%s etcd:%s etcdutl:%s bump:%s restored:%s\n' "$source" "$actual" "$revision" "$written" "$ETCDUTL_RELEASE" \
    "$REVISION_BUMP" "$(date -u +%FT%TZ)" >"$marker"
  echo "restored $MEMBER_NAME from $source (sha256 $actual, revision $revision, $(field Keys <"$RESTORE_WORK/status") keys, written by etcd $written) into $DATA_DIR with etcdutl $ETCDUTL_RELEASE for etcd $CLUSTER_ETCD_RELEASE; revisions moved on by $REVISION_BUMP and compacted"
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
