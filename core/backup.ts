/**
 * etcd backups on every node that runs a member: an hourly systemd timer takes a snapshot of the
 * local member into BACKUP_DIR and keeps the newest N (three members in three zones keep every
 * snapshot three times); every interval, the member that leads etcd uploads a checked snapshot with
 * its SHA-256 to S3, off the nodes. A new stack can restore its etcd from such a snapshot. Pure
 * rendering of the settings, units and restore parameters; the program is scripts/etcd-backup.sh.
 */
import { createHash } from "node:crypto";
import { BackupInterval, S3Object, s3Url } from "./backup-settings";
import { EtcdMember, ETCD_NODE_PATHS, ETCD_RELEASE, ETCDUTL_RELEASES, initialCluster, peerUrl, renderEtcdReleases, RESTORE_REVISION_BUMP } from "./etcd";
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

/** Where the node exporter's textfile collector is pointed (see README): the upload's metrics. */
export const METRICS_DIR = "/var/lib/node_exporter/textfile_collector";

/** Off-node copies: the bucket and prefix one member uploads to every interval. */
export interface OffsiteBackup {
    bucket: string;
    /** snapshotPrefix(clusterName): "<cluster>/etcd", no trailing slash. */
    prefix: string;
    /** The bucket's region. */
    region: string;
    /** SSE-KMS with this key; undefined for SSE-S3. */
    kmsKeyArn?: string;
    interval: BackupInterval;
}

/** One member's upload settings: the shared ones and the name its snapshots carry. */
export interface OffsiteMember extends OffsiteBackup {
    memberName: string;
}

/** The backup program's settings, as a systemd EnvironmentFile. */
export function backupEnvironment(target: BackupTarget, retention: number, backupDir = BACKUP_DIR, offsite?: OffsiteMember): Record<string, string> {
    return {
        ETCD_ACCESS: target.mode,
        ETCD_ENDPOINT: target.endpoint,
        ETCD_CACERT: target.cacert,
        ETCD_CERT: target.cert,
        ETCD_KEY: target.key,
        BACKUP_DIR: backupDir,
        RETENTION: String(retention),
        ...(offsite
            ? {
                  MEMBER_NAME: offsite.memberName,
                  S3_BUCKET: offsite.bucket,
                  S3_PREFIX: offsite.prefix,
                  S3_REGION: offsite.region,
                  ...(offsite.kmsKeyArn ? { S3_KMS_KEY_ID: offsite.kmsKeyArn } : {}),
                  BACKUP_INTERVAL_SECONDS: String(offsite.interval.seconds),
                  METRICS_DIR,
              }
            : {}),
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

/** A oneshot run of the backup program in `mode` that needs the network (S3, IMDS). */
function networkedBackupService(description: string, mode: string): string {
    return [
        "[Unit]",
        `Description=${description}`,
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        "EnvironmentFile=/etc/kubeadm-ha/etcd-backup.env",
        `ExecStart=/usr/local/sbin/kubeadm-ha-etcd-backup ${mode}`,
        // A hung upload must not block the next slot (or a step) forever; curl gives up after 30 minutes too.
        "TimeoutStartSec=40min",
        "",
    ].join("\n");
}

/** Every interval on every member; the program acts only where the member leads etcd. */
export const UPLOAD_SERVICE = networkedBackupService("kubeadm-ha etcd snapshot upload to S3 (the etcd leader uploads)", "upload");

/** Wall-clock slots, the same on every member, so the leader of that moment is the one that acts. */
export function uploadTimer(interval: BackupInterval): string {
    return [
        "[Unit]",
        `Description=kubeadm-ha etcd snapshot upload every ${interval.text}`,
        "",
        "[Timer]",
        `OnCalendar=${interval.onCalendar}`,
        "AccuracySec=1s",
        // A slot missed while the node was down runs at boot.
        "Persistent=true",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ].join("\n");
}

/**
 * "Snapshot now": one snapshot from this member, whoever leads, uploaded. A unit of its own, so a step
 * before a risky change, the install's first upload and an operator all run it with the unit's
 * settings and leave its output in the journal; `systemctl start` of a oneshot unit waits for it and
 * fails when it fails.
 */
export const SNAPSHOT_NOW_SERVICE = networkedBackupService("kubeadm-ha etcd snapshot uploaded to S3 now (before a risky change)", "now");

export const ETCD_SNAPSHOT_NOW_COMMAND = "systemctl start kubeadm-ha-etcd-snapshot-now.service";

/**
 * The cluster token of a restored cluster: new (a restored cluster must not be mistaken for the one its
 * snapshot came from), the same on every member, and the same on every run of the program.
 */
export function restoreClusterToken(clusterName: string, source: S3Object): string {
    return `${clusterName}-restored-${restoreId(source)}`;
}

/** A short, stable name for one restore: the same snapshot gives the same id on every run. */
export function restoreId(source: S3Object): string {
    return createHash("sha256").update(s3Url(source)).digest("hex").slice(0, 12);
}

export interface RestoreArgs {
    source: S3Object;
    /** The source bucket's region. */
    region: string;
    /** The member restored on this node. */
    member: EtcdMember;
    /**
     * The members of the restored cluster. External etcd: every member, each restored from the same
     * snapshot. Stacked etcd: the first control-plane node alone (kubeadm init then runs against its
     * data; each join adds a member that copies it from the leader).
     */
    members: readonly EtcdMember[];
    clusterToken: string;
    topology: "stacked" | "external";
}

/**
 * The etcd a restored cluster runs, whose etcdutl restores its snapshot: "kubeadm" for stacked etcd
 * (the etcd image the node's kubeadm runs, asked of it on the node: `kubeadm config images list`),
 * else the release the external members were prepared with.
 */
export function restoredClusterEtcd(topology: RestoreArgs["topology"]): string {
    return topology === "external" ? ETCD_RELEASE.version : "kubeadm";
}

/** The parameters of the etcd-restore step for one member. */
export function etcdRestoreParams(args: RestoreArgs): Record<string, string> {
    if (!args.members.some((m) => m.name === args.member.name)) throw new Error(`${args.member.name} is not among the restored members`);
    const external = args.topology === "external";
    return {
        RESTORE_BUCKET: args.source.bucket,
        RESTORE_KEY: args.source.key,
        RESTORE_REGION: args.region,
        MEMBER_NAME: args.member.name,
        MEMBER_PEER_URL: peerUrl(args.member),
        INITIAL_CLUSTER: initialCluster(args.members),
        CLUSTER_TOKEN: args.clusterToken,
        DATA_DIR: ETCD_NODE_PATHS.dataDir,
        // kubeadm's etcd pod runs as root; an external member as the etcd user.
        DATA_OWNER: external ? "etcd:etcd" : "root:root",
        CLUSTER_ENV_FILE: external ? "/etc/etcd/cluster.env" : "",
        // The restore refuses a snapshot whose etcd minor is not the cluster's, and restores with that
        // minor's etcdutl: the cluster's own, else one of these, checksum verified.
        CLUSTER_ETCD: restoredClusterEtcd(args.topology),
        ETCDUTL_RELEASES: renderEtcdReleases(ETCDUTL_RELEASES),
        REVISION_BUMP: String(RESTORE_REVISION_BUMP),
    };
}
