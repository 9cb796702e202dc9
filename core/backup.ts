/**
 * etcd backups on every node that runs a member: an hourly systemd timer takes a snapshot of the
 * local member into BACKUP_DIR and keeps the newest N. With three members in three zones, every
 * snapshot exists three times. Pure rendering of the settings and units; the program is
 * scripts/etcd-backup.sh.
 */
import { ETCD_NODE_PATHS } from "./etcd";
import { PKI_DIR } from "./kubeadm";
import { PORTS } from "./plan";

export const BACKUP_DIR = "/var/backups/kubeadm-ha/etcd";

export interface BackupTarget {
    /** "container": etcdctl inside kubeadm's etcd static pod (stacked); "binary": the host's etcdctl (external). */
    mode: "container" | "binary";
    endpoint: string;
    cacert: string;
    cert: string;
    key: string;
}

/** Stacked etcd: the local member through loopback, with kubeadm's healthcheck-client identity. */
export const STACKED_BACKUP_TARGET: BackupTarget = {
    mode: "container",
    endpoint: `https://127.0.0.1:${PORTS.etcdClient}`,
    cacert: `${PKI_DIR}/etcd/ca.crt`,
    cert: `${PKI_DIR}/etcd/healthcheck-client.crt`,
    key: `${PKI_DIR}/etcd/healthcheck-client.key`,
};

/** An external member: its own client URL, with the members' healthcheck-client identity. */
export function externalBackupTarget(memberIp: string): BackupTarget {
    const pki = ETCD_NODE_PATHS.pkiDir;
    return {
        mode: "binary",
        endpoint: `https://${memberIp}:${PORTS.etcdClient}`,
        cacert: `${pki}/ca.crt`,
        cert: `${pki}/healthcheck-client.crt`,
        key: `${pki}/healthcheck-client.key`,
    };
}

/** The backup program's settings, as a systemd EnvironmentFile. */
export function backupEnvironment(target: BackupTarget, retention: number, backupDir = BACKUP_DIR): Record<string, string> {
    return {
        ETCD_ACCESS: target.mode,
        ETCD_ENDPOINT: target.endpoint,
        ETCD_CACERT: target.cacert,
        ETCD_CERT: target.cert,
        ETCD_KEY: target.key,
        BACKUP_DIR: backupDir,
        RETENTION: String(retention),
    };
}

export function renderEnvironmentFile(env: Record<string, string>): string {
    return Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n");
}

export const BACKUP_SERVICE = [
    "[Unit]",
    "Description=kubeadm-ha etcd snapshot",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    "EnvironmentFile=/etc/kubeadm-ha/etcd-backup.env",
    "ExecStart=/usr/local/sbin/kubeadm-ha-etcd-backup",
    "",
].join("\n");

export const BACKUP_TIMER = [
    "[Unit]",
    "Description=Hourly kubeadm-ha etcd snapshot",
    "",
    "[Timer]",
    "OnCalendar=hourly",
    // Spread the members' snapshots so they do not all load etcd at once.
    "RandomizedDelaySec=10min",
    "Persistent=true",
    "",
    "[Install]",
    "WantedBy=timers.target",
    "",
].join("\n");
