# Installs etcd backups on a node that runs an etcd member: the hourly local snapshot, and with S3 the
# upload timer on which the etcd leader uploads every interval. Takes the first snapshot now, and
# uploads one from this member, so a broken backup (no role, no bucket, a bad key) fails the
# deployment instead of the day it is needed.
# Parameters: BACKUP_PROGRAM, BACKUP_ENV, BACKUP_SERVICE, BACKUP_TIMER (file contents); UPLOAD_SERVICE,
# UPLOAD_TIMER and SNAPSHOT_NOW_SERVICE (empty: no uploads).
: "${BACKUP_PROGRAM:?}" "${BACKUP_ENV:?}" "${BACKUP_SERVICE:?}" "${BACKUP_TIMER:?}"
UPLOAD_SERVICE=${UPLOAD_SERVICE:-}
UPLOAD_TIMER=${UPLOAD_TIMER:-}
SNAPSHOT_NOW_SERVICE=${SNAPSHOT_NOW_SERVICE:-}
UNIT_DIR=$ROOT/etc/systemd/system
install -d -m 0755 "$ROOT/etc/kubeadm-ha"
make_dir 0755 "$ROOT/usr/local/sbin" "$UNIT_DIR"
printf '%s\n' "$BACKUP_PROGRAM" >"$ROOT/usr/local/sbin/kubeadm-ha-etcd-backup"
chmod 0755 "$ROOT/usr/local/sbin/kubeadm-ha-etcd-backup"
printf '%s\n' "$BACKUP_ENV" >"$ROOT/etc/kubeadm-ha/etcd-backup.env"
printf '%s\n' "$BACKUP_SERVICE" >"$UNIT_DIR/kubeadm-ha-etcd-backup.service"
printf '%s\n' "$BACKUP_TIMER" >"$UNIT_DIR/kubeadm-ha-etcd-backup.timer"
chmod 0644 "$UNIT_DIR/kubeadm-ha-etcd-backup.service" "$UNIT_DIR/kubeadm-ha-etcd-backup.timer"
if [ -n "$UPLOAD_SERVICE" ]; then
  printf '%s\n' "$UPLOAD_SERVICE" >"$UNIT_DIR/kubeadm-ha-etcd-upload.service"
  printf '%s\n' "$UPLOAD_TIMER" >"$UNIT_DIR/kubeadm-ha-etcd-upload.timer"
  printf '%s\n' "$SNAPSHOT_NOW_SERVICE" >"$UNIT_DIR/kubeadm-ha-etcd-snapshot-now.service"
  chmod 0644 "$UNIT_DIR/kubeadm-ha-etcd-upload.service" "$UNIT_DIR/kubeadm-ha-etcd-upload.timer" "$UNIT_DIR/kubeadm-ha-etcd-snapshot-now.service"
elif [ -f "$UNIT_DIR/kubeadm-ha-etcd-upload.timer" ]; then
  systemctl disable --now kubeadm-ha-etcd-upload.timer >/dev/null 2>&1 || true
fi
systemctl daemon-reload
systemctl enable --now kubeadm-ha-etcd-backup.timer >/dev/null 2>&1
if ! systemctl start kubeadm-ha-etcd-backup.service; then
  journalctl -u kubeadm-ha-etcd-backup.service -n 20 --no-pager >&2 || true
  fail "the first etcd backup failed"
fi
log "etcd backups: $(journalctl -u kubeadm-ha-etcd-backup.service -n 1 -o cat --no-pager 2>/dev/null || echo installed)"
if [ -n "$UPLOAD_SERVICE" ]; then
  systemctl enable --now kubeadm-ha-etcd-upload.timer >/dev/null 2>&1
  # Through its unit, as every "snapshot now" runs: the unit's settings, and its journal to read.
  start_snapshot_now || fail "the first etcd snapshot upload failed for 3 minutes"
  log "etcd uploads: $(journalctl -u kubeadm-ha-etcd-snapshot-now.service -n 1 -o cat --no-pager 2>/dev/null || echo enabled)"
fi
