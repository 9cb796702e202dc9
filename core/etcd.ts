/**
 * External etcd: the release the members run, and the flags of each member's server. Pure, so the
 * program renders the systemd unit from it and the tests boot real etcd members from the same flags.
 */
import { PORTS } from "./plan";

/**
 * The etcd release installed on external members, verified against these SHA-256 sums of the
 * official tarballs (etcd-v<version>-linux-<arch>.tar.gz on the etcd-io/etcd GitHub release), as
 * pinned by kubespray (roles/kubespray_defaults/vars/main/checksums.yml, commit 118b2dce), which pairs
 * Kubernetes 1.33 and 1.34 with etcd 3.5.
 */
export const ETCD_RELEASE = {
    version: "3.5.25",
    sha256: {
        amd64: "168af82b59772e1811a9af7b358d42f5c6df44e0d9767afb006ecf12c4bbd607",
        arm64: "419dce0b679df31cc45201ef2449b7a6a48e9d241af01741957c9ac86a35badc",
    },
} as const;

/** One etcd release's official tarballs: etcd-v<version>-linux-<arch>.tar.gz and their SHA-256 sums. */
export interface EtcdRelease {
    version: string;
    sha256: { amd64: string; arm64: string };
}

/**
 * The etcdutl a restore falls back to, one release per etcd minor, where the etcd the restored
 * cluster runs brings no etcdutl of its own. etcd restores a snapshot only with the etcdutl of the
 * major.minor that wrote it (the Kubernetes etcd guide: "etcd supports restoring from snapshots that
 * are taken from an etcd process of the major.minor version"; another patch of that minor is fine),
 * so the restore never uses one of another minor. A stacked cluster's own etcdutl is the one in the
 * etcd image its kubeadm runs (registry.k8s.io/etcd, the exact release, pulled as kubeadm pulls it);
 * the images Kubernetes built before it promoted etcd's own (kubernetes/k8s.io#8596) carry etcd and
 * etcdctl only, and those are what the tarballs here are for. External members have theirs
 * (ETCD_RELEASE). SHA-256 sums as pinned by kubespray (roles/kubespray_defaults/vars/main/checksums.yml,
 * commit 46dbdd39); etcd 3.7 has none pinned there yet, and its images carry etcdutl.
 */
export const ETCDUTL_RELEASES: readonly EtcdRelease[] = [
    ETCD_RELEASE,
    {
        version: "3.6.14",
        sha256: {
            amd64: "ffe840ff9295808e88cce2794a18a5ac87f12a5203c8314d0bf6aa119b41bac5",
            arm64: "fa1b80565ee6fc2df1ae6f57a508b221f3ecc7d591c317c581cd8281b0842b3e",
        },
    },
];

/**
 * How far a restore moves etcd's revision past the snapshot's (etcdutl snapshot restore
 * --bump-revision, with --mark-compacted): further than every write the lost cluster made after the
 * snapshot, so no revision a client saw is ever reused and every watcher and informer that survives
 * the restore is told its revision is compacted and lists again, instead of resuming at a revision
 * that now means other data (etcd-io/etcd#16028). One billion, the figure etcd's recovery guide gives:
 * it covers a week-old snapshot at up to 1,500 writes a second (1,500 × 604,800 ≈ 907 million), far
 * more than a control plane writes, and leaves the 64-bit revision counter all its range.
 */
export const RESTORE_REVISION_BUMP = 1_000_000_000;

/** One line per release, "<version> <sha256 amd64> <sha256 arm64>", as the restore reads them. */
export function renderEtcdReleases(releases: readonly EtcdRelease[]): string {
    return releases.map((r) => `${r.version} ${r.sha256.amd64} ${r.sha256.arm64}`).join("\n");
}

/** Where the member keeps its state and certificates. */
export interface EtcdPaths {
    dataDir: string;
    pkiDir: string;
}

export const ETCD_NODE_PATHS: EtcdPaths = { dataDir: "/var/lib/etcd", pkiDir: "/etc/etcd/pki" };

export interface EtcdMember {
    name: string;
    ip: string;
}

export const peerUrl = (m: EtcdMember) => `https://${m.ip}:${PORTS.etcdPeer}`;
export const clientUrl = (m: EtcdMember) => `https://${m.ip}:${PORTS.etcdClient}`;

/** etcd's --initial-cluster: every member's name and peer URL. */
export function initialCluster(members: readonly EtcdMember[]): string {
    return members.map((m) => `${m.name}=${peerUrl(m)}`).join(",");
}

/**
 * The static flags of one member: mutual TLS for clients (2379) and peers (2380), each checked
 * against the etcd CA. The bootstrap flags (--initial-cluster, --initial-cluster-state) are not here:
 * the member's start script decides them (a new cluster, or joining a live one as a replacement) and
 * passes them as ETCD_INITIAL_CLUSTER / ETCD_INITIAL_CLUSTER_STATE.
 */
export function etcdFlags(member: EtcdMember, clusterToken: string, paths: EtcdPaths = ETCD_NODE_PATHS): string[] {
    const pki = paths.pkiDir;
    return [
        `--name=${member.name}`,
        `--data-dir=${paths.dataDir}`,
        `--listen-client-urls=${clientUrl(member)}`,
        `--advertise-client-urls=${clientUrl(member)}`,
        `--listen-peer-urls=${peerUrl(member)}`,
        `--initial-advertise-peer-urls=${peerUrl(member)}`,
        `--initial-cluster-token=${clusterToken}`,
        "--client-cert-auth=true",
        `--trusted-ca-file=${pki}/ca.crt`,
        `--cert-file=${pki}/server.crt`,
        `--key-file=${pki}/server.key`,
        "--peer-client-cert-auth=true",
        `--peer-trusted-ca-file=${pki}/ca.crt`,
        `--peer-cert-file=${pki}/peer.crt`,
        `--peer-key-file=${pki}/peer.key`,
    ];
}

/** The member's systemd unit. */
export function renderEtcdUnit(flags: readonly string[]): string {
    return [
        "[Unit]",
        "Description=etcd member (kubeadm-ha external etcd)",
        "Documentation=https://etcd.io/docs/",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=notify",
        "User=etcd",
        "EnvironmentFile=/etc/etcd/cluster.env",
        `ExecStart=/usr/local/bin/etcd ${flags.join(" \\\n  ")}`,
        "Restart=always",
        "RestartSec=5s",
        "LimitNOFILE=65536",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}
