# Shared by every remote step: paths, logging, local API health, endpoint pinning, redaction.
# Remote steps run as root through sudo; their stdin carries the secrets, never their arguments.
umask 077
# Every path below sits under ROOT: empty on a node (sudo resets the environment, so it can be
# nothing else there); the test suite's host simulation sets it to give each simulated host a tree.
ROOT=${KUBEADM_HA_ROOT:-}
# A step may set these first (external etcd members keep their certificates under /etc/etcd).
PKI_DIR=$ROOT${PKI_DIR:-/etc/kubernetes/pki}
STAGED_PKI_DIR=$ROOT${STAGED_PKI_DIR:-/etc/kubeadm-ha/pki}
# Who reads the placed files: root for kubeadm's static pods, etcd:etcd for an external member.
PKI_OWNER=${PKI_OWNER:-root:root}
# kubeadm-ha's own directories. Never /run, /var/lib or /var/log themselves: see make_dir.
LOG_DIR=$ROOT/var/log/kubeadm-ha
KUBERNETES_DIR=$ROOT/etc/kubernetes
RUN_DIR=$ROOT/run/kubeadm-ha
STATE_DIR=$ROOT/var/lib/kubeadm-ha
HOSTS_FILE=$ROOT/etc/hosts
HOSTS_MARK="# kubeadm-ha bootstrap pin"
# Written just before kubeadm init or join starts and removed when it has finished: the one sign that
# a node holds a half-made member that `kubeadm reset` may wipe. A node without it is, or was, a
# working member, and is never reset.
KUBEADM_MARKER=$STATE_DIR/kubeadm-in-progress

install -d -m 0700 "$LOG_DIR" "$RUN_DIR"

log() { printf '[kubeadm-ha] %s\n' "$*"; }

fail() {
  printf '[kubeadm-ha] ERROR: %s\n' "$*" >&2
  exit 1
}

# The tail of a log, with anything shaped like a bootstrap token or a PEM block removed.
redacted_tail() {
  tail -n 40 "$1" | sed -E -e 's/[a-z0-9]{6}\.[a-z0-9]{16}/<redacted-token>/g' -e '/-----BEGIN/,/-----END/d' >&2
}

# Runs a command with its output in a root-only log; on failure shows a redacted tail and exits.
run_logged() {
  local name=$1
  shift
  local logfile="$LOG_DIR/$name.log"
  if ! "$@" >>"$logfile" 2>&1; then
    # Name the step, not the command line: arguments may hold a token.
    printf '[kubeadm-ha] ERROR: %s failed (%s); last lines of %s:\n' "$name" "$1" "$logfile" >&2
    redacted_tail "$logfile"
    exit 1
  fi
}

# A root-only temporary file (under /run/kubeadm-ha, on a tmpfs: secrets never reach a disk).
private_temp() {
  mktemp "$RUN_DIR/private.XXXXXX"
}

# Reads this step's stdin into a root-only file and prints its path.
stdin_to_private_file() {
  local file
  file=$(private_temp)
  cat >"$file"
  printf '%s' "$file"
}

# True when this node's own API server answers /readyz, verified against the cluster CA.
local_api_ready() {
  [ -f "$PKI_DIR/ca.crt" ] &&
    curl --silent --fail --max-time 5 --cacert "$PKI_DIR/ca.crt" https://127.0.0.1:6443/readyz >/dev/null 2>&1
}

# Polls until the local API server is ready, for at most $1 seconds.
wait_for_local_api() {
  local deadline=$((SECONDS + $1))
  until local_api_ready; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the local API server did not become ready within $1s"
    sleep 2
  done
}

# While kubeadm runs, resolve the control-plane endpoint's name to a live API server through
# /etc/hosts, so bootstrap never waits for the load balancer to mark its first target healthy.
pin_endpoint() {
  unpin_endpoint
  printf '%s %s %s\n' "$2" "$1" "$HOSTS_MARK" >>"$HOSTS_FILE"
}

unpin_endpoint() {
  local kept
  [ -f "$HOSTS_FILE" ] || return 0
  kept=$(grep -vF "$HOSTS_MARK" "$HOSTS_FILE" || true)
  printf '%s\n' "$kept" >"$HOSTS_FILE"
}

# Copies the staged shared CAs and this node's certificates into kubeadm's directory; `kubeadm reset`
# empties that directory, so every step that may reset calls this before running kubeadm.
restore_pki() {
  [ -d "$STAGED_PKI_DIR" ] || fail "no certificates staged in $STAGED_PKI_DIR; the place-pki step must run first"
  install -d -m 0700 "$PKI_DIR"
  cp -a "$STAGED_PKI_DIR/." "$PKI_DIR/"
  chown -R "$PKI_OWNER" "$PKI_DIR"
}

# Whether this node holds a control plane kubeadm finished setting up (init or join ran to the end).
is_member() {
  [ ! -e "$KUBEADM_MARKER" ] && [ -f "$KUBERNETES_DIR/kubelet.conf" ] && [ -f "$KUBERNETES_DIR/manifests/kube-apiserver.yaml" ]
}

# Written by a restore from a snapshot (the backup program's restore mode): the etcd data here is
# the snapshot's, put there for kubeadm init, not left by a member.
ETCD_RESTORED_MARKER=$STATE_DIR/etcd-restored

# Whether kubeadm left anything on this node: a member, or a half-made one.
has_kubeadm_state() {
  [ -e "$KUBERNETES_DIR/kubelet.conf" ] || [ -e "$KUBERNETES_DIR/manifests/kube-apiserver.yaml" ] ||
    { [ -d "$ROOT/var/lib/etcd/member" ] && [ ! -e "$ETCD_RESTORED_MARKER" ]; }
}

# 0: nothing listens on $1:$2 (the connection is refused); 1: a server, or something, answers (a TLS
# handshake that fails still answers); 2: no answer in time, which says nothing.
probe_port() {
  local status=0
  curl --silent --insecure --connect-timeout 5 --max-time 10 --output /dev/null "https://$1:$2/" || status=$?
  case $status in
    7) return 0 ;;
    28) return 2 ;;
    *) return 1 ;;
  esac
}

# Whether a cluster may exist, asked of the addresses $1 on port $2 (default 6443, the API servers;
# 2379 for etcd members): 0 (and prints the address) when any answers; 1 when every one refuses the
# connection; 2 (and prints the address) when one neither answers nor refuses for 5 minutes, which
# says nothing. Callers branch on all three (cluster_exists): a timeout is not "no".
a_cluster_answers() {
  local ip deadline result port=${2:-6443}
  for ip in $1; do
    deadline=$((SECONDS + 300))
    while true; do
      result=0
      probe_port "$ip" "$port" || result=$?
      case $result in
        0) break ;;
        1)
          printf '%s' "$ip"
          return 0
          ;;
      esac
      if [ "$SECONDS" -ge "$deadline" ]; then
        printf '%s' "$ip"
        return 2
      fi
      sleep 5
    done
  done
  return 1
}

# Sets CLUSTER_EXISTS to "yes" (a cluster answers at $CLUSTER_AT) or "no" (every address refused),
# asking a_cluster_answers's addresses and port; a timeout fails the step, so no caller ever decides
# on one. Called as a command, never in $(...), where a failure would only end the subshell.
cluster_exists() {
  local status=0
  CLUSTER_AT=$(a_cluster_answers "$@") || status=$?
  # shellcheck disable=SC2034 # CLUSTER_EXISTS is the answer, read by the caller
  case $status in
    0) CLUSTER_EXISTS=yes ;;
    1) CLUSTER_EXISTS=no ;;
    *) fail "$CLUSTER_AT:${2:-6443} neither answered nor refused for 5 minutes; refusing to decide on a guess whether a cluster exists" ;;
  esac
}

# Runs kubeadm init or join ($2...) under the in-progress marker, logged as $1.
run_kubeadm_marked() {
  install -d -m 0700 "$STATE_DIR"
  date -u +%FT%TZ >"$KUBEADM_MARKER"
  run_logged "$@"
}

# kubeadm finished and the local API server answers: the node is a member.
clear_kubeadm_marker() {
  rm -f "$KUBEADM_MARKER"
}

# Resets a node only when the marker says kubeadm was interrupted there; otherwise refuses with what
# to do, since the node is, or was, a working member whose etcd data must not be wiped on a guess.
reset_unfinished_node() {
  if [ -e "$KUBEADM_MARKER" ]; then
    log "an earlier kubeadm run on $1 did not finish (marker from $(cat "$KUBEADM_MARKER")); resetting it"
    run_logged reset kubeadm reset -f
    clear_kubeadm_marker
    # The reset emptied /var/lib/etcd: restored data, if any, is gone with it.
    rm -f "$ETCD_RESTORED_MARKER"
  elif has_kubeadm_state; then
    fail "$1 holds kubeadm state but no sign of an unfinished run, so it is or was a member; not resetting it. If it is broken, replace the node: pulumi up --replace <its instance URN>"
  fi
}

# A short-lived cluster-admin kubeconfig for server $1, minted from the cluster CA this node holds.
mint_admin_kubeconfig() {
  local file
  file=$(private_temp)
  kubeadm kubeconfig user --client-name "kubeadm-ha-$(hostname)" --org kubeadm:cluster-admins --validity-period 1h >"$file" 2>>"$LOG_DIR/kubeconfig.log" ||
    fail "could not mint an admin credential from the cluster CA"
  sed -i -E "s#^([[:space:]]*server:).*#\\1 https://$1:6443#" "$file"
  printf '%s' "$file"
}

# Starts the snapshot-now unit (a snapshot uploaded to S3) and waits for it. A role just attached to a
# running node, or a policy just written, reaches its credentials within seconds to a minute (IAM is
# eventually consistent): tried for 3 minutes, then false with the unit's journal on stderr.
start_snapshot_now() {
  local deadline=$((SECONDS + 180))
  until systemctl start kubeadm-ha-etcd-snapshot-now.service; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      journalctl -u kubeadm-ha-etcd-snapshot-now.service -n 20 --no-pager >&2 || true
      return 1
    fi
    sleep 15
  done
}

# A snapshot of etcd uploaded to S3 before a change that can lose it, through the unit the backup
# step installs; the change does not start when the upload fails. With backups off there is no
# snapshot to take, and the log says so. One per step: SNAPSHOT_TAKEN says one was uploaded already.
snapshot_before() {
  [ -z "${SNAPSHOT_TAKEN:-}" ] || return 0
  if [ -f "$ROOT/etc/systemd/system/kubeadm-ha-etcd-snapshot-now.service" ]; then
    log "uploading an etcd snapshot before $1"
    start_snapshot_now || fail "the etcd snapshot before $1 could not be uploaded (journalctl -u kubeadm-ha-etcd-snapshot-now); nothing was changed"
    SNAPSHOT_TAKEN=1
  else
    log "no etcd snapshot before $1: uploads are not installed on ${NODE_NAME:-this node} (etcdBackupRetention 0)"
  fi
}
