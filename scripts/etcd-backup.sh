#!/usr/bin/env bash
# kubeadm-ha etcd backup: one snapshot of the local etcd member, kept with the newest RETENTION
# others in BACKUP_DIR. Run hourly by kubeadm-ha-etcd-backup.timer; safe to run by hand.
# Settings (environment, from /etc/kubeadm-ha/etcd-backup.env on the nodes):
#   ETCD_ENDPOINT, ETCD_CACERT, ETCD_CERT, ETCD_KEY  the member and a client identity
#   BACKUP_DIR, RETENTION                            where, and how many snapshots to keep
#   ETCD_ACCESS   "binary" runs etcdctl on the host (external members), "container" runs it inside
#                  kubeadm's etcd static pod, whose data directory is shared with the host (stacked)
set -euo pipefail
: "${ETCD_ENDPOINT:?}" "${ETCD_CACERT:?}" "${ETCD_CERT:?}" "${ETCD_KEY:?}" "${BACKUP_DIR:?}" "${RETENTION:?}"
ETCD_ACCESS=${ETCD_ACCESS:-binary}
ETCD_CLIENT_BIN=${ETCD_CLIENT_BIN:-/usr/local/bin/etcdctl}
STACKED_DATA_DIR=${STACKED_DATA_DIR:-/var/lib/etcd}

umask 077
install -d -m 0700 "$BACKUP_DIR"
name="etcd-$(hostname -s)-$(date -u +%Y%m%dT%H%M%SZ).db"
flags=(--endpoints="$ETCD_ENDPOINT" --cacert="$ETCD_CACERT" --cert="$ETCD_CERT" --key="$ETCD_KEY" --command-timeout=120s)

case "$ETCD_ACCESS" in
  binary)
    ETCDCTL_API=3 "$ETCD_CLIENT_BIN" "${flags[@]}" snapshot save "$BACKUP_DIR/.$name.partial" >/dev/null
    ;;
  container)
    id=$(crictl --runtime-endpoint unix:///run/containerd/containerd.sock ps --name '^etcd$' --state running -q | head -n 1)
    [ -n "$id" ] || { echo "no running etcd container" >&2; exit 1; }
    # Written inside the pod's data directory, which is the host's, then moved out of it.
    crictl --runtime-endpoint unix:///run/containerd/containerd.sock exec "$id" \
      etcdctl "${flags[@]}" snapshot save "$STACKED_DATA_DIR/kubeadm-ha-snapshot.db" >/dev/null
    mv "$STACKED_DATA_DIR/kubeadm-ha-snapshot.db" "$BACKUP_DIR/.$name.partial"
    ;;
  *)
    echo "unknown ETCD_ACCESS $ETCD_ACCESS" >&2
    exit 1
    ;;
esac
[ -s "$BACKUP_DIR/.$name.partial" ] || { echo "etcd returned an empty snapshot" >&2; exit 1; }
mv "$BACKUP_DIR/.$name.partial" "$BACKUP_DIR/$name"

# Keep the newest RETENTION snapshots (names sort by time).
mapfile -t old < <(find "$BACKUP_DIR" -maxdepth 1 -name 'etcd-*.db' -printf '%f\n' | sort -r | tail -n +"$((RETENTION + 1))")
for f in "${old[@]}"; do rm -f "$BACKUP_DIR/$f"; done
echo "etcd snapshot $BACKUP_DIR/$name ($(stat -c %s "$BACKUP_DIR/$name") bytes); keeping $RETENTION"
