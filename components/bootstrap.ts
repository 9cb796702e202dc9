import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { caCertHash } from "../core/discovery";
import { CertificateReport, certificateReport, IssuedCertificate, renderCertRenewalInstall } from "../core/cert-renewal";
import { ClusterSettings, DNS_DOMAIN, initDocuments, joinDocuments, nodeConfigDocuments, renderDocuments, renderMemberInput } from "../core/kubeadm";
import { apiServerCertSpec, PkiFile, renderPkiBundle } from "../core/pki";
import { etcdRestoreParams, OffsiteBackup, restoreClusterToken, restoreId, STACKED_BACKUP_TARGET } from "../core/backup";
import { S3Object, s3Url } from "../core/backup-settings";
import { ETCD_BACKUP_REMOVE, peerSnapshotParams, renderEtcdBackupInstall, renderEtcdRestore, renderRemoteCommand } from "../core/scripts";
import { PlannedInstance } from "./control-plane";
import { ClusterPki, KeyPairPem } from "./pki";
import { pkiFile as file, prepareNode, remoteStep, SshAccess } from "./remote-step";

export interface ExternalEtcdAccess {
    /** https://<member>:2379 client URLs. */
    endpoints: pulumi.Output<string[]>;
    /** apiserver-etcd-client, issued by the etcd CA. */
    clientCert: KeyPairPem;
    /** The members' certificates (no keys), for the report and the nodes' expiry metric. */
    certificates: pulumi.Output<IssuedCertificate[]>;
    /** Passes only when the etcd cluster is healthy; kubeadm init waits for it. */
    healthGate: pulumi.Resource;
}

export interface KubeadmBootstrapArgs {
    cluster: Omit<ClusterSettings, "controlPlaneEndpoint" | "externalEtcdEndpoints">;
    kubernetesServiceIp: string;
    /** The load balancer's DNS name. */
    endpointHost: pulumi.Output<string>;
    /** "<dns>:6443" */
    endpoint: pulumi.Output<string>;
    nodes: PlannedInstance[];
    /**
     * What lets the nodes reach the API through the load balancer from their Elastic IPs; every step
     * that may talk to the API that way waits for it.
     */
    apiAccess: pulumi.Resource[];
    pki: ClusterPki;
    ssh: SshAccess;
    externalEtcd?: ExternalEtcdAccess;
    /** Hourly snapshots of each stacked etcd member kept on its node; 0 for no backups at all. */
    etcdBackupRetention: number;
    /** Stacked etcd: where the etcd leader uploads a snapshot every interval. */
    offsite: pulumi.Output<OffsiteBackup>;
    /** Stacked etcd: the snapshot a new cluster's etcd is restored from before kubeadm init (etcdRestoreFrom). */
    restoreFrom?: { source: S3Object; region: string };
    /** A member's certificates are renewed when they expire within this many days (certificateRenewalDays). */
    renewWithinDays: number;
    /** Changes when a renewal is due (core/cert-renewal.ts renewalRequest): the member steps then run. */
    renewalRequestedFor: string;
}

/**
 * Turns prepared instances into an HA control plane over SSH, with @pulumi/command, so that every
 * later `pulumi up` is as safe as the first:
 * - per node: wait for preparation ─► place PKI;
 * - cluster-init: `kubeadm init` on node 0, once in the cluster's life (it ignores every later input
 *   change, and its script refuses to run where a cluster may exist);
 * - per node, one node at a time across the whole plan: converge to a member (join, or wait for a
 *   member's API server), removing unplanned etcd members on the way (scripts/remote/members.sh);
 * - membership: the cluster holds exactly the planned members; then the API through the load balancer.
 * No step has a delete command: leaving the cluster is done by the nodes that stay, through a live
 * member, so a gone host stalls nothing and no secret is replayed to an address that moved on. Every
 * step's secrets travel on stdin; create and update run the same converging script. Every step after
 * the first on a node is pinned to the host key that first step learnt (remote-step.ts).
 */
export class KubeadmBootstrap extends pulumi.ComponentResource {
    /**
     * Passes once every node has joined and the API answers through the load balancer: the point
     * after which the deployer may talk to the cluster.
     */
    readonly apiReachable: command.remote.Command;
    /**
     * The earliest expiry of the certificates kubeadm issued on the nodes, as the member steps last
     * read it, and of the external etcd certificates the program issued.
     */
    readonly certificates: pulumi.Output<CertificateReport>;

    constructor(name: string, args: KubeadmBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-ha:bootstrap:KubeadmBootstrap", name, {}, opts);

        const token = this.bootstrapToken(name);
        const caHash = args.pki.cas.cluster.certPem.apply(caCertHash);
        const settings: pulumi.Output<ClusterSettings> = pulumi
            .all([args.endpoint, args.externalEtcd?.endpoints ?? pulumi.output(undefined)])
            .apply(([controlPlaneEndpoint, externalEtcdEndpoints]) => ({ ...args.cluster, controlPlaneEndpoint, externalEtcdEndpoints }));
        const stacked = String(!args.externalEtcd);

        const nodes = args.nodes.map(({ plan, instance, address }) => {
            const identity = pulumi.all([instance.privateDns, instance.privateIp]).apply(([nodeName, nodeIp]) => ({ nodeName, nodeIp }));
            const { prepared, target } = prepareNode(`${plan.name}-prepared`, { instance, host: address, ssh: args.ssh }, { parent: this });
            const placed = remoteStep(
                `${plan.name}-pki`,
                target,
                { create: renderRemoteCommand("place-pki"), stdin: pulumi.secret(this.pkiBundle(plan.name, args, identity)) },
                { parent: this, dependsOn: [prepared] },
            );
            return { plan, instance, identity, target, prepared, placed };
        });
        const plannedNodes = pulumi.all(nodes.map((n) => n.identity)).apply((ids) => ids.map((id) => id.nodeName).join(" "));
        /** The other planned nodes' addresses, earlier nodes first. */
        const peersOf = (index: number) => pulumi.all(nodes.filter((_, i) => i !== index).map((n) => n.instance.privateIp)).apply((ips) => ips.join(" "));

        const first = nodes[0];
        const restore = args.externalEtcd ? undefined : args.restoreFrom;
        // Restores node 0's etcd data before init, where no cluster answers (scripts/remote/etcd-restore.sh).
        const restored =
            restore &&
            remoteStep(
                `${first.plan.name}-etcd-restore`,
                first.target,
                {
                    create: pulumi.all([first.identity, peersOf(0)]).apply(([id, API_SERVERS]) => {
                        const member = { name: id.nodeName, ip: id.nodeIp };
                        const params = etcdRestoreParams({
                            ...restore,
                            member,
                            members: [member],
                            clusterToken: restoreClusterToken(args.cluster.clusterName, restore.source),
                            topology: "stacked",
                        });
                        return renderEtcdRestore({ ...params, API_SERVERS });
                    }),
                },
                { parent: this, dependsOn: [first.placed, ...nodes.map((n) => n.prepared)] },
            );
        // Every node prepared first: its peers then refuse 6443 at once instead of timing out, which the
        // init script needs to tell that no cluster exists anywhere.
        // A restore asks for a new cluster from a snapshot: a step of its own name, so it runs once more
        // (the step of the first init ignores every change); its script still refuses where a cluster answers.
        const clusterInit = remoteStep(
            restore ? `${name}-cluster-init-restore-${restoreId(restore.source)}` : `${name}-cluster-init`,
            first.target,
            {
                create: pulumi.all([first.identity, args.endpointHost, peersOf(0)]).apply(([id, ENDPOINT_HOST, API_SERVERS]) =>
                    renderRemoteCommand("cluster-init", {
                        NODE_NAME: id.nodeName,
                        NODE_IP: id.nodeIp,
                        ENDPOINT_HOST,
                        API_SERVERS,
                        RESTORE_FROM: restore ? s3Url(restore.source) : "",
                    }),
                ),
                stdin: pulumi.secret(
                    pulumi.all([settings, first.identity, token]).apply(([s, id, t]) => renderDocuments(initDocuments(s, id, t, restore !== undefined))),
                ),
            },
            {
                parent: this,
                dependsOn: [
                    ...(restored ? [restored] : []),
                    first.placed,
                    ...nodes.map((n) => n.prepared),
                    ...(args.externalEtcd ? [args.externalEtcd.healthGate] : []),
                    // The kubelet turns to the load balancer once init has finished.
                    ...args.apiAccess,
                ],
            },
            "live",
            // Once in the cluster's life: a replaced first node, a new version, an edited script or a
            // new address must never run it again.
            { once: true },
        );

        // One node at a time, across the whole plan: joins and member removals never overlap.
        const members: command.remote.Command[] = [];
        nodes.forEach((node, index) => {
            const params = pulumi
                .all([node.identity, args.endpointHost, peersOf(index), plannedNodes, args.offsite])
                .apply(([id, ENDPOINT_HOST, API_SERVERS, PLANNED_NODES, offsite]) => ({
                    NODE_NAME: id.nodeName,
                    NODE_IP: id.nodeIp,
                    ENDPOINT_HOST,
                    API_SERVERS,
                    PLANNED_NODES,
                    STACKED: stacked,
                    KUBERNETES_VERSION: args.cluster.kubernetesVersion.patch ?? args.cluster.kubernetesVersion.minor,
                    RENEW_WITHIN_DAYS: String(args.renewWithinDays),
                    ...(args.renewalRequestedFor ? { RENEWAL_REQUESTED_FOR: args.renewalRequestedFor } : {}),
                    // Stacked: a snapshot through a live member before this node's member joins.
                    ...(args.externalEtcd
                        ? {}
                        : peerSnapshotParams(STACKED_BACKUP_TARGET, args.etcdBackupRetention, { ...offsite, memberName: node.plan.name })),
                }));
            const converge = params.apply((p) => renderRemoteCommand("kubeadm-control-plane", p));
            members.push(
                remoteStep(
                    `${node.plan.name}-member`,
                    node.target,
                    {
                        create: converge,
                        update: converge,
                        stdin: pulumi.secret(
                            pulumi
                                .all([settings, node.identity, token, caHash])
                                .apply(([s, id, t, h]) => renderMemberInput(joinDocuments(s, id, t, h), nodeConfigDocuments(s, id))),
                        ),
                    },
                    {
                        parent: this,
                        dependsOn: [node.placed, index === 0 ? clusterInit : members[index - 1], ...args.apiAccess],
                        // Earlier releases named this step after what it did first; an alias turns the
                        // old step into this one (an update), instead of deleting it and running its
                        // old `kubeadm reset` delete command on a live member.
                        aliases: [{ name: `${node.plan.name}-init` }, { name: `${node.plan.name}-join` }],
                    },
                ),
            );
        });

        const membershipScript = plannedNodes.apply((PLANNED_NODES) => renderRemoteCommand("membership", { PLANNED_NODES, STACKED: stacked }));
        const membership = remoteStep(
            `${name}-membership`,
            first.target,
            { create: membershipScript, update: membershipScript, triggers: [plannedNodes] },
            { parent: this, dependsOn: members },
        );

        // Stacked etcd: every control-plane node backs up its own member once it is part of the cluster.
        // Turning backups off is an update of the same step, never a delete command.
        if (!args.externalEtcd) {
            nodes.forEach((node, index) => {
                const install = args.offsite.apply((offsite) =>
                    args.etcdBackupRetention > 0
                        ? renderEtcdBackupInstall(STACKED_BACKUP_TARGET, args.etcdBackupRetention, { ...offsite, memberName: node.plan.name })
                        : ETCD_BACKUP_REMOVE,
                );
                remoteStep(`${node.plan.name}-etcd-backup`, node.target, { create: install, update: install }, { parent: this, dependsOn: [members[index]] });
            });
        }
        // The backstop for a cluster nobody deploys: a daily renewal timer on each node, at hours spread
        // over the day, installed once the node is a member (core/cert-renewal.ts).
        // External etcd: the nodes also export the expiry of the members' certificates, which kubeadm
        // does not see; the install step runs again when pulumi up re-issues one.
        const etcdCertificates = args.externalEtcd?.certificates ?? pulumi.output([]);
        nodes.forEach((node, index) => {
            const install = etcdCertificates.apply((certificates) =>
                renderCertRenewalInstall({ nodeIndex: index, nodeCount: nodes.length, stacked: !args.externalEtcd, etcdCertificates: certificates }),
            );
            remoteStep(`${node.plan.name}-cert-renewal`, node.target, { create: install, update: install }, { parent: this, dependsOn: [members[index]] });
        });
        // Each member step ends with the node's earliest expiry; the step's output is secret, this line is not.
        // External etcd's certificates come from the state: kubeadm neither lists nor renews them.
        const external = args.externalEtcd
            ? pulumi.all([args.externalEtcd.clientCert.certPem, etcdCertificates]).apply(([client, others]) => [client, ...others.map((c) => c.certPem)])
            : pulumi.output([] as string[]);
        this.certificates = pulumi.unsecret(
            pulumi
                .all([pulumi.all(members.map((m) => m.stdout)), external])
                .apply(([outputs, certificates]) => certificateReport(outputs, certificates, args.renewalRequestedFor)),
        );
        this.apiReachable = remoteStep(
            `${name}-api-reachable`,
            first.target,
            {
                create: args.endpointHost.apply((ENDPOINT_HOST) => renderRemoteCommand("api-reachable", { ENDPOINT_HOST })),
                // Checked again whenever a control-plane node is replaced.
                triggers: nodes.map((n) => n.instance.id),
            },
            { parent: this, dependsOn: [membership] },
        );
        this.registerOutputs({});
    }

    /**
     * A kubeadm bootstrap token, "[a-z0-9]{6}.[a-z0-9]{16}", kept in state so every run sees the same
     * one. RandomPassword, not RandomString: a RandomString's resource id is its result, and ids are
     * never encrypted in the state; a RandomPassword's id is "none" and its result is secret.
     */
    private bootstrapToken(name: string): pulumi.Output<string> {
        const part = (suffix: string, length: number) =>
            new random.RandomPassword(`${name}-token-${suffix}`, { length, lower: true, upper: false, numeric: true, special: false }, { parent: this }).result;
        return pulumi.secret(pulumi.interpolate`${part("id", 6)}.${part("secret", 16)}`);
    }

    /**
     * The files a control-plane node needs before kubeadm runs: the shared CAs and service-account
     * keys (kubeadm's manual certificate distribution) and this node's API server certificate.
     */
    private pkiBundle(nodeName: string, args: KubeadmBootstrapArgs, identity: pulumi.Output<{ nodeName: string; nodeIp: string }>): pulumi.Output<string> {
        const { pki } = args;
        const spec = pulumi
            .all([identity, args.endpointHost])
            .apply(([id, endpointHost]) => apiServerCertSpec({ ...id, endpointHost, kubernetesServiceIp: args.kubernetesServiceIp, dnsDomain: DNS_DOMAIN }));
        const apiServer = pki.issue(`${nodeName}-apiserver`, "cluster", spec);
        const external = args.externalEtcd;
        const files: pulumi.Output<PkiFile>[] = [
            file("ca.crt", pki.cas.cluster.certPem, "0644"),
            file("ca.key", pki.cas.cluster.keyPem, "0600"),
            file("front-proxy-ca.crt", pki.cas.frontProxy.certPem, "0644"),
            file("front-proxy-ca.key", pki.cas.frontProxy.keyPem, "0600"),
            file("sa.key", pki.serviceAccount.keyPem, "0600"),
            file("sa.pub", pki.serviceAccount.publicKeyPem, "0644"),
            file("etcd/ca.crt", pki.cas.etcd.certPem, "0644"),
            file("apiserver.crt", apiServer.certPem, "0644"),
            file("apiserver.key", apiServer.keyPem, "0600"),
            // Stacked etcd: kubeadm issues each member's certificates from the etcd CA on the node.
            // External etcd: the API server only needs its client certificate, never the CA key.
            ...(external
                ? [
                      file("apiserver-etcd-client.crt", external.clientCert.certPem, "0644"),
                      file("apiserver-etcd-client.key", external.clientCert.keyPem, "0600"),
                  ]
                : [file("etcd/ca.key", pki.cas.etcd.keyPem, "0600")]),
        ];
        return pulumi.all(files).apply(renderPkiBundle);
    }
}
