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
