/**
 * Which image and architecture a node runs, and whether an instance type is big enough. Pure: the
 * program feeds it the answers of the EC2 lookups.
 */
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
