/**
 * Which image and architecture a node runs, and whether an instance type is big enough. Pure: the
 * program feeds it the answers of the EC2 lookups.
 */
import { createHash } from "node:crypto";
import { ConfigError, ConfigKey, key } from "./config";

export type Architecture = "x86_64" | "arm64";

/** Canonical's AWS account, the publisher of the official Ubuntu images. */
export const CANONICAL_OWNER_ID = "099720109477";

/** The newest Ubuntu 24.04 LTS server image of an architecture (Ubuntu names arm64/amd64). */
export function ubuntuImageQuery(architecture: Architecture) {
    const ubuntuArch = architecture === "arm64" ? "arm64" : "amd64";
    return {
        mostRecent: true,
        owners: [CANONICAL_OWNER_ID],
        filters: [
            { name: "name", values: [`ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${ubuntuArch}-server-*`] },
            { name: "architecture", values: [architecture] },
            { name: "virtualization-type", values: ["hvm"] },
            { name: "root-device-type", values: ["ebs"] },
        ],
    };
}

export interface InstanceTypeFacts {
    supportedArchitectures: string[];
    defaultVcpus: number;
    /** MiB */
    memorySize: number;
}

/** kubeadm's preflight checks refuse fewer than 2 CPUs or 1700 MB on a control-plane node. */
export const MIN_CONTROL_PLANE = { vcpus: 2, memoryMiB: 1700 };
export const MIN_ETCD = { vcpus: 1, memoryMiB: 1024 };

/** Picks the architecture (arm64 for Graviton types, else x86_64) and checks the size. */
export function checkInstanceType(
    configKey: ConfigKey,
    instanceType: string,
    facts: InstanceTypeFacts,
    minimum: { vcpus: number; memoryMiB: number },
): Architecture {
    const architecture: Architecture | undefined = facts.supportedArchitectures.includes("arm64")
        ? "arm64"
        : facts.supportedArchitectures.includes("x86_64")
          ? "x86_64"
          : undefined;
    if (architecture === undefined) {
        throw new ConfigError([
            `${key(configKey)} = "${instanceType}" supports ${facts.supportedArchitectures.join(", ")}; allowed: x86_64 or arm64 instance types`,
        ]);
    }
    if (facts.defaultVcpus < minimum.vcpus || facts.memorySize < minimum.memoryMiB) {
        throw new ConfigError([
            `${key(configKey)} = "${instanceType}" has ${facts.defaultVcpus} vCPU and ${facts.memorySize} MiB; allowed: at least ${minimum.vcpus} vCPU and ${minimum.memoryMiB} MiB`,
        ]);
    }
    return architecture;
}

/**
 * What a node was built from, as the lifecycle record keeps it: the image and the version of its
 * tier's launch template. The instance is declared with that version number, never `$Latest` or
 * `$Default`: the provider replaces an instance whose declared version differs from the one it was
 * launched from (terraform-provider-aws, aws_instance CustomizeDiff), and with `$Latest` that is every
 * node of a tier as soon as `pulumi refresh` has seen a newer version (a new image, an edited script).
 */
export interface NodeBuild {
    /** The node's logical name, e.g. "kubeadm-ha-cp-0". */
    name: string;
    /** The AMI it was built from; "" when not known (a record from before this field). */
    image: string;
    /** Its tier's launch template version, a number; `$Latest` for a node built before versions were pinned. */
    launchTemplateVersion: string;
    /** SHA-256 (hex) of the user data, its preparation script, it was built from; "" when not known. */
    userDataSha256: string;
}

/** The version releases before pinning declared: kept for their nodes until each is rebuilt. */
export const UNPINNED_VERSION = "$Latest";

/** What a node built in this run gets: its tier's image and user data (the launch template's newest version). */
export interface NodeSource {
    name: string;
    image: string;
    userDataSha256: string;
}

export type NodeLaunch =
    /** Declared at the version it was built from: nothing changes. */
    | { name: string; kind: "kept"; build: NodeBuild }
    /** Built by a release before pinning: still `$Latest`, until a roll rebuilds it. */
    | { name: string; kind: "unpinned"; build: NodeBuild }
    /** Not in the record (a new cluster, a scale-up): built from the template's newest version. */
    | { name: string; kind: "new" }
    /** Rebuilt in this run from the template's newest version, for `reasons`. */
    | { name: string; kind: "rolled"; from: NodeBuild; reasons: string[] };

export interface LaunchPlan {
    /** One per node, in the order given. */
    launches: NodeLaunch[];
    /** Nodes a later run rebuilds, once this one has succeeded: one node per `pulumi up`. */
    waiting: { name: string; reasons: string[] }[];
}

export function userDataSha256(userData: string): string {
    return createHash("sha256").update(userData, "utf8").digest("hex");
}

/** Why `build` is not what a node built now from `source` would be, when that is to be acted on. */
function rollReasons(build: NodeBuild, source: NodeSource, options: { amiOverride: boolean; roll: boolean }): string[] {
    const reasons: string[] = [];
    if (build.launchTemplateVersion === UNPINNED_VERSION && options.roll) reasons.push("built by a release that did not pin its launch template version");
    if (build.image !== "" && build.image !== source.image && (options.amiOverride || options.roll)) reasons.push(`image ${build.image} → ${source.image}`);
    if (options.roll && build.userDataSha256 !== "" && build.userDataSha256 !== source.userDataSha256) reasons.push("preparation script changed");
    return reasons;
}

/**
 * Which nodes keep what they were built from and which one is rebuilt now. A node keeps its image and
 * launch template version until either the stack sets `ami` to another image, or `rollNodes` asks for
 * every node to be built from the current image and preparation. Then the first such node, in the
 * order given, is rebuilt in this run, and the others wait for the next runs: one node per `pulumi up`,
 * so one instance is created and one Elastic IP moves at a time, and the member chain joins it (and
 * removes the member it replaces) between the gates of every other node. A newer Ubuntu image from the
 * lookup alone changes only what nodes built from now on get. `running` is undefined without a record
 * (a new cluster): every node is new.
 */
export function planNodeLaunches(nodes: NodeSource[], running: NodeBuild[] | undefined, options: { amiOverride: boolean; roll: boolean }): LaunchPlan {
    const recorded = new Map((running ?? []).map((b) => [b.name, b]));
    let rolling = false;
    const waiting: LaunchPlan["waiting"] = [];
    const launches = nodes.map((node): NodeLaunch => {
        const build = recorded.get(node.name);
        if (!build) return { name: node.name, kind: "new" };
        const reasons = rollReasons(build, node, options);
        if (reasons.length > 0 && !rolling) {
            rolling = true;
            return { name: node.name, kind: "rolled", from: build, reasons };
        }
        if (reasons.length > 0) waiting.push({ name: node.name, reasons });
        return { name: node.name, kind: build.launchTemplateVersion === UNPINNED_VERSION ? "unpinned" : "kept", build };
    });
    return { launches, waiting };
}

/**
 * The builds a lifecycle record names: its `nodes`, or, for a record written before it kept them, every
 * node the record counts (those of the plan with an index below the running count), unpinned, their
 * image and preparation unknown.
 */
export function recordedBuilds(
    record: { nodes?: NodeBuild[]; controlPlaneCount: number; etcdCount: number } | undefined,
    plan: { controlPlane: { name: string; index: number }[]; etcd: { name: string; index: number }[] },
): NodeBuild[] | undefined {
    if (!record) return undefined;
    if (record.nodes) return record.nodes;
    const unknown = (name: string): NodeBuild => ({ name, image: "", launchTemplateVersion: UNPINNED_VERSION, userDataSha256: "" });
    return [
        ...plan.controlPlane.filter((n) => n.index < record.controlPlaneCount).map((n) => unknown(n.name)),
        ...plan.etcd.filter((n) => n.index < record.etcdCount).map((n) => unknown(n.name)),
    ];
}
