import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { clientUrl, EtcdMember, etcdFlags, ETCD_NODE_PATHS, initialCluster, renderEtcdUnit } from "../core/etcd";
import { APISERVER_ETCD_CLIENT_SPEC, ETCD_HEALTHCHECK_CLIENT_SPEC, etcdMemberCertSpec, renderPkiBundle } from "../core/pki";
import { NodePlan } from "../core/plan";
import { etcdRestoreParams, externalBackupTarget, OffsiteBackup, restoreClusterToken } from "../core/backup";
import { S3Object } from "../core/backup-settings";
import { ETCD_BACKUP_REMOVE, peerSnapshotParams, renderEtcdBackupInstall, renderEtcdRestore, renderRemoteCommand } from "../core/scripts";
import { launchNodes, NodeLaunchArgs, PlannedInstance } from "./node";
import { IssuedCertificate } from "../core/cert-renewal";
import { ClusterPki, KeyPairPem } from "./pki";
import { pkiFile, prepareNode, remoteStep, SshAccess, StepTarget } from "./remote-step";

export interface EtcdClusterArgs {
    clusterName: string;
    nodes: NodePlan[];
    launch: NodeLaunchArgs;
    pki: ClusterPki;
    ssh: SshAccess;
    /** Hourly snapshots kept on each member's node; 0 for no backups at all. */
    backupRetention: number;
    /** Where the etcd leader uploads a snapshot every interval. */
    offsite: pulumi.Output<OffsiteBackup>;
    /** The snapshot every member of a new cluster is restored from before it first starts (etcdRestoreFrom). */
    restoreFrom?: { source: S3Object; region: string };
}

/** Member certificates live under /etc/etcd, readable by the etcd user only. */
const ETCD_PKI = { PKI_DIR: ETCD_NODE_PATHS.pkiDir, STAGED_PKI_DIR: "/etc/kubeadm-ha/etcd-pki", PKI_OWNER: "etcd:etcd" };

/**
 * External etcd on its own instances, spread over the zones like the control plane: each member gets
 * a server and a peer certificate from the etcd CA, its systemd unit and a start step; members start
 * in parallel, and a health gate on the first member passes only when every member answers healthy
 * over TLS. kubeadm init waits for the gate.
 */
export class EtcdCluster extends pulumi.ComponentResource {
    readonly members: PlannedInstance[];
    /** https://<member>:2379, in member order. */
    readonly endpoints: pulumi.Output<string[]>;
    /** The API servers' client certificate (kubeadm's apiserver-etcd-client). */
    readonly apiServerClient: KeyPairPem;
    /**
     * The certificates (no keys) the members use: each one's server and peer certificate, and the
     * members' healthcheck client, named as the control-plane nodes' expiry metric names them.
     */
    readonly certificates: pulumi.Output<IssuedCertificate[]>;
    readonly healthGate: command.remote.Command;

    constructor(name: string, args: EtcdClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-ha:etcd:EtcdCluster", name, {}, opts);
        const { pki } = args;
        const clusterToken = `${args.clusterName}-etcd`;

        this.members = launchNodes("etcd", args.nodes, args.launch, this);
        const identities: pulumi.Output<EtcdMember & { hostname: string }>[] = this.members.map(({ plan, instance }) =>
            pulumi.all([instance.privateIp, instance.privateDns]).apply(([ip, hostname]) => ({ name: plan.name, ip, hostname })),
        );
        const all = pulumi.all(identities);
        this.endpoints = all.apply((members) => members.map(clientUrl));
        this.apiServerClient = pki.issue(`${name}-apiserver-etcd-client`, "etcd", pulumi.output(APISERVER_ETCD_CLIENT_SPEC));
        const healthcheck = pki.issue(`${name}-etcd-healthcheck-client`, "etcd", pulumi.output(ETCD_HEALTHCHECK_CLIENT_SPEC));

        const started: { target: StepTarget; step: command.remote.Command }[] = [];
        const restoreSteps: command.remote.Command[] = [];
        const issued: pulumi.Output<IssuedCertificate>[] = [healthcheck.certPem.apply((certPem) => ({ name: "etcd-healthcheck-client", certPem }))];
        const members = this.members.map(({ plan, instance, address }, i) => {
            const { prepared, target } = prepareNode(`${plan.name}-prepared`, { instance, host: address, ssh: args.ssh }, { parent: this });
            const identity = identities[i];
            const server = pki.issue(
                `${plan.name}-server`,
                "etcd",
                identity.apply((m) => etcdMemberCertSpec("server", m)),
            );
            const peer = pki.issue(
                `${plan.name}-peer`,
                "etcd",
                identity.apply((m) => etcdMemberCertSpec("peer", m)),
            );
            issued.push(
                server.certPem.apply((certPem) => ({ name: `${plan.name}-server`, certPem })),
                peer.certPem.apply((certPem) => ({ name: `${plan.name}-peer`, certPem })),
            );
            const bundle = pulumi
                .all([
                    pkiFile("ca.crt", pki.cas.etcd.certPem, "0644"),
                    pkiFile("server.crt", server.certPem, "0644"),
                    pkiFile("server.key", server.keyPem, "0600"),
                    pkiFile("peer.crt", peer.certPem, "0644"),
                    pkiFile("peer.key", peer.keyPem, "0600"),
                    pkiFile("healthcheck-client.crt", healthcheck.certPem, "0644"),
                    pkiFile("healthcheck-client.key", healthcheck.keyPem, "0600"),
                ])
                .apply(renderPkiBundle);

            const placed = remoteStep(
                `${plan.name}-pki`,
                target,
                {
                    create: renderRemoteCommand("place-pki", ETCD_PKI),
                    stdin: pulumi.secret(bundle),
                },
                { parent: this, dependsOn: [prepared] },
            );
            return { plan, target, identity, placed, prepared };
        });
        this.certificates = pulumi.all(issued);
        const restore = args.restoreFrom;
        if (restore) {
            members.forEach(({ plan, target, identity, placed }) => {
                // Every member from the same snapshot, where no other member answers (scripts/remote/etcd-restore.sh);
                // after every member is prepared, so the others refuse at once instead of timing out.
                restoreSteps.push(
                    remoteStep(
                        `${plan.name}-etcd-restore`,
                        target,
                        {
                            create: pulumi.all([identity, all]).apply(([me, everyone]) =>
                                renderEtcdRestore({
                                    ...ETCD_PKI,
                                    ...etcdRestoreParams({
                                        ...restore,
                                        member: me,
                                        members: everyone,
                                        clusterToken: restoreClusterToken(args.clusterName, restore.source),
                                        topology: "external",
                                    }),
                                    ETCD_PEERS: everyone
                                        .filter((m) => m.name !== me.name)
                                        .map((m) => m.ip)
                                        .join(" "),
                                }),
                            ),
                        },
                        { parent: this, dependsOn: [placed, ...members.map((m) => m.prepared)] },
                    ),
                );
            });
        }
        members.forEach(({ plan, target, identity, placed }, i) => {
            const params = pulumi.all([identity, all, args.offsite]).apply(([me, members, offsite]) => ({
                ...ETCD_PKI,
                // A snapshot through a live member before this one is added to the cluster (a replacement).
                ...peerSnapshotParams(externalBackupTarget(me.ip), args.backupRetention, { ...offsite, memberName: me.name }),
                MEMBER_NAME: me.name,
                MEMBER_IP: me.ip,
                INITIAL_CLUSTER: initialCluster(members),
                PEER_IPS: members
                    .filter((m) => m.name !== me.name)
                    .map((m) => m.ip)
                    .join(" "),
                ETCD_UNIT: renderEtcdUnit(etcdFlags(me, clusterToken)),
            }));
            // One member at a time: a replacement's remove-and-add never overlaps another's.
            const start = params.apply((p) => renderRemoteCommand("etcd-member", p));
            started.push({
                target,
                step: remoteStep(
                    `${plan.name}-start`,
                    target,
                    { create: start, update: start },
                    // After every restore: a started member answers, and the next restore would then not run.
                    { parent: this, dependsOn: [placed, ...restoreSteps, ...(i > 0 ? [started[i - 1].step] : [])] },
                ),
            });
        });

        const first = started[0];
        this.healthGate = remoteStep(
            `${name}-etcd-healthy`,
            first.target,
            {
                // Runs again whenever any member is replaced.
                triggers: this.members.map((m) => m.instance.id),
                create: identities[0].apply((m) =>
                    renderRemoteCommand("etcd-health", { ...ETCD_PKI, MEMBER_IP: m.ip, EXPECTED_MEMBERS: String(this.members.length) }),
                ),
            },
            { parent: this, dependsOn: started.map((s) => s.step) },
        );

        // Turning backups off is an update of the same step, never a delete command.
        started.forEach(({ target }, i) => {
            const install = pulumi
                .all([identities[i], args.offsite])
                .apply(([m, offsite]) =>
                    args.backupRetention > 0
                        ? renderEtcdBackupInstall(externalBackupTarget(m.ip), args.backupRetention, { ...offsite, memberName: m.name })
                        : ETCD_BACKUP_REMOVE,
                );
            remoteStep(
                `${this.members[i].plan.name}-etcd-backup`,
                target,
                { create: install, update: install },
                { parent: this, dependsOn: [this.healthGate] },
            );
        });

        this.registerOutputs({ endpoints: this.endpoints });
    }
}
