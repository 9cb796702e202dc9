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
