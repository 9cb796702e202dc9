# Installs the certificate-renewal backstop on a control-plane node: the program, its settings, and
# the daily timer at this node's own hour. Then reads the certificates' expiry once through the
# program, so a node where it cannot (no python3, kubeadm failing) fails the deployment instead of
# the day its certificates expire; its last line, "certificates-expire-at: <date>", is this step's too.
# Parameters: RENEWAL_PROGRAM, RENEWAL_ENV, RENEWAL_SERVICE, RENEWAL_TIMER (file contents);
# ETCD_CERTIFICATES, external etcd's members' certificates (no keys) for the expiry metric, one
# "<mode> <name>.crt <base64>" line each (empty with stacked etcd): they replace the directory's
# whole content, so a replaced member's old certificate is not reported.
: "${RENEWAL_PROGRAM:?}" "${RENEWAL_ENV:?}" "${RENEWAL_SERVICE:?}" "${RENEWAL_TIMER:?}"
PROGRAM=$ROOT/usr/local/sbin/kubeadm-ha-renew-certificates
UNIT_DIR=$ROOT/etc/systemd/system
CERTS_DIR=$ROOT/etc/kubeadm-ha/etcd-certificates
install -d -m 0755 "$ROOT/etc/kubeadm-ha"
make_dir 0755 "$ROOT/usr/local/sbin" "$UNIT_DIR"
rm -rf "$CERTS_DIR.new"
install -d -m 0755 "$CERTS_DIR.new"
while read -r mode path data; do
  [ -n "${mode:-}" ] || continue
  [[ "$mode" = 0644 && "$path" =~ ^[a-z0-9][a-z0-9-]*\.crt$ ]] || fail "refusing certificate '$path' (mode $mode)"
  printf '%s' "$data" | base64 -d >"$CERTS_DIR.new/$path"
  chmod 0644 "$CERTS_DIR.new/$path"
done <<<"${ETCD_CERTIFICATES:-}"
rm -rf "$CERTS_DIR"
mv "$CERTS_DIR.new" "$CERTS_DIR"
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
