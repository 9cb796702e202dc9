/**
 * Stack configuration: one parser, one set of rules, one error that names every bad key.
 *
 * Pure: it sees the raw strings Pulumi hands a program (numbers as "3", lists and maps as JSON) through
 * a lookup function, so the program, the tests and any offline tool validate exactly the same way.
 * The defaults here are the defaults in Pulumi.yaml; a test keeps the two in step.
 */
import { distance } from "fastest-levenshtein";
import { BackupEncryption, BackupInterval, bucketNameProblem, parseBackupEncryption, parseBackupInterval, parseS3Url, S3Object } from "./backup-settings";
import { Cidr, formatCidr, isCidr, overlaps, parseCidr } from "./cidr";

export const PROJECT = "kubeadm-ha";

export type EtcdTopology = "stacked" | "external";
export const ETCD_TOPOLOGIES: readonly EtcdTopology[] = ["stacked", "external"];

export const CNIS = ["calico", "cilium", "none"] as const;
export type Cni = (typeof CNIS)[number];

/**
 * CPU credit modes of burstable instances. AWS launches T3, T3a and T4g as `unlimited` unless told
 * otherwise, which bills every vCPU-hour above the baseline; `standard` throttles to the baseline.
 */
export const CPU_CREDITS = ["standard", "unlimited"] as const;
export type CpuCredits = (typeof CPU_CREDITS)[number];

/** Burstable families (t2, t3, t3a, t4g): the only ones a credit specification applies to. */
export function isBurstable(instanceType: string): boolean {
    return /^t\d+[a-z]*\./.test(instanceType);
}

/** Health paths an anonymous client may read under kubeadm's default RBAC (system:public-info-viewer). */
export const HEALTH_CHECK_PATHS = ["/healthz", "/readyz", "/livez"] as const;
export type HealthCheckPath = (typeof HEALTH_CHECK_PATHS)[number];

/** kubeadm's v1beta4 configuration API exists from Kubernetes 1.31 on. */
export const MIN_KUBERNETES_MINOR = 31;

/**
 * The end of upstream maintenance of each minor kubeadm-ha accepts (https://kubernetes.io/releases/,
 * read 2026-12-03). A minor past its date gets no security fixes: the program warns, and the
 * default is always an exact release of a minor in support.
 */
export const KUBERNETES_END_OF_LIFE: Readonly<Record<string, string>> = {
    "1.31": "2025-10-28",
    "1.32": "2026-02-28",
    "1.33": "2026-06-28",
    "1.34": "2026-10-27",
    "1.35": "2027-02-28",
    "1.36": "2027-06-28",
    "1.37": "2027-10-28",
};

/** Why minor `minor` is not one to run on `today` (YYYY-MM-DD), or undefined when it is in upstream support. */
export function unsupportedMinor(minor: string, today: string): string | undefined {
    const end = KUBERNETES_END_OF_LIFE[minor];
    if (end === undefined) return `kubeadm-ha does not know ${minor}'s support dates; check https://kubernetes.io/releases/`;
    if (end < today) {
        const supported = Object.keys(KUBERNETES_END_OF_LIFE).filter((m) => KUBERNETES_END_OF_LIFE[m] >= today);
        return `${minor} left upstream support on ${end} and gets no security fixes; move to ${supported.join(" or ") || "a supported minor"}, one minor per pulumi up`;
    }
    return undefined;
}
export const MAX_NODES = 7;

export interface ClusterConfig {
    /** Prefix of every resource name and the kubeadm cluster name. */
    clusterName: string;
    controlPlaneCount: number;
    etcdTopology: EtcdTopology;
    /** etcd members when etcdTopology is external. */
    etcdCount: number;
    /** Kubernetes minor ("1.34") or exact release ("1.34.2"). */
    kubernetesVersion: KubernetesVersion;
    instanceType: string;
    etcdInstanceType: string;
    /** CPU credit mode of burstable nodes; ignored for other instance types. */
    cpuCredits: CpuCredits;
    /** An AMI id that overrides the Ubuntu LTS lookup; undefined means look it up. */
    ami?: string;
    rootVolumeSizeGiB: number;
    vpcCidr: string;
    /** Zones to spread nodes over; empty means the first ones available in the region. */
    availabilityZones: string[];
    apiAllowedCidrs: string[];
    sshAllowedCidrs: string[];
    podCidr: string;
    serviceCidr: string;
    sshUser: string;
    healthCheckPath: HealthCheckPath;
    /** Make nodes and their data undeletable by Pulumi. */
    protect: boolean;
    /**
     * Rebuild, one node per `pulumi up`, the nodes not built from the current image and preparation
     * (core/node-image.ts planNodeLaunches); off, a node keeps what it was built from until `ami` changes.
     */
    rollNodes: boolean;
    /** The pod network installed after bootstrap; "none" leaves it to the user. */
    cni: Cni;
    /** Install the alerting stack and the control-plane alert rules. */
    monitoring: boolean;
    /** Hourly etcd snapshots kept on each member's node; 0 turns backups off. */
    etcdBackupRetention: number;
    /** How often the etcd leader uploads a snapshot to S3 (when backups are on). */
    etcdBackupInterval: BackupInterval;
    /** An existing bucket to upload to, under `<cluster>/etcd/` only; undefined: a bucket of the cluster's own. */
    etcdBackupBucket?: string;
    /** Encryption of the uploaded snapshots: SSE-S3, or SSE-KMS with a key of the cluster's own or a given key. */
    etcdBackupKmsKey: BackupEncryption;
    /** Days an uploaded snapshot is kept in a bucket of the cluster's own. */
    etcdBackupS3RetentionDays: number;
    /** The snapshot a new stack bootstraps its etcd from, instead of an empty etcd. */
    etcdRestoreFrom?: S3Object;
    /** `pulumi up` renews a node's kubeadm-issued certificates when they expire within this many days. */
    certificateRenewalDays: number;
    tags: Record<string, string>;
}

export interface KubernetesVersion {
    /** "1.34" */
    minor: string;
    /** "1.34.2" when pinned to a release, otherwise undefined (latest patch of the minor). */
    patch?: string;
}

/** Every key with its default, exactly as Pulumi.yaml declares them. */
export const DEFAULTS = {
    clusterName: "kubeadm-ha",
    controlPlaneCount: 3,
    etcdTopology: "stacked",
    etcdCount: 3,
    kubernetesVersion: "1.37.2",
    instanceType: "t3.medium",
    etcdInstanceType: "t3.small",
    cpuCredits: "standard",
    ami: "",
    rootVolumeSizeGiB: 30,
    vpcCidr: "10.0.0.0/16",
    availabilityZones: [] as string[],
    apiAllowedCidrs: ["0.0.0.0/0"],
    sshAllowedCidrs: ["0.0.0.0/0"],
    podCidr: "192.168.0.0/16",
    serviceCidr: "10.96.0.0/12",
    sshUser: "ubuntu",
    healthCheckPath: "/healthz",
    protect: false,
    rollNodes: false,
    cni: "calico",
    monitoring: false,
    etcdBackupRetention: 48,
    etcdBackupInterval: "15m",
    etcdBackupBucket: "",
    etcdBackupKmsKey: "",
    etcdBackupS3RetentionDays: 14,
    certificateRenewalDays: 60,
    etcdRestoreFrom: "",
    tags: [] as string[],
} as const;

export type ConfigKey = keyof typeof DEFAULTS;

/** Every key Pulumi.yaml declares; anything else in the project's namespace is a mistake. */
export const DECLARED_KEYS = Object.keys(DEFAULTS) as ConfigKey[];

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid stack configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "ConfigError";
    }
}

export interface ParsedConfig {
    config: ClusterConfig;
    /** Valid but worth saying: a single node is not HA, SSH open to the internet. */
    warnings: string[];
}

/** Looks up a raw config value by key (without the project prefix); undefined when unset. */
export type RawLookup = (key: string) => string | undefined;

/**
 * Parses and validates the whole configuration. Collects every problem before failing, so a user
 * fixes them in one round; each problem names `kubeadm-ha:<key>`, the value and what is allowed.
 * `setKeys` are the keys the stack sets in the project's namespace (without the prefix); any that
 * Pulumi.yaml does not declare is a problem too, since the program would silently ignore it.
 */
export function parseConfig(lookup: RawLookup, setKeys: readonly string[] = [], today = new Date().toISOString().slice(0, 10)): ParsedConfig {
    const problems: string[] = unknownKeyProblems(setKeys);
    const warnings: string[] = [];
    const reader = new Reader(lookup, problems);

    const clusterName = reader.string("clusterName", (v) =>
        /^[a-z][a-z0-9-]{0,18}[a-z0-9]$/.test(v)
            ? undefined
            : "must be 2-20 characters of lowercase letters, digits and '-', starting with a letter (it prefixes AWS names limited to 32 characters)",
    );
    const etcdTopology = reader.oneOf("etcdTopology", ETCD_TOPOLOGIES);
    const controlPlaneCount = reader.integer("controlPlaneCount", 1, MAX_NODES);
    const etcdCount = reader.integer("etcdCount", 1, MAX_NODES);
    if (controlPlaneCount !== undefined && etcdTopology === "stacked" && controlPlaneCount % 2 === 0) {
        problems.push(
            `${key("controlPlaneCount")} = ${controlPlaneCount}: stacked etcd runs one member per control-plane node and needs an odd count for a majority; allowed: 1, 3, 5, 7`,
        );
    }
    if (etcdCount !== undefined && etcdTopology === "external" && etcdCount % 2 === 0) {
        problems.push(`${key("etcdCount")} = ${etcdCount}: etcd needs an odd member count for a majority; allowed: 1, 3, 5, 7`);
    }
    const kubernetesVersion = reader.custom("kubernetesVersion", parseKubernetesVersion);
    const instanceType = reader.string("instanceType", instanceTypeShape);
    const etcdInstanceType = reader.string("etcdInstanceType", instanceTypeShape);
    const cpuCredits = reader.oneOf("cpuCredits", CPU_CREDITS);
    const ami = reader.string("ami", (v) =>
        v === "" || /^ami-[0-9a-f]{8}([0-9a-f]{9})?$/.test(v) ? undefined : "must be an AMI id such as ami-0123456789abcdef0, or empty to look up Ubuntu LTS",
    );
    const rootVolumeSizeGiB = reader.integer("rootVolumeSizeGiB", 20, 16384);
    const vpc = reader.cidr("vpcCidr", 16, 24, "AWS allows VPCs from /16 to /28 and each zone gets a sixteenth of it");
    const podCidr = reader.cidr("podCidr", 8, 22, "each node gets a /24 of it");
    const serviceCidr = reader.cidr("serviceCidr", 12, 24, "kube-apiserver accepts at most a /12");
    checkDisjoint(problems, [
        ["vpcCidr", vpc],
        ["podCidr", podCidr],
        ["serviceCidr", serviceCidr],
    ]);
    const availabilityZones = reader.stringList("availabilityZones", (zones) => {
        const bad = zones.find((z) => !/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/.test(z));
        if (bad !== undefined) return `${JSON.stringify(bad)} is not an availability zone name such as us-east-1a`;
        if (new Set(zones).size !== zones.length) return "lists a zone twice";
        return undefined;
    });
    const zonesNeeded = requiredZoneCount(Math.max(controlPlaneCount ?? 1, etcdTopology === "external" ? (etcdCount ?? 1) : 1));
    if (availabilityZones && availabilityZones.length > 0 && availabilityZones.length < zonesNeeded) {
        problems.push(
            `${key("availabilityZones")} = ${JSON.stringify(availabilityZones)} has ${availabilityZones.length} zone(s); ${zonesNeeded} are needed so that losing one zone cannot take a majority of the nodes`,
        );
    }
    const apiAllowedCidrs = reader.cidrList("apiAllowedCidrs");
    const sshAllowedCidrs = reader.cidrList("sshAllowedCidrs");
    const sshUser = reader.string("sshUser", (v) => (/^[a-z_][a-z0-9_-]{0,31}$/.test(v) ? undefined : "must be a Linux user name such as ubuntu"));
    const healthCheckPath = reader.oneOf("healthCheckPath", HEALTH_CHECK_PATHS);
    const protect = reader.boolean("protect");
    const rollNodes = reader.boolean("rollNodes");
    const cni = reader.oneOf("cni", CNIS);
    const monitoring = reader.boolean("monitoring");
    const etcdBackupRetention = reader.integer("etcdBackupRetention", 0, 1000);
    const etcdBackupInterval = reader.custom("etcdBackupInterval", parseBackupInterval);
    const etcdBackupBucket = reader.string("etcdBackupBucket", (v) => (v === "" ? undefined : bucketNameProblem(v)));
    const etcdBackupKmsKey = reader.custom("etcdBackupKmsKey", parseBackupEncryption);
    const etcdBackupS3RetentionDays = reader.integer("etcdBackupS3RetentionDays", 1, 3650);
    // Above the node timer's 30-day backstop (a maintained cluster renews under `pulumi up`), below a year.
    const certificateRenewalDays = reader.integer("certificateRenewalDays", 31, 300);
    const etcdRestoreFrom = reader.custom("etcdRestoreFrom", (v) => (v === "" ? { value: undefined } : parseS3Url(v)));
    const tags = reader.tags("tags");

    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
    const config: ClusterConfig = {
        clusterName: clusterName!,
        controlPlaneCount: controlPlaneCount!,
        etcdTopology: etcdTopology!,
        etcdCount: etcdCount!,
        kubernetesVersion: kubernetesVersion!,
        instanceType: instanceType!,
        etcdInstanceType: etcdInstanceType!,
        cpuCredits: cpuCredits!,
        ami: ami === "" ? undefined : ami,
        rootVolumeSizeGiB: rootVolumeSizeGiB!,
        vpcCidr: formatCidr(vpc!),
        availabilityZones: availabilityZones!,
        apiAllowedCidrs: apiAllowedCidrs!,
        sshAllowedCidrs: sshAllowedCidrs!,
        podCidr: formatCidr(podCidr!),
        serviceCidr: formatCidr(serviceCidr!),
        sshUser: sshUser!,
        healthCheckPath: healthCheckPath!,
        protect: protect!,
        rollNodes: rollNodes!,
        cni: cni!,
        monitoring: monitoring!,
        etcdBackupRetention: etcdBackupRetention!,
        etcdBackupInterval: etcdBackupInterval!,
        etcdBackupBucket: etcdBackupBucket === "" ? undefined : etcdBackupBucket,
        etcdBackupKmsKey: etcdBackupKmsKey!,
        etcdBackupS3RetentionDays: etcdBackupS3RetentionDays!,
        certificateRenewalDays: certificateRenewalDays!,
        etcdRestoreFrom,
        tags: tags!,
    };
    if (config.controlPlaneCount === 1) {
        warnings.push(`${key("controlPlaneCount")} = 1: a single control-plane node is not highly available`);
    }
    if (config.etcdTopology === "external" && config.etcdCount === 1) {
        warnings.push(`${key("etcdCount")} = 1: a single etcd member is not highly available`);
    }
    if (config.monitoring && config.cni === "none") {
        warnings.push(`${key("monitoring")} = true with ${key("cni")} = none: the alerting stack waits for the pod network you install`);
    }
    const unsupported = unsupportedMinor(config.kubernetesVersion.minor, today);
    if (unsupported) warnings.push(`${key("kubernetesVersion")} = ${config.kubernetesVersion.patch ?? config.kubernetesVersion.minor}: ${unsupported}`);
    if (config.sshAllowedCidrs.includes("0.0.0.0/0")) {
        warnings.push(`${key("sshAllowedCidrs")} allows SSH from anywhere; narrow it to your deployer's addresses`);
    }
    return { config, warnings };
}

/**
 * One problem per key the stack sets that Pulumi.yaml does not declare, with the closest declared key
 * (compared without case). The value is not shown: an undeclared key may hold a secret.
 */
export function unknownKeyProblems(setKeys: readonly string[]): string[] {
    return setKeys
        .filter((name) => !(DECLARED_KEYS as readonly string[]).includes(name))
        .sort()
        .map((name) => {
            const [nearest] = DECLARED_KEYS.map((declared) => ({ declared, d: distance(name.toLowerCase(), declared.toLowerCase()) })).sort(
                (a, b) => a.d - b.d,
            );
            const close = nearest.d <= Math.max(2, Math.floor(nearest.declared.length / 3));
            return (
                `${key(name)} is not a key this program declares in Pulumi.yaml, so it would be ignored; did you mean ${nearest.declared}?` +
                (close ? "" : ` (declared: ${DECLARED_KEYS.join(", ")})`)
            );
        });
}

/** An instance type the stack launches, and the zones its nodes are placed in. */
export interface InstanceTypeNeed {
    configKey: ConfigKey;
    instanceType: string;
    /** Zones its nodes are placed in. */
    zones: readonly string[];
}

/**
 * Checks each instance type against the (type, zone) pairs EC2 offers, so a type missing in a chosen
 * zone fails before any resource instead of at RunInstances after the network is built.
 */
export function offeringProblems(needs: readonly InstanceTypeNeed[], offered: readonly { instanceType: string; zone: string }[]): string[] {
    return needs.flatMap(({ configKey, instanceType, zones }) => {
        const unique = [...new Set(zones)].sort();
        const lacking = unique.filter((zone) => !offered.some((o) => o.instanceType === instanceType && o.zone === zone));
        if (lacking.length === 0) return [];
        return [
            `${key(configKey)} = "${instanceType}" is not offered in ${lacking.join(", ")} (its nodes go to ${unique.join(", ")}); allowed: an instance type offered in every one of those zones, or ${key("availabilityZones")} set to zones that offer it`,
        ];
    });
}

/** Number of zones a placement needs: every node in its own zone, up to three. */
export function requiredZoneCount(nodeCount: number): number {
    return Math.min(nodeCount, 3);
}

export function key(name: string): string {
    return `${PROJECT}:${name}`;
}

/** A value as the user wrote it: lists and maps as their JSON, scalars quoted. */
function show(raw: string): string {
    return /^\s*[[{]/.test(raw) ? raw : JSON.stringify(raw);
}

function instanceTypeShape(v: string): string | undefined {
    return /^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(v) ? undefined : "must be an EC2 instance type such as t3.medium or m7g.large";
}

export function parseKubernetesVersion(v: string): { value: KubernetesVersion } | { error: string } {
    const match = /^1\.(\d{2})(?:\.(\d{1,3}))?$/.exec(v);
    if (!match || Number(match[1]) < MIN_KUBERNETES_MINOR) {
        return {
            error: `must be a Kubernetes release such as 1.37.2 (or a minor such as 1.37, its newest patch), at least 1.${MIN_KUBERNETES_MINOR} for kubeadm's v1beta4 configuration`,
        };
    }
    const minor = `1.${Number(match[1])}`;
    return { value: match[2] === undefined ? { minor } : { minor, patch: `${minor}.${Number(match[2])}` } };
}

function checkDisjoint(problems: string[], blocks: [ConfigKey, Cidr | undefined][]): void {
    for (let i = 0; i < blocks.length; i++) {
        for (let j = i + 1; j < blocks.length; j++) {
            const [ka, a] = blocks[i];
            const [kb, b] = blocks[j];
            if (a && b && overlaps(a, b)) {
                problems.push(`${key(ka)} = ${formatCidr(a)} overlaps ${key(kb)} = ${formatCidr(b)}: the VPC, pod and service ranges must not share addresses`);
            }
        }
    }
}

/** Reads one key at a time, applying its default and recording a problem instead of throwing. */
class Reader {
    constructor(
        private readonly lookup: RawLookup,
        private readonly problems: string[],
    ) {}

    private raw(name: ConfigKey): string | undefined {
        return this.lookup(name);
    }

    private fail(name: ConfigKey, raw: string, why: string): undefined {
        this.problems.push(`${key(name)} = ${show(raw)} ${why}`);
        return undefined;
    }

    string(name: ConfigKey, check: (v: string) => string | undefined): string | undefined {
        return this.custom(name, (v) => {
            const why = check(v);
            return why === undefined ? { value: v } : { error: why };
        });
    }

    custom<T>(name: ConfigKey, parse: (v: string) => { value: T } | { error: string }): T | undefined {
        const raw = this.raw(name) ?? (DEFAULTS[name] as string);
        const parsed = parse(raw);
        return "error" in parsed ? this.fail(name, raw, parsed.error) : parsed.value;
    }

    oneOf<T extends string>(name: ConfigKey, allowed: readonly T[]): T | undefined {
        return this.custom<T>(name, (v) =>
            (allowed as readonly string[]).includes(v) ? { value: v as T } : { error: `is not allowed; allowed: ${allowed.join(", ")}` },
        );
    }

    integer(name: ConfigKey, min: number, max: number): number | undefined {
        const raw = this.raw(name);
        if (raw === undefined) return DEFAULTS[name] as number;
        if (!/^-?\d+$/.test(raw.trim())) return this.fail(name, raw, `is not a whole number; allowed: ${min} to ${max}`);
        const n = Number(raw.trim());
        return n < min || n > max ? this.fail(name, raw, `is out of range; allowed: ${min} to ${max}`) : n;
    }

    boolean(name: ConfigKey): boolean | undefined {
        const raw = this.raw(name);
        if (raw === undefined) return DEFAULTS[name] as boolean;
        if (raw === "true" || raw === "false") return raw === "true";
        return this.fail(name, raw, "is not allowed; allowed: true, false");
    }

    private json(name: ConfigKey): { value: unknown; raw: string } | undefined {
        const raw = this.raw(name);
        if (raw === undefined) return { value: DEFAULTS[name], raw: JSON.stringify(DEFAULTS[name]) };
        try {
            return { value: JSON.parse(raw), raw };
        } catch {
            return this.fail(name, raw, "is not valid JSON; set it as a YAML list or map in the stack file");
        }
    }

    stringList(name: ConfigKey, check: (values: string[]) => string | undefined): string[] | undefined {
        const parsed = this.json(name);
        if (parsed === undefined) return undefined;
        const { value, raw } = parsed;
        if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
            return this.fail(name, raw, "must be a list of strings");
        }
        const why = check(value as string[]);
        return why === undefined ? (value as string[]) : this.fail(name, raw, why);
    }

    cidr(name: ConfigKey, minPrefix: number, maxPrefix: number, reason: string): Cidr | undefined {
        return this.custom(name, (v) => {
            const parsed = parseCidr(v);
            if (!isCidr(parsed)) return parsed;
            if (parsed.prefix < minPrefix || parsed.prefix > maxPrefix) return { error: `must be a block from /${minPrefix} to /${maxPrefix} (${reason})` };
            return { value: parsed };
        });
    }

    cidrList(name: ConfigKey): string[] | undefined {
        return this.stringList(name, (values) => {
            if (values.length === 0) return "must list at least one CIDR block";
            for (const v of values) {
                const parsed = parseCidr(v);
                if (!isCidr(parsed)) return `has ${show(v)}, which ${parsed.error}`;
            }
            return undefined;
        });
    }

    /** Tags as "key=value" strings: Pulumi.yaml's config schema has no map type. */
    tags(name: ConfigKey): Record<string, string> | undefined {
        const list = this.stringList(name, (values) => {
            const bad = values.find((v) => !/^[^=]{1,128}=.{0,256}$/.test(v) || v.toLowerCase().startsWith("aws:"));
            if (bad !== undefined) return `has ${show(bad)}; each tag is "key=value", the key 1-128 characters not starting with aws:`;
            if (values.length > 40) return "has more than 40 tags (AWS allows 50 and this program adds its own)";
            return undefined;
        });
        if (list === undefined) return undefined;
        return Object.fromEntries(list.map((v) => [v.slice(0, v.indexOf("=")), v.slice(v.indexOf("=") + 1)]));
    }
}
