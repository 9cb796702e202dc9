/**
 * The add-ons `pulumi up` installs after bootstrap, as Helm chart specifications: the pod network and,
 * optionally, the alerting stack with kubeadm-ha's own control-plane rules. Pure data; the ClusterAddons
 * component hands it to @pulumi/kubernetes.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { METRICS_DIR } from "./backup";
import { Cni, EtcdTopology } from "./config";

export interface ChartSpec {
    /** Helm release name, fixed so that labels selecting it are stable. */
    releaseName: string;
    chart: string;
    version: string;
    repo: string;
    namespace: string;
    values: Record<string, unknown>;
}

/**
 * The Kubernetes provider's `clusterIdentifier`. With one set, pulumi-kubernetes replaces the provider
 * (and with it every release and object on it) only when the identifier changes, and updates it for
 * any other change (its DiffConfig); without one it replaces the provider whenever the kubeconfig is
 * unknown at preview, as it is each time the admin certificate is re-issued, and a replacement of the
 * fixed-name Helm releases fails ("cannot re-use a name that is still in use").
 *
 * The identifier is the cluster's name and nothing that a live cluster can change: the provider
 * always talks to the same etcd, whose data the releases live in. A new load balancer (a new
 * endpoint) or a new admin certificate reach the same cluster; even new CA keys in the same stack
 * keep the releases in etcd, so replacing them would fail. A new cluster has a new name (the program
 * refuses a rename of a live one), or a new stack, or follows a `pulumi destroy`, whose provider is
 * new anyway. The value is known at preview: it depends on no resource.
 */
export function kubernetesClusterIdentifier(clusterName: string): string {
    return `kubeadm-ha/${clusterName}`;
}

/** kubeadm taints control-plane nodes; add-ons that must run on them tolerate it. */
export const CONTROL_PLANE_TOLERATION = { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" };

/**
 * The pod network. Both encapsulate pod traffic in VXLAN: it works across subnets and zones with the
 * EC2 source/destination check on and needs no BGP (the security groups open the VXLAN port).
 */
export function cniChart(cni: Cni, podCidr: string): ChartSpec | undefined {
    switch (cni) {
        case "calico":
            // v3.31 is the last line whose chart ships Calico's CRDs itself (one release).
            return {
                releaseName: "calico",
                chart: "tigera-operator",
                version: "v3.31.7",
                repo: "https://docs.tigera.io/calico/charts",
                namespace: "tigera-operator",
                values: {
                    installation: {
                        calicoNetwork: {
                            ipPools: [{ cidr: podCidr, encapsulation: "VXLAN", natOutgoing: "Enabled", blockSize: 26, nodeSelector: "all()" }],
                        },
                    },
                },
            };
        case "cilium":
            return {
                releaseName: "cilium",
                chart: "cilium",
                version: "1.18.6",
                repo: "https://helm.cilium.io/",
                namespace: "kube-system",
                values: {
                    routingMode: "tunnel",
                    tunnelProtocol: "vxlan",
                    ipam: { mode: "cluster-pool", operator: { clusterPoolIPv4PodCIDRList: [podCidr], clusterPoolIPv4MaskSize: 24 } },
                },
            };
        case "none":
            return undefined;
    }
}

export const MONITORING_RELEASE = "kube-prometheus-stack";

/**
 * kube-prometheus-stack, set up for a kubeadm control plane: every component tolerates the
 * control-plane taint, the controller-manager, scheduler and etcd services select kubeadm's static
 * pods, and stacked etcd is scraped on its metrics port (external etcd members are outside the
 * cluster and not scraped).
 */
export function monitoringChart(topology: EtcdTopology): ChartSpec {
    const tolerations = [CONTROL_PLANE_TOLERATION];
    return {
        releaseName: MONITORING_RELEASE,
        chart: "kube-prometheus-stack",
        version: "88.6.5",
        repo: "https://prometheus-community.github.io/helm-charts",
        namespace: "monitoring",
        values: {
            prometheus: { prometheusSpec: { tolerations } },
            alertmanager: { alertmanagerSpec: { tolerations } },
            prometheusOperator: { tolerations, admissionWebhooks: { patch: { tolerations } } },
            "kube-state-metrics": { tolerations },
            // The node exporter (a DaemonSet on every node, the host's root mounted at /host/root) also
            // reads the etcd backup's metrics file. Helm replaces a list: the chart's own two
            // filesystem flags are repeated.
            "prometheus-node-exporter": {
                extraArgs: [
                    "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|var/lib/docker/.+|var/lib/kubelet/.+)($|/)",
                    "--collector.filesystem.fs-types-exclude=^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$",
                    `--collector.textfile.directory=/host/root${METRICS_DIR}`,
                ],
            },
            grafana: { tolerations },
            kubeControllerManager: { service: { selector: { component: "kube-controller-manager" } } },
            kubeScheduler: { service: { selector: { component: "kube-scheduler" } } },
            kubeEtcd: topology === "stacked" ? { enabled: true, service: { selector: { component: "etcd" } } } : { enabled: false },
        },
    };
}

/** kubeadm-ha's alert rule groups, from monitoring/control-plane.rules.yaml (the file promtool tests). */
export function controlPlaneRuleGroups(): unknown[] {
    return parse(readFileSync(join(__dirname, "..", "monitoring", "control-plane.rules.yaml"), "utf8")).groups;
}
