# Shared by every remote step: paths, logging, local API health, endpoint pinning, redaction.
# Remote steps run as root through sudo; their stdin carries the secrets, never their arguments.
umask 077
# A step may set these first (external etcd members keep their certificates under /etc/etcd).
PKI_DIR=${PKI_DIR:-/etc/kubernetes/pki}
STAGED_PKI_DIR=${STAGED_PKI_DIR:-/etc/kubeadm-ha/pki}
# Who reads the placed files: root for kubeadm's static pods, etcd:etcd for an external member.
PKI_OWNER=${PKI_OWNER:-root:root}
LOG_DIR=${LOG_DIR:-/var/log/kubeadm-ha}
HOSTS_MARK="# kubeadm-ha bootstrap pin"
install -d -m 0700 "$LOG_DIR"

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

# Reads this step's stdin into a root-only file and prints its path.
stdin_to_private_file() {
  local file
  file=$(mktemp /run/kubeadm-ha.XXXXXX)
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
  printf '%s %s %s\n' "$2" "$1" "$HOSTS_MARK" >>/etc/hosts
}

unpin_endpoint() {
  local kept
  kept=$(grep -vF "$HOSTS_MARK" /etc/hosts || true)
  printf '%s\n' "$kept" >/etc/hosts
}

# Copies the staged shared CAs and this node's certificates into kubeadm's directory; `kubeadm reset`
# empties that directory, so every step that may reset calls this before running kubeadm.
restore_pki() {
  [ -d "$STAGED_PKI_DIR" ] || fail "no certificates staged in $STAGED_PKI_DIR; the place-pki step must run first"
  install -d -m 0700 "$PKI_DIR"
  cp -a "$STAGED_PKI_DIR/." "$PKI_DIR/"
  chown -R "$PKI_OWNER" "$PKI_DIR"
}
