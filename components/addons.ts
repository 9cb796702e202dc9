import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ChartSpec, cniChart, controlPlaneRuleGroups, kubernetesClusterIdentifier, MONITORING_RELEASE, monitoringChart } from "../core/addons";
import { Cni, EtcdTopology } from "../core/config";

export interface ClusterAddonsArgs {
    /** The stack's admin kubeconfig (secret). */
    kubeconfig: pulumi.Output<string>;
    /** The last bootstrap step: no Kubernetes resource is sent before it passes. */
    bootstrapped: pulumi.Resource;
    cni: Cni;
    podCidr: string;
    monitoring: boolean;
    etcdTopology: EtcdTopology;
}

export interface InstalledAddon {
    name: string;
    chart: string;
    version: string;
    namespace: string;
}

/**
 * What turns the control plane into a usable cluster: the pod network (nodes are NotReady without
 * one) and, when asked for, the alerting stack with kubeadm-ha's control-plane rules. Everything goes
 * through one Kubernetes provider built from the stack's kubeconfig, which waits for the bootstrap;
 * `name` is the cluster's name, and the provider's cluster identifier.
 */
export class ClusterAddons extends pulumi.ComponentResource {
    readonly provider: k8s.Provider;
    readonly installed: InstalledAddon[] = [];

    constructor(name: string, args: ClusterAddonsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-ha:addons:ClusterAddons", name, {}, opts);
        this.provider = new k8s.Provider(
            `${name}-k8s`,
            // Replaced only for another cluster, never for a new kubeconfig (core/addons.ts). The component is named after the cluster.
            { kubeconfig: args.kubeconfig, clusterIdentifier: kubernetesClusterIdentifier(name) },
            { parent: this, dependsOn: [args.bootstrapped] },
        );

        const cni = cniChart(args.cni, args.podCidr);
        const network = cni && this.release(cni, []);
        if (args.monitoring) {
            const spec = monitoringChart(args.etcdTopology);
            // The alerting stack's pods need the pod network.
            const stack = this.release(spec, network ? [network] : []);
            new k8s.apiextensions.CustomResource(
                `${name}-control-plane-rules`,
                {
                    apiVersion: "monitoring.coreos.com/v1",
                    kind: "PrometheusRule",
                    // The chart's Prometheus selects rules labelled with its release.
                    metadata: { name: "kubeadm-ha-control-plane", namespace: spec.namespace, labels: { release: MONITORING_RELEASE } },
                    spec: { groups: controlPlaneRuleGroups() },
                },
                { parent: this, provider: this.provider, dependsOn: [stack] },
            );
        }
        this.registerOutputs({ installed: this.installed });
    }

    private release(spec: ChartSpec, dependsOn: pulumi.Resource[]): k8s.helm.v3.Release {
        this.installed.push({ name: spec.releaseName, chart: spec.chart, version: spec.version, namespace: spec.namespace });
        return new k8s.helm.v3.Release(
            spec.releaseName,
            {
                name: spec.releaseName,
                chart: spec.chart,
                version: spec.version,
                repositoryOpts: { repo: spec.repo },
                namespace: spec.namespace,
                createNamespace: true,
                values: spec.values,
                // Roll a failed install or upgrade back instead of leaving it half applied.
                atomic: true,
                cleanupOnFail: true,
                timeout: 900,
            },
            { parent: this, provider: this.provider, dependsOn },
        );
    }
}
