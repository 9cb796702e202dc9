/**
 * Guardrails for an HA kubeadm control plane on AWS, checked on what `pulumi preview` would create.
 * Resource rules see a resource's inputs; the stack rule sees every resource.
 */
import { gunzipSync } from "node:zlib";
import type { Policies, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";

/** A resource's inputs, as @pulumi/policy types them. */
type Props = ResourceValidationArgs["props"];

const INSTANCE = "aws:ec2/instance:Instance";
const LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate";
const SUBNET = "aws:ec2/subnet:Subnet";
const TARGET_GROUP = "aws:lb/targetGroup:TargetGroup";
const INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";
const SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup";
const SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule";
/** The program's record of the running and the requested cluster (components/lifecycle.ts). */
const CLUSTER_LIFECYCLE = "kubeadm-ha:lifecycle:ClusterLifecycle";

/** etcd client and peer, kubelet, kube-controller-manager, kube-scheduler. */
export const PRIVATE_PORTS = [2379, 2380, 10250, 10257, 10259];
const WORLD = ["0.0.0.0/0", "::/0"];
const HEALTH_PATHS = ["/healthz", "/readyz", "/livez"];

function resourcePolicy(name: string, description: string, type: string, check: (props: Props, report: ReportViolation) => void): ResourceValidationPolicy {
    return {
        name,
        description,
        enforcementLevel: "mandatory",
        validateResource: (args, report) => {
            if (args.type === type) check(args.props, report);
        },
    };
}

/** Whether an ingress rule from anywhere opens one of the private control-plane ports. */
function opensPrivatePortToWorld(rule: { protocol?: string; fromPort?: number; toPort?: number; cidrs: string[] }): number[] {
    if (!rule.cidrs.some((c) => WORLD.includes(c))) return [];
    if (rule.protocol === "-1" || rule.protocol === "all") return PRIVATE_PORTS;
    if (rule.protocol !== undefined && rule.protocol !== "tcp" && rule.protocol !== "6") return [];
    const from = rule.fromPort ?? 0;
    const to = rule.toPort ?? 65535;
    return PRIVATE_PORTS.filter((p) => p >= from && p <= to);
}

const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
const BOOTSTRAP_TOKEN = /\b[a-z0-9]{6}\.[a-z0-9]{16}\b/;

/** Base64 user data as cloud-init reads it: gzip-compressed or not. */
function decodeBase64UserData(value: unknown): string {
    if (typeof value !== "string") return "";
    const bytes = Buffer.from(value, "base64");
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
        try {
            return gunzipSync(bytes).toString("utf8");
        } catch {
            // Not gzip after all: read it as it is.
        }
    }
    return bytes.toString("utf8");
}

/**
 * The user data a resource hands to the instances it launches: an instance's `userData` (plain text)
 * or `userDataBase64`, or a launch template's `userData` (base64, always).
 */
function userDataOf(type: string, props: Props): string {
    if (type === LAUNCH_TEMPLATE) return decodeBase64UserData(props.userData);
    return `${typeof props.userData === "string" ? props.userData : ""}\n${decodeBase64UserData(props.userDataBase64)}`;
}

export const controlPlaneSpread: StackValidationPolicy = {
    name: "control-plane-spread",
    description: "At least 3 control-plane nodes, spread over at least 3 zones (or every configured zone if fewer).",
    enforcementLevel: "mandatory",
    validateStack: (args, report) => {
        const nodes = args.resources.filter((r) => r.type === INSTANCE && r.props.tags?.["kubeadm-ha/role"] === "control-plane");
        if (nodes.length < 3) {
            report(`the control plane has ${nodes.length} node(s); an HA control plane needs at least 3`);
        }
        const configuredZones = new Set(args.resources.filter((r) => r.type === SUBNET).map((r) => r.props.availabilityZone));
        const usedZones = new Set(nodes.map((n) => n.props.availabilityZone));
        const needed = Math.min(3, Math.max(configuredZones.size, 1));
        if (usedZones.size < needed) {
            report(`control-plane nodes use ${usedZones.size} zone(s) (${[...usedZones].join(", ")}); at least ${needed} are needed`);
        }
    },
};

/**
 * etcd accepts writes only while a majority of its members is up, so one run may remove members only
 * while a majority of the running ones stays. The running membership comes from the program's
 * ClusterLifecycle resource (what the stack's last update applied; a policy pack sees the resources a
 * program registers, not the StackReference it reads that from), the planned one from the instances
 * that carry etcd: control-plane nodes with stacked etcd, etcd nodes with external etcd.
 */
export const etcdQuorumKept: StackValidationPolicy = {
    name: "etcd-quorum-kept",
    description: "No run removes more etcd members at once than a majority of the running members allows.",
    enforcementLevel: "mandatory",
    validateStack: (args, report) => {
        const running = args.resources.find((r) => r.type === CLUSTER_LIFECYCLE)?.props.running;
        // A new cluster, or a record this rule does not know: nothing runs yet that a plan could break.
        if (running?.formatVersion !== 1) return;
        const external = running.etcdTopology === "external";
        const members: number = external ? running.etcdCount : running.controlPlaneCount;
        const instances = args.resources.filter((r) => r.type === INSTANCE && r.props.tags?.["kubeadm-ha/cluster"] === running.clusterName);
        const plannedExternal = instances.some((r) => r.props.tags?.["kubeadm-ha/role"] === "etcd");
        const kept =
            plannedExternal === external ? instances.filter((r) => r.props.tags?.["kubeadm-ha/role"] === (external ? "etcd" : "control-plane")).length : 0;
        const majority = Math.floor(members / 2) + 1;
        if (kept >= members || kept >= majority) return;
        const why =
            plannedExternal !== external
                ? ` (the plan moves etcd ${external ? "onto the control-plane nodes" : "onto nodes of its own"}, a new, empty etcd)`
                : instances.length === 0
                  ? ` (no planned instance belongs to cluster ${running.clusterName})`
                  : "";
        report(
            `the running cluster has ${members} ${running.etcdTopology} etcd member(s) and the plan keeps ${kept}${why}: removing ${members - kept} at once leaves fewer than the ${majority} a majority of ${members} needs, and etcd would lose quorum; remove members in steps that each keep a majority`,
        );
    },
};

/**
 * How long a dead API server may stay in rotation: interval x unhealthy threshold. 10 s is the floor a
 * Network Load Balancer allows (5 s interval, threshold 2); loosen it with the policy pack config, e.g.
 * `{"api-health-check-https": {"maxDetectionSeconds": 30}}` passed by `--policy-pack-config`.
 */
export const MAX_DETECTION_SECONDS = 10;
/** What AWS uses for an NLB target group's health check when the program leaves a value unset. */
const NLB_DEFAULT_INTERVAL_SECONDS = 30;
const NLB_DEFAULT_UNHEALTHY_THRESHOLD = 2;

export const apiHealthCheck: ResourceValidationPolicy = {
    name: "api-health-check-https",
    description:
        "The API target group health-checks HTTPS on 6443 at a health path (a TCP check passes on a wedged API server) and takes a dead API server out within maxDetectionSeconds (interval x unhealthy threshold).",
    enforcementLevel: "mandatory",
    configSchema: {
        properties: {
            maxDetectionSeconds: {
                type: "integer",
                default: MAX_DETECTION_SECONDS,
                minimum: MAX_DETECTION_SECONDS,
                description: "Longest allowed interval x unhealthy threshold, in seconds; 10 is the least an NLB allows.",
            },
        },
    },
    validateResource: (args, report) => {
        if (args.type !== TARGET_GROUP) return;
        const props = args.props;
        if (props.port !== 6443) return;
        const check = props.healthCheck ?? {};
        if (check.protocol !== "HTTPS") report(`the API health check uses ${check.protocol ?? "the default protocol"}; it must be HTTPS`);
        if (check.port !== undefined && check.port !== "6443" && check.port !== "traffic-port")
            report(`the API health check probes port ${check.port}; it must be 6443`);
        if (!HEALTH_PATHS.includes(check.path)) report(`the API health check path is ${check.path ?? "unset"}; use one of ${HEALTH_PATHS.join(", ")}`);
        const maxSeconds = args.getConfig<{ maxDetectionSeconds?: number }>().maxDetectionSeconds ?? MAX_DETECTION_SECONDS;
        const interval = check.interval ?? NLB_DEFAULT_INTERVAL_SECONDS;
        const threshold = check.unhealthyThreshold ?? NLB_DEFAULT_UNHEALTHY_THRESHOLD;
        if (interval * threshold > maxSeconds) {
            report(
                `the API health check takes a dead API server out after ${interval} s x ${threshold} = ${interval * threshold} s; at most ${maxSeconds} s is allowed (interval 5, unhealthyThreshold 2 reach 10 s)`,
            );
        }
    },
};

export const noPrivatePortsToWorld: ResourceValidationPolicy = {
    name: "no-private-ports-to-world",
    description: "No etcd, kubelet, controller-manager or scheduler port is open to 0.0.0.0/0 or ::/0.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        const rules: { protocol?: string; fromPort?: number; toPort?: number; cidrs: string[] }[] = [];
        const p = args.props;
        if (args.type === INGRESS_RULE) {
            rules.push({ protocol: p.ipProtocol, fromPort: p.fromPort, toPort: p.toPort, cidrs: [p.cidrIpv4, p.cidrIpv6].filter(Boolean) });
        } else if (args.type === SECURITY_GROUP_RULE && p.type === "ingress") {
            rules.push({ protocol: p.protocol, fromPort: p.fromPort, toPort: p.toPort, cidrs: [...(p.cidrBlocks ?? []), ...(p.ipv6CidrBlocks ?? [])] });
        } else if (args.type === SECURITY_GROUP) {
            for (const r of p.ingress ?? [])
                rules.push({ protocol: r.protocol, fromPort: r.fromPort, toPort: r.toPort, cidrs: [...(r.cidrBlocks ?? []), ...(r.ipv6CidrBlocks ?? [])] });
        }
        for (const rule of rules) {
            const ports = opensPrivatePortToWorld(rule);
            if (ports.length > 0) report(`port(s) ${ports.join(", ")} are open to the internet; allow them only from the cluster's security groups`);
        }
    },
};

export const imdsV2 = resourcePolicy("imdsv2-required", "Instances require IMDSv2 session tokens.", INSTANCE, (props, report) => {
    if (props.metadataOptions?.httpTokens !== "required") report("the instance allows IMDSv1; set metadataOptions.httpTokens to required");
});

export const encryptedRootVolume = resourcePolicy("root-volume-encrypted", "Instance root volumes are encrypted.", INSTANCE, (props, report) => {
    if (props.rootBlockDevice?.encrypted !== true) report("the instance's root volume is not encrypted; set rootBlockDevice.encrypted to true");
});

/** On instances and on the launch templates the program's instances are launched from. */
export const noSecretsInUserData: ResourceValidationPolicy = {
    name: "no-secrets-in-user-data",
    description:
        "User data holds no private key or bootstrap token, on instances or launch templates: anyone with ec2:DescribeInstanceAttribute or ec2:DescribeLaunchTemplateVersions can read it.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        if (args.type !== INSTANCE && args.type !== LAUNCH_TEMPLATE) return;
        const userData = userDataOf(args.type, args.props);
        if (PRIVATE_KEY.test(userData)) report("user data contains a private key");
        if (BOOTSTRAP_TOKEN.test(userData)) report("user data contains what looks like a kubeadm bootstrap token");
    },
};

export const policies: Policies = [controlPlaneSpread, etcdQuorumKept, apiHealthCheck, noPrivatePortsToWorld, imdsV2, encryptedRootVolume, noSecretsInUserData];
