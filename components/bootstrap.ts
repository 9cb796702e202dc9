import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { caCertHash } from "../core/discovery";
import { ClusterSettings, DNS_DOMAIN, initDocuments, joinDocuments, renderControlPlaneStdin } from "../core/kubeadm";
import { apiServerCertSpec, PkiFile, renderPkiBundle } from "../core/pki";
import { BootstrapStep } from "../core/plan";
import { STACKED_BACKUP_TARGET } from "../core/backup";
import { ETCD_BACKUP_REMOVE, renderEtcdBackupInstall, renderRemoteCommand } from "../core/scripts";
import { PlannedInstance } from "./control-plane";
import { ClusterPki, KeyPairPem } from "./pki";
import { pkiFile as file, remoteStep, SshAccess, sshConnection } from "./remote-step";

export interface ExternalEtcdAccess {
    /** https://<member>:2379 client URLs. */
    endpoints: pulumi.Output<string[]>;
    /** apiserver-etcd-client, issued by the etcd CA. */
    clientCert: KeyPairPem;
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
    /** From the plan: node 0 inits; each join names the step it waits for. */
    order: BootstrapStep[];
    pki: ClusterPki;
    ssh: SshAccess;
    externalEtcd?: ExternalEtcdAccess;
    /** Hourly snapshots of each stacked etcd member kept on its node; 0 for none. */
    etcdBackupRetention: number;
}

/**
 * Turns prepared instances into an HA control plane over SSH, with @pulumi/command:
 * wait for preparation ─► place PKI ─► kubeadm init on node 0 ─► kubeadm join on the other nodes, in
 * the planned order. Every step's secrets (keys, the token, kubeadm configuration) travel on stdin;
 * every script converges when re-run; every node's delete step runs `kubeadm reset`, so a replaced
 * node gives up its etcd membership, and a replaced first node joins the live cluster.
 */
export class KubeadmBootstrap extends pulumi.ComponentResource {
    /**
     * Passes once every node has joined and the API answers through the load balancer: the point
     * after which the deployer may talk to the cluster.
     */
    readonly apiReachable: command.remote.Command;

    constructor(name: string, args: KubeadmBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-ha:bootstrap:KubeadmBootstrap", name, {}, opts);

        const token = this.bootstrapToken(name);
        const caHash = args.pki.cas.cluster.certPem.apply(caCertHash);
        const settings: pulumi.Output<ClusterSettings> = pulumi
            .all([args.endpoint, args.externalEtcd?.endpoints ?? pulumi.output(undefined)])
            .apply(([controlPlaneEndpoint, externalEtcdEndpoints]) => ({ ...args.cluster, controlPlaneEndpoint, externalEtcdEndpoints }));

        const nodes = args.nodes.map(({ plan, instance }) => {
            const identity = pulumi.all([instance.privateDns, instance.privateIp]).apply(([nodeName, nodeIp]) => ({ nodeName, nodeIp }));
            const connection = sshConnection(instance, args.ssh);
            const step = (suffix: string, stepArgs: Omit<command.remote.CommandArgs, "connection">, dependsOn: pulumi.Resource[], conn = connection) =>
                remoteStep(`${plan.name}-${suffix}`, { instance, connection: conn }, stepArgs, { parent: this, dependsOn });

            const prepared = step("prepared", { create: renderRemoteCommand("wait-for-prepare") }, [instance]);
            const placed = step(
                "pki",
                {
                    create: renderRemoteCommand("place-pki"),
                    stdin: pulumi.secret(this.pkiBundle(plan.name, args, identity)),
                },
                [prepared],
            );
            return { plan, instance, identity, connection, placed, step };
        });

        /** Each node's init or join step, by node index. */
        const done: command.remote.Command[] = [];
        for (const { node: index, action, after } of args.order) {
            const node = nodes[index];
            // The other nodes, earlier ones first: where a join (or a replaced first node) goes.
            const others = [...nodes.slice(0, index), ...nodes.slice(index + 1)];
            const params = pulumi
                .all([node.identity, args.endpointHost, pulumi.all(others.map((n) => n.instance.privateIp))])
                .apply(([id, endpointHost, ips]) => ({
                    NODE_NAME: id.nodeName,
                    NODE_IP: id.nodeIp,
                    ENDPOINT_HOST: endpointHost,
                    FIRST_NODE: String(action === "init"),
                    API_SERVERS: ips.join(" "),
                }));
            const documents = pulumi
                .all([settings, node.identity, token, caHash])
                .apply(([s, id, t, h]) => renderControlPlaneStdin(joinDocuments(s, id, t, h), action === "init" ? initDocuments(s, id, t) : undefined));
            const waitFor = action === "init" ? (args.externalEtcd ? [args.externalEtcd.healthGate] : []) : [done[after!]];
            done[index] = node.step(
                action,
                {
                    create: params.apply((p) => renderRemoteCommand("kubeadm-control-plane", p)),
                    delete: params.apply((p) => renderRemoteCommand("reset-node", { NODE_NAME: p.NODE_NAME })),
                    stdin: pulumi.secret(documents),
                },
                [node.placed, ...waitFor],
            );
        }
        // Stacked etcd: every control-plane node backs up its own member once it is part of the cluster.
        if (!args.externalEtcd && args.etcdBackupRetention > 0) {
            nodes.forEach((node, index) =>
                node.step("etcd-backup", { create: renderEtcdBackupInstall(STACKED_BACKUP_TARGET, args.etcdBackupRetention), delete: ETCD_BACKUP_REMOVE }, [
                    done[index],
                ]),
            );
        }
        const first = nodes[0];
        this.apiReachable = remoteStep(
            `${name}-api-reachable`,
            { instance: first.instance, connection: first.connection },
            {
                create: args.endpointHost.apply((ENDPOINT_HOST) => renderRemoteCommand("api-reachable", { ENDPOINT_HOST })),
                // Checked again whenever a control-plane node is replaced.
                triggers: nodes.map((n) => n.instance.id),
            },
            { parent: this, dependsOn: done },
        );
        this.registerOutputs({});
    }

    /** A kubeadm bootstrap token, "[a-z0-9]{6}.[a-z0-9]{16}", kept in state so every run sees the same one. */
    private bootstrapToken(name: string): pulumi.Output<string> {
        const part = (suffix: string, length: number) =>
            new random.RandomString(
                `${name}-token-${suffix}`,
                { length, lower: true, upper: false, numeric: true, special: false },
                {
                    parent: this,
                    additionalSecretOutputs: ["result"],
                },
            ).result;
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
