# Installs the certificate-renewal backstop on a control-plane node: the program, its settings, and
# the daily timer at this node's own hour. Then reads the certificates' expiry once through the
# program, so a node where it cannot (no python3, kubeadm failing) fails the deployment instead of
# the day its certificates expire; its last line, "certificates-expire-at: <date>", is this step's too.
# Parameters: RENEWAL_PROGRAM, RENEWAL_ENV, RENEWAL_SERVICE, RENEWAL_TIMER (file contents).
: "${RENEWAL_PROGRAM:?}" "${RENEWAL_ENV:?}" "${RENEWAL_SERVICE:?}" "${RENEWAL_TIMER:?}"
PROGRAM=$ROOT/usr/local/sbin/kubeadm-ha-renew-certificates
UNIT_DIR=$ROOT/etc/systemd/system
install -d -m 0755 "$ROOT/etc/kubeadm-ha"
make_dir 0755 "$ROOT/usr/local/sbin" "$UNIT_DIR"
printf '%s\n' "$RENEWAL_PROGRAM" >"$PROGRAM"
chmod 0755 "$PROGRAM"
printf '%s\n' "$RENEWAL_ENV" >"$ROOT/etc/kubeadm-ha/cert-renewal.env"
printf '%s\n' "$RENEWAL_SERVICE" >"$UNIT_DIR/kubeadm-ha-cert-renewal.service"
printf '%s\n' "$RENEWAL_TIMER" >"$UNIT_DIR/kubeadm-ha-cert-renewal.timer"
chmod 0644 "$UNIT_DIR/kubeadm-ha-cert-renewal.service" "$UNIT_DIR/kubeadm-ha-cert-renewal.timer"
systemctl daemon-reload
systemctl enable --now kubeadm-ha-cert-renewal.timer >/dev/null 2>&1 || fail "could not enable kubeadm-ha-cert-renewal.timer"
if ! report=$("$PROGRAM" check 2>&1); then
  printf '%s\n' "$report" >&2
  fail "the certificate renewal program cannot read this node's certificates"
fi
log "certificate renewal: kubeadm-ha-cert-renewal.timer enabled"
printf '%s\n' "$report"
