# The certificates kubeadm issues on a control-plane node: its leaf certificates and the client
# certificates inside its kubeconfig files, one year each (the CAs it does not renew last ten). When the
# earliest expires, their renewal, and the restart of the static pods that read them, one at a time.
# Shared by the member step (renewal under `pulumi up`) and the renewal program a daily timer runs.

# The container runtime the kubelet runs the static pods in (containerd, as prepare-node.sh installs it).
CRI_ENDPOINT=unix:///run/containerd/containerd.sock
# Where a manifest waits while its static pod is stopped: outside the manifests directory (the kubelet
# runs every file in it) and on disk, so a restart cut short by a crash or a reboot is finished by
# the next run, which puts the manifest back before anything else.
HELD_MANIFESTS_DIR=$STATE_DIR/held-manifests
# The static pods that read the renewed certificates, in the order `kubeadm upgrade` restarts them:
# etcd first, since a stacked API server talks to its local etcd member alone and its readiness after
# its own restart then also shows that etcd serves again.
STATIC_PODS="etcd kube-apiserver kube-controller-manager kube-scheduler"
# The kubelet notices a removed manifest within its file check interval (20s) and then gives the pod
# its grace period (30s for the API server); a restarted pod may pull nothing but must pass its probes.
STATIC_POD_STOP_SECONDS=180
STATIC_POD_START_SECONDS=300
# The node exporter's textfile collector directory (the same as the etcd backups' metrics).
CERT_METRICS_DIR=$ROOT/var/lib/node_exporter/textfile_collector
# External etcd: the members' certificates (no keys), which the cert-renewal-install step keeps here
# for the expiry metric (core/cert-renewal.ts ETCD_CERTIFICATES_DIR).
ETCD_CERTIFICATES_DIR=$ROOT/etc/kubeadm-ha/etcd-certificates

# Prints the earliest expiry (ISO 8601, UTC) of the certificates kubeadm manages on this node, from
# `kubeadm certs check-expiration -o json` (output.kubeadm.k8s.io CertificateExpirationInfo): the
# entries of "certificates" (leaf certificates and kubeconfig files) that are neither missing (a
# kubeconfig only the first node has, super-admin.conf) nor externally managed. Fails when kubeadm
# fails or lists nothing, never guesses a date.
earliest_certificate_expiry() {
  local out
  out=$(private_temp)
  if ! kubeadm certs check-expiration -o json >"$out" 2>>"$LOG_DIR/certs-check.log"; then
    rm -f "$out"
    printf '[kubeadm-ha] ERROR: kubeadm certs check-expiration failed; last lines of %s:\n' "$LOG_DIR/certs-check.log" >&2
    redacted_tail "$LOG_DIR/certs-check.log"
    exit 1
  fi
  # Python parses the JSON (python3 is on every node: cloud-init runs on it); kubeadm may print a
  # line about reading its configuration before the document, so decoding starts at its first brace.
  if ! python3 - "$out" <<'PY'; then
import json
import sys
from datetime import datetime, timezone

text = open(sys.argv[1], encoding="utf-8").read()
start = text.find("{")
if start < 0:
    sys.exit("kubeadm certs check-expiration printed no JSON document")
info, _ = json.JSONDecoder().raw_decode(text[start:])
dates = []
for cert in info.get("certificates") or []:
    if cert.get("missing") or cert.get("externallyManaged") or not cert.get("expirationDate"):
        continue
    dates.append(datetime.fromisoformat(cert["expirationDate"].replace("Z", "+00:00")).astimezone(timezone.utc))
if not dates:
    sys.exit("kubeadm certs check-expiration lists no certificate kubeadm manages on this node")
print(min(dates).strftime("%Y-%m-%dT%H:%M:%SZ"))
PY
    rm -f "$out"
    fail "could not read the certificates' expiry from kubeadm certs check-expiration"
  fi
  rm -f "$out"
}

# Prints "<name> <ISO 8601 UTC expiry>" for each certificate the program issued for external etcd
# that kubeadm neither lists nor renews: kubeadm's renewal and check-expiration leave out every etcd
# certificate, apiserver-etcd-client included, when etcd is external (GetCertsWithoutEtcd). This
# node's own client certificate at the members, then the members' certificates the install step
# copied here. Only `pulumi up` renews them (the etcd CA key is in the stack's state alone). Nothing
# with stacked etcd, where kubeadm issues and renews them all. Fails on a file openssl cannot read.
external_etcd_certificate_expiries() {
  local file end
  [ "${STACKED:-}" = false ] || return 0
  for file in "$PKI_DIR/apiserver-etcd-client.crt" "$ETCD_CERTIFICATES_DIR"/*.crt; do
    [ -f "$file" ] || continue
    end=$(openssl x509 -noout -enddate -in "$file" 2>/dev/null) || fail "openssl cannot read the certificate $file"
    printf '%s %s\n' "$(basename "$file" .crt)" "$(date -u -d "${end#notAfter=}" +%Y-%m-%dT%H:%M:%SZ)"
  done
}

# True when the date $1 (ISO 8601) is within $2 days of now.
expires_within() {
  [ "$(date -u -d "$1" +%s)" -le $(($(date -u +%s) + $2 * 86400)) ]
}

# True when the earliest certificate kubeadm manages here expires within $1 days. Exits (never
# answers false) when the expiry cannot be read: callers use it as a condition, where a failed
# command substitution would not stop the script by itself.
certificates_due() {
  local expiry
  expiry=$(earliest_certificate_expiry) || exit 1
  expires_within "$expiry" "$1"
}

# Whether a container named $1 runs on this node. Exits when the runtime does not answer: "no
# container" must mean that, never "could not ask".
static_pod_running() {
  local ids
  ids=$(crictl --runtime-endpoint "$CRI_ENDPOINT" ps --name "^$1\$" --state running -q) ||
    fail "crictl could not list the containers (is containerd running?)"
  [ -n "$ids" ]
}

# Polls until $1's container is gone, for at most STATIC_POD_STOP_SECONDS. On timeout its manifest
# goes back, so the node is never left without the component.
wait_for_static_pod_stopped() {
  local deadline=$((SECONDS + STATIC_POD_STOP_SECONDS))
  while static_pod_running "$1"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      mv "$HELD_MANIFESTS_DIR/$1.yaml" "$KUBERNETES_DIR/manifests/$1.yaml"
      fail "$1 kept running ${STATIC_POD_STOP_SECONDS}s after its manifest was moved out; its manifest is back, the pod was not restarted"
    fi
    sleep 1
  done
}

# Polls until $1 runs again and, for the API server, answers /readyz, for at most STATIC_POD_START_SECONDS.
wait_for_static_pod_healthy() {
  local deadline=$((SECONDS + STATIC_POD_START_SECONDS))
  until static_pod_running "$1" && { [ "$1" != kube-apiserver ] || local_api_ready; }; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$1 did not come back within ${STATIC_POD_START_SECONDS}s of its restart; see crictl ps -a and journalctl -u kubelet"
    sleep 2
  done
}

# Puts back every manifest a restart cut short left in the holding directory, and waits for its pod.
restore_held_manifests() {
  local held name
  [ -d "$HELD_MANIFESTS_DIR" ] || return 0
  for held in "$HELD_MANIFESTS_DIR"/*.yaml; do
    [ -e "$held" ] || continue
    name=$(basename "$held" .yaml)
    # Both copies at once is no state a restart leaves (it moves, never copies): someone edited here.
    [ ! -e "$KUBERNETES_DIR/manifests/$name.yaml" ] ||
      fail "$name's manifest is both in $KUBERNETES_DIR/manifests and held in $HELD_MANIFESTS_DIR; keep the right one, remove the other"
    log "putting back the manifest of $name, held by a restart that did not finish"
    mv "$held" "$KUBERNETES_DIR/manifests/$name.yaml"
    wait_for_static_pod_healthy "$name"
  done
}

# Restarts the control-plane static pods so they read the renewed certificates, one at a time (the
# documented way: the manifest out of the kubelet's directory until the pod stops, then back). Never
# two at once: each is running and healthy again before the next one stops.
restart_static_pods() {
  local name manifest
  restore_held_manifests
  install -d -m 0700 "$HELD_MANIFESTS_DIR"
  for name in $STATIC_PODS; do
    manifest=$KUBERNETES_DIR/manifests/$name.yaml
    if [ ! -f "$manifest" ]; then
      # etcd runs as a static pod only when it is stacked.
      [ "$name" = etcd ] && continue
      fail "no manifest $manifest: this node holds no complete control plane"
    fi
    log "restarting $name to load the renewed certificates"
    mv "$manifest" "$HELD_MANIFESTS_DIR/$name.yaml"
    wait_for_static_pod_stopped "$name"
    mv "$HELD_MANIFESTS_DIR/$name.yaml" "$manifest"
    wait_for_static_pod_healthy "$name"
  done
}

# Renews every certificate kubeadm manages on this node and restarts the static pods that read them.
# One renewal at a time on a node (the timer's and a `pulumi up`'s wait for each other).
renew_certificates() {
  install -d -m 0700 "$STATE_DIR"
  exec 8>"$STATE_DIR/cert-renewal.lock"
  flock -w 1800 8 || fail "another certificate renewal has held $STATE_DIR/cert-renewal.lock for 30 minutes"
  log "renewing the certificates kubeadm issued on this node"
  run_logged certs-renew kubeadm certs renew all
  restart_static_pods
  exec 8>&-
}

# Writes the expiry metric for the node exporter's textfile collector, atomically (a scrape never
# reads half a file); the collector runs as nobody, so the file is 0644. One series per certificate:
# certificate="kubeadm", the earliest kubeadm issued on this node ($1), then one for each line
# "<name> <date>" of $2 (external_etcd_certificate_expiries).
write_certificate_expiry_metric() {
  local tmp name date
  make_dir 0755 "$CERT_METRICS_DIR"
  tmp=$(mktemp "$CERT_METRICS_DIR/.kubeadm_ha_certificates.XXXXXX")
  {
    echo "# HELP kubeadm_ha_certificate_expiry_timestamp_seconds When a certificate this node uses or reports expires: certificate=\"kubeadm\" is the earliest kubeadm issued here; the others the program issued for external etcd."
    echo "# TYPE kubeadm_ha_certificate_expiry_timestamp_seconds gauge"
    echo "kubeadm_ha_certificate_expiry_timestamp_seconds{certificate=\"kubeadm\"} $(date -u -d "$1" +%s)"
    while read -r name date; do
      [ -n "$name" ] || continue
      echo "kubeadm_ha_certificate_expiry_timestamp_seconds{certificate=\"$name\"} $(date -u -d "$date" +%s)"
    done <<<"${2:-}"
  } >"$tmp"
  chmod 0644 "$tmp"
  mv "$tmp" "$CERT_METRICS_DIR/kubeadm_ha_certificates.prom"
}

# Reads the expiries once more and exports them as the metric; prints each external etcd
# certificate's, then, as the last line, the earliest kubeadm issued here,
# "certificates-expire-at: <ISO 8601 UTC>", for the caller (a step's output, the timer's journal).
# That line stays kubeadm's alone: it is what a renewal here can change (the stack reports the
# external etcd certificates from its state).
report_certificate_expiry() {
  local expiry external name date
  expiry=$(earliest_certificate_expiry) || exit 1
  external=$(external_etcd_certificate_expiries) || exit 1
  write_certificate_expiry_metric "$expiry" "$external"
  while read -r name date; do
    [ -z "$name" ] || log "$name (issued by pulumi up for external etcd, renewed only by pulumi up) expires at $date"
  done <<<"$external"
  printf 'certificates-expire-at: %s\n' "$expiry"
}

# The names of the objects of kind $1 (nodes, pods) matching the selector $2 whose Ready condition is
# not True; "(none listed)" when there are none at all, since a gate must not pass on an empty list.
not_ready() {
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=30s -n kube-system get "$1" -l "$2" \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    awk '$2 != "True" { printf "%s%s", sep, $1; sep = " " } END { if (NR == 0) print "(none listed)" }'
}

# The health a renewal starts from and must end in, each check polled for at most $1 seconds (0: as
# it is now), failing with the check named: the local API server ready; every control-plane Node
# Ready; every control-plane static pod Ready on every node (so a renewal never starts while another
# node restarts its components); with STACKED=true, every etcd member started, healthy and voting.
# Needs ADMIN_KUBECONFIG.
control_plane_gate() {
  local deadline=$((SECONDS + $1)) kind selector failing
  until local_api_ready; do
    [ "$SECONDS" -lt "$deadline" ] || fail "gate: the local API server is not ready (https://127.0.0.1:6443/readyz)"
    sleep 2
  done
  for kind in nodes pods; do
    if [ "$kind" = nodes ]; then selector="node-role.kubernetes.io/control-plane"; else selector="tier=control-plane"; fi
    while true; do
      failing=$(not_ready "$kind" "$selector") || failing="(the API does not list them)"
      [ -n "$failing" ] || break
      [ "$SECONDS" -lt "$deadline" ] || fail "gate: control-plane $kind not Ready: $failing"
      sleep 2
    done
  done
  if [ "${STACKED:-false}" = true ]; then
    ETCDCTL=etcdctl_in_pod
    # This node's etcd pod first: its name is the node's, the EC2 private DNS name (hostname -f).
    find_etcd_pod "${NODE_NAME:-$(hostname -f)}"
    local table
    while true; do
      table=$(current_member_table 2>/dev/null || true)
      if [ -n "$table" ] && ! grep -qvE '^[^ ]+ [^ -][^ ]* false true$' <<<"$table"; then
        break
      fi
      [ "$SECONDS" -lt "$deadline" ] || fail "gate: etcd members not all started, healthy and voting (id name learner healthy): $(tr '\n' ';' <<<"$table")"
      sleep 2
    done
  fi
}
