# One etcd snapshot of the live cluster uploaded to S3 before a change of its membership, from a node
# that holds no member yet (a control-plane node about to join, an external member about to replace a
# lost one), taken through the live member at $1 (its client URL on 2379). It runs through the same
# snapshot-now unit as every "snapshot now", with settings that reach that member; the backup step
# installs the node's own settings later. The change does not start when the upload fails.
# Parameters: BACKUP_PROGRAM, PEER_BACKUP_ENV (the backup settings but ETCD_ENDPOINT), SNAPSHOT_NOW_SERVICE;
# all empty when backups are off.
snapshot_through_peer() {
  if [ -z "${BACKUP_PROGRAM:-}" ]; then
    log "no etcd snapshot before $2: backups are off (etcdBackupRetention 0)"
    return 0
  fi
  install -d -m 0755 "$ROOT/etc/kubeadm-ha"
  make_dir 0755 "$ROOT/usr/local/sbin" "$ROOT/etc/systemd/system"
  printf '%s\n' "$BACKUP_PROGRAM" >"$ROOT/usr/local/sbin/kubeadm-ha-etcd-backup"
  chmod 0755 "$ROOT/usr/local/sbin/kubeadm-ha-etcd-backup"
  printf '%s\nETCD_ENDPOINT=https://%s:2379\n' "$PEER_BACKUP_ENV" "$1" >"$ROOT/etc/kubeadm-ha/etcd-backup.env"
  printf '%s\n' "$SNAPSHOT_NOW_SERVICE" >"$ROOT/etc/systemd/system/kubeadm-ha-etcd-snapshot-now.service"
  chmod 0644 "$ROOT/etc/systemd/system/kubeadm-ha-etcd-snapshot-now.service"
  systemctl daemon-reload
  log "uploading an etcd snapshot through the member at $1 before $2"
  start_snapshot_now || fail "the etcd snapshot before $2 could not be uploaded (journalctl -u kubeadm-ha-etcd-snapshot-now); nothing was changed"
  # shellcheck disable=SC2034 # read by snapshot_before (common.sh): one snapshot per step
  SNAPSHOT_TAKEN=1
}
