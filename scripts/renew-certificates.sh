#!/usr/bin/env bash
# kubeadm-ha certificate renewal on a control-plane node: the backstop behind `pulumi up`, which
# renews within its own, wider window. A daily timer (kubeadm-ha-cert-renewal.timer, at a different
# hour on each node, so no two nodes renew at once) runs it; rendered after common.sh, members.sh and
# certificates.sh (core/cert-renewal.ts).
#
#   kubeadm-ha-renew-certificates         renew when the earliest certificate expires within
#                                         RENEW_WINDOW_DAYS; otherwise only report
#   kubeadm-ha-renew-certificates now     renew whatever the expiry (by hand)
#   kubeadm-ha-renew-certificates check   only report: the metric and the expiry line
#
# A renewal is gated before and after: the local API server ready, every control-plane Node Ready
# and, with stacked etcd, every member healthy and voting. A failed gate stops it with the check named
# and the unit failed, so the journal and `systemctl --failed` say why.
# Settings (/etc/kubeadm-ha/cert-renewal.env; systemd passes it and a run by hand reads it):
#   RENEW_WINDOW_DAYS   how many days before the earliest expiry the timer renews
#   STACKED             true when etcd runs as a static pod on the control-plane nodes
set -euo pipefail
mode=${1:-due}

ENV_FILE=$ROOT/etc/kubeadm-ha/cert-renewal.env
if [ -z "${RENEW_WINDOW_DAYS:-}" ] && [ -r "$ENV_FILE" ]; then
  while IFS='=' read -r name value; do
    [[ "$name" =~ ^[A-Z][A-Z0-9_]*$ ]] && export "$name=$value"
  done <"$ENV_FILE"
fi
[[ "${RENEW_WINDOW_DAYS:-}" =~ ^[0-9]+$ ]] || fail "RENEW_WINDOW_DAYS is not a number of days (settings: $ENV_FILE)"
STACKED=${STACKED:-false}
case "$mode" in
  due | now | check) ;;
  *) fail "unknown mode $mode; allowed: due (default), now, check" ;;
esac

# A restart cut short (a crash, a reboot) left a component stopped: put it back before anything else.
restore_held_manifests

if [ -e "$KUBEADM_MARKER" ]; then
  log "kubeadm is setting this node up (marker $KUBEADM_MARKER); its certificates are new"
  exit 0
fi
is_member || fail "this node holds no finished control plane ($KUBERNETES_DIR); there is nothing to renew"

expiry=$(earliest_certificate_expiry)
if [ "$mode" = check ] || { [ "$mode" = due ] && ! expires_within "$expiry" "$RENEW_WINDOW_DAYS"; }; then
  [ "$mode" = check ] || log "the earliest certificate expires at $expiry, more than $RENEW_WINDOW_DAYS days away; nothing to renew"
  report_certificate_expiry
  exit 0
fi

log "the earliest certificate expires at $expiry; renewing (mode $mode, window $RENEW_WINDOW_DAYS days)"
ADMIN_KUBECONFIG=$(mint_admin_kubeconfig 127.0.0.1)
trap 'rm -f "$ADMIN_KUBECONFIG"' EXIT
# Before: as the cluster is now; a renewal never starts on a cluster that is already unwell.
control_plane_gate 0
renew_certificates
# After: the restarted components may take a while to be seen Ready and voting again.
control_plane_gate 600
log "certificates renewed and the control plane is healthy"
report_certificate_expiry
