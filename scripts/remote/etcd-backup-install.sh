# Installs the hourly etcd backup on a node that runs an etcd member, and takes the first snapshot
# now, so a broken backup fails the deployment instead of the day it is needed.
# Parameters: BACKUP_PROGRAM, BACKUP_ENV, BACKUP_SERVICE, BACKUP_TIMER (file contents).
: "${BACKUP_PROGRAM:?}" "${BACKUP_ENV:?}" "${BACKUP_SERVICE:?}" "${BACKUP_TIMER:?}"
install -d -m 0755 /etc/kubeadm-ha
printf '%s\n' "$BACKUP_PROGRAM" >/usr/local/sbin/kubeadm-ha-etcd-backup
chmod 0755 /usr/local/sbin/kubeadm-ha-etcd-backup
printf '%s\n' "$BACKUP_ENV" >/etc/kubeadm-ha/etcd-backup.env
printf '%s\n' "$BACKUP_SERVICE" >/etc/systemd/system/kubeadm-ha-etcd-backup.service
printf '%s\n' "$BACKUP_TIMER" >/etc/systemd/system/kubeadm-ha-etcd-backup.timer
chmod 0644 /etc/systemd/system/kubeadm-ha-etcd-backup.service /etc/systemd/system/kubeadm-ha-etcd-backup.timer
systemctl daemon-reload
systemctl enable --now kubeadm-ha-etcd-backup.timer >/dev/null 2>&1
if ! systemctl start kubeadm-ha-etcd-backup.service; then
  journalctl -u kubeadm-ha-etcd-backup.service -n 20 --no-pager >&2 || true
  fail "the first etcd backup failed"
fi
log "etcd backups: $(journalctl -u kubeadm-ha-etcd-backup.service -n 1 -o cat --no-pager 2>/dev/null || echo installed)"
