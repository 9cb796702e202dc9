/**
 * Planning: where each node goes, which subnet each zone gets, and in what order nodes bootstrap.
 * Pure and deterministic: the same config always yields the same plan.
 */
import { addressAt, formatCidr, parseCidr, isCidr, subdivide } from "./cidr";
import { ClusterConfig, ConfigError, EtcdTopology, key, requiredZoneCount } from "./config";

/** Well-known ports, named once. */
export const PORTS = {
    apiServer: 6443,
    ssh: 22,
    etcdClient: 2379,
    etcdPeer: 2380,
    kubelet: 10250,
    controllerManager: 10257,
    scheduler: 10259,
    /** etcd's plain-HTTP metrics listener (kubeadm's stacked etcd). */
    etcdMetrics: 2381,
    nodeExporter: 9100,
} as const;

/** What each pod network needs open between nodes (both encapsulate pod traffic in VXLAN here). */
export const CNI_PORTS = {
    calico: [
        { protocol: "udp", port: 4789, what: "Calico VXLAN" },
        { protocol: "tcp", port: 5473, what: "Calico Typha" },
    ],
    cilium: [
        { protocol: "udp", port: 8472, what: "Cilium VXLAN" },
        { protocol: "tcp", port: 4240, what: "Cilium health checks" },
    ],
    none: [],
} as const;

export type NodeRole = "control-plane" | "etcd";

export interface NodePlan {
    role: NodeRole;
    index: number;
    /** Pulumi logical name, e.g. "kubeadm-ha-cp-0". Stable across runs. */
    name: string;
    zone: string;
}

export interface SubnetPlan {
    zone: string;
    cidr: string;
}

export interface ClusterPlan {
    zones: string[];
    subnets: SubnetPlan[];
    controlPlane: NodePlan[];
    etcd: NodePlan[];
    /** First address of the service range: the in-cluster `kubernetes` service, an apiserver SAN. */
    kubernetesServiceIp: string;
    bootstrap: BootstrapStep[];
}

/**
 * Chooses the zones to use: the configured ones, or the first available ones in the region, as many
 * as there are nodes in the larger tier (more zones than nodes would leave zones empty).
 */
export function chooseZones(config: ClusterConfig, regionZones: readonly string[]): string[] {
    const largestTier = Math.max(config.controlPlaneCount, config.etcdTopology === "external" ? config.etcdCount : 0);
    if (config.availabilityZones.length > 0) {
        const unknown = config.availabilityZones.filter((z) => !regionZones.includes(z));
        if (unknown.length > 0) {
            throw new ConfigError([
                `${key("availabilityZones")} = ${JSON.stringify(config.availabilityZones)} names ${unknown.join(", ")}, not available in this region; allowed: ${regionZones.join(", ")}`,
            ]);
        }
        return [...config.availabilityZones];
    }
    const needed = requiredZoneCount(largestTier);
    if (regionZones.length < needed) {
        throw new ConfigError([
            `${key("availabilityZones")} is unset and the region offers only ${regionZones.length} zone(s) (${regionZones.join(", ")}); ${needed} are needed`,
        ]);
    }
    return [...regionZones].sort().slice(0, Math.min(largestTier, regionZones.length));
}

/** Node i goes to zone i mod Z: round robin, so no zone holds more than ceil(N/Z) nodes. */
export function spreadOverZones(count: number, zones: readonly string[]): string[] {
    return Array.from({ length: count }, (_, i) => zones[i % zones.length]);
}

/** One public subnet per zone, each a sixteenth of the VPC, in zone order. */
export function planSubnets(vpcCidr: string, zones: readonly string[]): SubnetPlan[] {
    const vpc = parseCidr(vpcCidr);
    if (!isCidr(vpc)) throw new Error(`vpcCidr ${vpcCidr} ${vpc.error}`);
    return subdivide(vpc, vpc.prefix + 4, zones.length).map((cidr, i) => ({ zone: zones[i], cidr: formatCidr(cidr) }));
}

export function firstAddress(cidrText: string): string {
    const cidr = parseCidr(cidrText);
    if (!isCidr(cidr)) throw new Error(`${cidrText} ${cidr.error}`);
    return addressAt(cidr, 1n);
}

export interface BootstrapStep {
    /** Index of the control-plane node this step bootstraps. */
    node: number;
    action: "init" | "join";
    /** Index of the node whose step must finish first; undefined for the first step. */
    after?: number;
}

/**
 * The bootstrap order. Node 0 runs `kubeadm init`. With stacked etcd every join adds an etcd member,
 * and etcd admits one learner at a time, so joins form a chain (kubeadm #2005). With external etcd a
 * join changes no membership, so every join waits only for init.
 */
export function planBootstrap(topology: EtcdTopology, controlPlaneCount: number): BootstrapStep[] {
    return Array.from({ length: controlPlaneCount }, (_, node): BootstrapStep => {
        if (node === 0) return { node, action: "init" };
        return { node, action: "join", after: topology === "stacked" ? node - 1 : 0 };
    });
}

/** Length of the longest chain of bootstrap steps that must run one after another. */
export function criticalPathLength(steps: readonly BootstrapStep[]): number {
    const depth = new Map<number, number>();
    for (const step of steps) {
        depth.set(step.node, step.after === undefined ? 1 : depth.get(step.after)! + 1);
    }
    return Math.max(0, ...depth.values());
}

export function planCluster(config: ClusterConfig, regionZones: readonly string[]): ClusterPlan {
    const zones = chooseZones(config, regionZones);
    const tier = (role: NodeRole, count: number, short: string): NodePlan[] =>
        spreadOverZones(count, zones).map((zone, index) => ({ role, index, zone, name: `${config.clusterName}-${short}-${index}` }));
    return {
        zones,
        subnets: planSubnets(config.vpcCidr, zones),
        controlPlane: tier("control-plane", config.controlPlaneCount, "cp"),
        etcd: config.etcdTopology === "external" ? tier("etcd", config.etcdCount, "etcd") : [],
        kubernetesServiceIp: firstAddress(config.serviceCidr),
        bootstrap: planBootstrap(config.etcdTopology, config.controlPlaneCount),
    };
}
