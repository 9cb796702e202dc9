/**
 * What a live cluster cannot take. The program records what each update applied (the `lifecycle`
 * stack output) and, before any resource of the next run is declared, compares the requested
 * configuration with it: a change that would wipe the cluster, move its endpoint, lose etcd quorum or
 * break kubeadm's upgrade rules is refused, with what to do instead.
 *
 * Pure: plain records in, messages out.
 */
import { ClusterConfig, Cni, CNIS, ConfigError, EtcdTopology, ETCD_TOPOLOGIES, key, MIN_KUBERNETES_MINOR } from "./config";
import type { NodeBuild } from "./node-image";
import { ClusterPlan, spreadOverZones } from "./plan";

/** The stack output that carries the record. */
export const LIFECYCLE_OUTPUT = "lifecycle";
export const LIFECYCLE_FORMAT_VERSION = 1;

/**
 * What an update applied, as far as a later update must respect it. Non-secret: it is read back
 * through a StackReference, whose `getOutputValue` refuses secret outputs.
 */
export interface LifecycleRecord {
    clusterName: string;
    vpcCidr: string;
    podCidr: string;
    serviceCidr: string;
    etcdTopology: EtcdTopology;
    /** The zones in use, in plan order: zone i gets subnet i, node i goes to zone i mod length. */
    zones: string[];
    /** As configured: a minor ("1.34", the newest patch) or a release ("1.34.2"). */
    kubernetesVersion: string;
    controlPlaneCount: number;
    /** External etcd members; 0 with stacked etcd. */
    etcdCount: number;
    /** The pod network installed. Records written before it was kept: see `cniOfOldRecord`. */
    cni: Cni;
    formatVersion: typeof LIFECYCLE_FORMAT_VERSION;
    /**
     * What each node was built from (core/node-image.ts), control-plane nodes then etcd nodes; the
     * program adds it once the nodes are declared. Absent from records written before it was kept:
     * their nodes are unpinned (`recordedBuilds`).
     */
    nodes?: NodeBuild[];
}

export function lifecycleRecord(config: ClusterConfig, plan: ClusterPlan): LifecycleRecord {
    return {
        clusterName: config.clusterName,
        vpcCidr: config.vpcCidr,
        podCidr: config.podCidr,
        serviceCidr: config.serviceCidr,
        etcdTopology: config.etcdTopology,
        zones: [...plan.zones],
        kubernetesVersion: config.kubernetesVersion.patch ?? config.kubernetesVersion.minor,
        controlPlaneCount: config.controlPlaneCount,
        etcdCount: config.etcdTopology === "external" ? config.etcdCount : 0,
        cni: config.cni,
        formatVersion: LIFECYCLE_FORMAT_VERSION,
    };
}

/** A change the running cluster cannot take; Pulumi prints the message alone, like a ConfigError. */
export class LifecycleError extends ConfigError {
    constructor(problems: string[]) {
        super(problems);
        this.name = "LifecycleError";
        this.message = `refused: the running cluster cannot take this change:\n${problems.map((p) => `  - ${p}`).join("\n")}`;
    }
}

/** The stack output that lists the add-ons an update installed (components/addons.ts), by Helm release name. */
export const ADDONS_OUTPUT = "addons";

/**
 * The pod network of a cluster whose record predates the `cni` field: what the same update installed,
 * as its `addons` output names it (every release that wrote a record exported it, in the same update:
 * a `calico` or `cilium` release, or neither for `none`); without a readable `addons` output, `calico`,
 * the default of every release that wrote a record without the field.
 */
export function cniOfOldRecord(addons: unknown): Cni {
    if (!Array.isArray(addons)) return "calico";
    const names = addons.map((a) => (typeof a === "object" && a !== null ? (a as { name?: unknown }).name : undefined));
    return names.includes("calico") ? "calico" : names.includes("cilium") ? "cilium" : "none";
}

/**
 * Reads the record the previous update left, as a StackReference returns it: undefined on a stack's
 * first run (or after `pulumi destroy`), an error when it is not a record this program writes. Fields
 * added after format 1 was first written are read from older records as what that cluster was built
 * with: `cni` from the same update's `addons` output (`cniOfOldRecord`).
 */
export function readLifecycleRecord(value: unknown, addons?: unknown): { record?: LifecycleRecord } | { error: string } {
    if (value === undefined || value === null) return {};
    const bad = (why: string) => ({
        error: `the stack's ${LIFECYCLE_OUTPUT} output, written by its last update, ${why}; the checks that protect a live cluster need it (see \`pulumi stack output ${LIFECYCLE_OUTPUT}\`)`,
    });
    if (typeof value !== "object" || Array.isArray(value)) return bad("is not a record");
    const r = value as Record<string, unknown>;
    if (r.formatVersion !== LIFECYCLE_FORMAT_VERSION) {
        return bad(
            `has format ${JSON.stringify(r.formatVersion)}, which this program does not know (it writes ${LIFECYCLE_FORMAT_VERSION}); run the version of the program that wrote it, or a newer one`,
        );
    }
    const strings = ["clusterName", "vpcCidr", "podCidr", "serviceCidr", "kubernetesVersion"] as const;
    const counts = ["controlPlaneCount", "etcdCount"] as const;
    const missing = [
        ...strings.filter((k) => typeof r[k] !== "string"),
        ...counts.filter((k) => !Number.isInteger(r[k]) || (r[k] as number) < 0),
        ...(ETCD_TOPOLOGIES.includes(r.etcdTopology as EtcdTopology) ? [] : ["etcdTopology"]),
        ...(Array.isArray(r.zones) && r.zones.length > 0 && r.zones.every((z) => typeof z === "string") ? [] : ["zones"]),
        ...(versionOf(String(r.kubernetesVersion)) ? [] : ["kubernetesVersion"]),
        ...(r.cni === undefined || CNIS.includes(r.cni as Cni) ? [] : ["cni"]),
        ...(r.nodes === undefined || (Array.isArray(r.nodes) && r.nodes.every(isNodeBuild)) ? [] : ["nodes"]),
    ];
    if (missing.length > 0) return bad(`lacks a valid ${[...new Set(missing)].join(", ")}`);
    return { record: { ...(value as LifecycleRecord), cni: (r.cni as Cni | undefined) ?? cniOfOldRecord(addons) } };
}

function isNodeBuild(value: unknown): value is NodeBuild {
    if (typeof value !== "object" || value === null) return false;
    const b = value as Record<string, unknown>;
    return (
        (["name", "image", "launchTemplateVersion", "userDataSha256"] as const).every((k) => typeof b[k] === "string") &&
        b.name !== "" &&
        b.launchTemplateVersion !== ""
    );
}

/**
 * Every reason the running cluster (`previous`) cannot take the requested configuration (`next`);
 * empty when it can. No previous record means a new cluster: anything goes.
 */
export function checkLifecycle(previous: LifecycleRecord | undefined, next: LifecycleRecord): string[] {
    if (previous === undefined) return [];
    return [...immutableProblems(previous, next), ...zoneProblems(previous, next), ...quorumProblems(previous, next), ...versionProblems(previous, next)];
}

const REBUILD = "to have it, create a new stack with the new value and start its etcd from a snapshot of this one (kubeadm-ha:etcdRestoreFrom)";

/**
 * A range the cluster's objects carry addresses from: a snapshot of this cluster would bring them
 * back, so the way there is a new cluster and the workloads moved to it.
 */
const MOVE_WORKLOADS =
    "to have it, create a new stack with the new value and move the workloads to it (a snapshot of this cluster would bring back addresses from the old range)";

/** Why each of these keys is fixed for a cluster's life, and the way to the new value. */
const IMMUTABLE: [keyof LifecycleRecord & keyof ClusterConfig, string, string][] = [
    [
        "clusterName",
        "it names every resource and is the kubeadm cluster name, so a new name replaces every node, the load balancer and the PKI: a new, empty cluster",
        REBUILD,
    ],
    ["vpcCidr", "a new range is a new VPC, and with it new subnets, nodes and load balancer: a new, empty cluster", REBUILD],
    [
        "podCidr",
        "the pod range is fixed when kubeadm init runs (kube-controller-manager's cluster CIDR, each node's pod range, the pod network's pool)",
        MOVE_WORKLOADS,
    ],
    [
        "serviceCidr",
        "the service range is fixed when kubeadm init runs: every Service's cluster IP and the API server certificates' kubernetes Service address come from it",
        MOVE_WORKLOADS,
    ],
    [
        "etcdTopology",
        "moving etcd between the control-plane nodes and nodes of its own starts a new, empty etcd: every object in the cluster would be lost",
        REBUILD,
    ],
    [
        "cni",
        "the pod network is chosen when the cluster is built: a switch removes the running one under every pod (with none, the one you installed stays and a second is added) and installs one that assigns pod addresses its own way (Calico's IP pools, Cilium's cluster-pool IPAM), and kubeadm-ha has no migration between them",
        "to have it, create a new stack with the new value and move the workloads to it (a snapshot of this cluster would bring back the old pod network's objects)",
    ],
];

function immutableProblems(previous: LifecycleRecord, next: LifecycleRecord): string[] {
    return IMMUTABLE.filter(([k]) => previous[k] !== next[k]).map(
        ([k, why, todo]) => `${key(k)}: the cluster runs ${previous[k]}, ${next[k]} was requested: ${why}; set it back to ${previous[k]}, or, ${todo}`,
    );
}

/**
 * Zone i holds subnet i (planSubnets) and node i lives in zone i mod Z (spreadOverZones). A zone
 * that leaves the list or changes position gets a new subnet: its nodes are replaced, and a Network
 * Load Balancer cannot lose a subnet without being replaced, which changes its DNS name, the API
 * endpoint in every certificate and kubeconfig. Zones added at the end are fine while no node moves.
 */
function zoneProblems(previous: LifecycleRecord, next: LifecycleRecord): string[] {
    const removed = previous.zones.filter((zone) => !next.zones.includes(zone));
    const shifted = previous.zones.filter((zone, i) => next.zones.includes(zone) && next.zones[i] !== zone);
    const tiers: [string, number, number][] = [["control-plane node", previous.controlPlaneCount, next.controlPlaneCount]];
    if (previous.etcdTopology === "external" && next.etcdTopology === "external") tiers.push(["etcd node", previous.etcdCount, next.etcdCount]);
    const movedNodes = tiers.flatMap(([what, before, after]) => {
        const from = spreadOverZones(Math.min(before, after), previous.zones);
        const to = spreadOverZones(Math.min(before, after), next.zones);
        return from.flatMap((zone, i) => (to[i] === zone ? [] : [`${what} ${i} would move from ${zone} to ${to[i]}`]));
    });
    if (removed.length === 0 && shifted.length === 0 && movedNodes.length === 0) return [];
    const what = [
        ...(removed.length > 0 ? [`${removed.join(", ")} would leave the list`] : []),
        ...(shifted.length > 0 ? [`${shifted.join(", ")} would change position (a zone's subnet follows its position)`] : []),
        ...movedNodes,
    ];
    const consequence =
        removed.length > 0 || shifted.length > 0
            ? "Their subnets would be replaced, and with them the nodes in them and the load balancer: a new load balancer has a new DNS name, and that name is the API endpoint every certificate and kubeconfig names"
            : "Moving a node replaces it with a new instance in another zone";
    return [
        `${key("availabilityZones")}: the cluster runs in ${JSON.stringify(previous.zones)}, ${JSON.stringify(next.zones)} was requested: ${what.join("; ")}. ` +
            `${consequence}. Set ${key("availabilityZones")} to ${JSON.stringify(previous.zones)} (zones may be added at the end while no node moves), or, ${REBUILD}`,
    ];
}

/** Fewest members that still form a majority of `members`. */
export function majorityOf(members: number): number {
    return Math.floor(members / 2) + 1;
}

/** Whether going from `running` etcd members to `requested` in one run keeps a majority of the running ones. */
export function keepsQuorum(running: number, requested: number): boolean {
    return requested >= running || requested >= majorityOf(running);
}

/**
 * The member counts to go through, one `pulumi up` each, from `running` down to `requested`, each
 * step keeping a majority and staying odd (as the configuration requires); undefined when some step
 * cannot (3 to 1: removing 2 of 3 at once always loses the majority).
 */
export function scaleDownSteps(running: number, requested: number): number[] | undefined {
    const steps: number[] = [];
    let current = running;
    while (current > requested) {
        let step = Math.max(requested, majorityOf(current));
        if (step % 2 === 0 && step < current) step++;
        if (step >= current) return undefined;
        steps.push(step);
        current = step;
    }
    return steps;
}

function quorumProblems(previous: LifecycleRecord, next: LifecycleRecord): string[] {
    if (previous.etcdTopology !== next.etcdTopology) return [];
    const [countKey, running, requested, where] =
        previous.etcdTopology === "stacked"
            ? (["controlPlaneCount", previous.controlPlaneCount, next.controlPlaneCount, "one per control-plane node"] as const)
            : (["etcdCount", previous.etcdCount, next.etcdCount, "on nodes of their own"] as const);
    if (keepsQuorum(running, requested)) return [];
    const steps = scaleDownSteps(running, requested);
    const todo =
        steps === undefined
            ? `no smaller steps reach ${requested} from ${running} while keeping a majority; set it back to ${running}, or, to run ${requested}, create a new stack with ${requested} and start its etcd from a snapshot of this one (kubeadm-ha:etcdRestoreFrom)`
            : `go down in steps, one \`pulumi up\` each: ${steps[0]} first, ${steps
                  .slice(1)
                  .map((s) => `then ${s}`)
                  .join(", ")}`;
    return [
        `${key(countKey)}: the cluster runs ${running} etcd members (${where}), ${requested} was requested: removing ${running - requested} at once leaves fewer than the ${majorityOf(running)} a majority of ${running} needs, and etcd would lose quorum; ${todo}`,
    ];
}

/** "1.34" → minor 34; "1.34.2" → minor 34, patch 2. */
function versionOf(text: string): { minor: number; patch?: number } | undefined {
    const match = /^1\.(\d+)(?:\.(\d+))?$/.exec(text);
    if (!match) return undefined;
    return { minor: Number(match[1]), patch: match[2] === undefined ? undefined : Number(match[2]) };
}

/**
 * kubeadm's version rules: no downgrade (of a minor or a patch), one minor per upgrade, nothing below
 * the oldest minor this program supports. A minor without a patch means that minor's newest patch,
 * so "1.34" after "1.34.2" is no downgrade; "1.34.1" after "1.34" is taken as intended, since the
 * record does not know which patch the nodes installed.
 */
function versionProblems(previous: LifecycleRecord, next: LifecycleRecord): string[] {
    const k = key("kubernetesVersion");
    const from = versionOf(previous.kubernetesVersion)!;
    const to = versionOf(next.kubernetesVersion);
    const head = `${k}: the cluster runs ${previous.kubernetesVersion}, ${next.kubernetesVersion} was requested`;
    if (to === undefined || to.minor < MIN_KUBERNETES_MINOR) {
        return [
            `${head}: this program supports 1.${MIN_KUBERNETES_MINOR} and newer (kubeadm's v1beta4 configuration); keep ${previous.kubernetesVersion} or set a newer version`,
        ];
    }
    if (to.minor < from.minor || (to.minor === from.minor && to.patch !== undefined && from.patch !== undefined && to.patch < from.patch)) {
        const newest = `1.${from.minor}`;
        return [
            `${head}: kubeadm cannot downgrade a cluster${to.minor === from.minor ? ", not even by a patch" : ""}; set it back to ${previous.kubernetesVersion} or a newer version` +
                (from.patch !== undefined ? ` (${newest} means the newest ${newest} patch)` : ""),
        ];
    }
    if (to.minor > from.minor + 1) {
        const between = Array.from({ length: to.minor - from.minor - 1 }, (_, i) => `1.${from.minor + 1 + i}`);
        return [
            `${head}: kubeadm upgrades one minor at a time; set ${between[0]} first, ${[...between.slice(1), next.kubernetesVersion].map((v) => `then ${v}`).join(", ")}`,
        ];
    }
    return [];
}
