/** The policy pack, both ways: the program's own resources pass; a broken resource of each kind is reported. */
import { gzipSync } from "node:zlib";
import type { PolicyResource, ResourceValidationArgs, StackValidationArgs } from "@pulumi/policy";
import {
    apiHealthCheck,
    controlPlaneSpread,
    encryptedRootVolume,
    etcdQuorumKept,
    imdsV2,
    MAX_DETECTION_SECONDS,
    noPrivatePortsToWorld,
    noSecretsInUserData,
    policies,
} from "../policy/policies";
import { ProgramRun, runProgram } from "./harness";
import { runRecording } from "./recording";

type ResourceLike = { type: string; name: string; props: Record<string, any> };

function notApplicable(reason?: string): never {
    throw new Error(`not applicable: ${reason}`);
}

/**
 * Violations a resource policy reports for one resource. `config` is the policy's entry in the policy
 * pack config; as the Pulumi CLI does, its schema's defaults fill what it leaves out.
 */
async function resourceViolations(policy: (typeof policies)[number], resource: ResourceLike, config: Record<string, unknown> = {}): Promise<string[]> {
    if (!("validateResource" in policy) || !policy.validateResource) return [];
    const reported: string[] = [];
    const validations = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
    const defaults = Object.fromEntries(Object.entries(policy.configSchema?.properties ?? {}).map(([key, schema]) => [key, schema.default]));
    const getConfig = () => ({ ...defaults, ...config });
    const args = {
        ...resource,
        urn: `urn:pulumi:test::kubeadm-ha::${resource.type}::${resource.name}`,
        notApplicable,
        getConfig,
    } as unknown as ResourceValidationArgs;
    for (const validate of validations) await validate(args, (message) => reported.push(message));
    return reported;
}

async function stackViolations(resources: ResourceLike[], policy = controlPlaneSpread): Promise<string[]> {
    const reported: string[] = [];
    const args = { resources: resources as unknown as PolicyResource[], notApplicable } as unknown as StackValidationArgs;
    await policy.validateStack(args, (message) => reported.push(message));
    return reported;
}

const asPolicyResources = (run: ProgramRun): ResourceLike[] => run.resources.map((r) => ({ type: r.type, name: r.name, props: { ...r.inputs, ...r.state } }));

describe.each([
    ["stacked", {}],
    ["external", { etcdTopology: "external" }],
])("the program's own resources (%s etcd)", (_label, config) => {
    let resources: ResourceLike[];
    beforeAll(async () => {
        resources = asPolicyResources(await runProgram(config));
    });

    it("pass every resource policy", async () => {
        const violations: string[] = [];
        for (const policy of policies)
            for (const r of resources) violations.push(...(await resourceViolations(policy, r)).map((v) => `${policy.name} ${r.name}: ${v}`));
        expect(violations).toEqual([]);
    });

    it("have their user data on launch templates, where the user-data rule reads it: a key planted there fails it", async () => {
        const templates = resources.filter((r) => r.type === "aws:ec2/launchTemplate:LaunchTemplate");
        expect(templates.length).toBeGreaterThan(0);
        for (const template of templates) {
            expect(await resourceViolations(noSecretsInUserData, template)).toEqual([]);
            const script = Buffer.from(template.props.userData, "base64").toString("utf8");
            const planted = `${script}\ncat > /etc/kubernetes/pki/ca.key <<EOF\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nEOF\n`;
            const withKey = { ...template, props: { ...template.props, userData: Buffer.from(planted).toString("base64") } };
            expect(await resourceViolations(noSecretsInUserData, withKey)).toEqual(["user data contains a private key"]);
        }
    });

    it("pass the control-plane spread policy", async () => {
        expect(await stackViolations(resources)).toEqual([]);
    });

    it("pass the etcd quorum policy, as a new cluster and run again on itself", async () => {
        expect(await stackViolations(resources, etcdQuorumKept)).toEqual([]);
        const first = await runProgram(config);
        const { run, registeredOutputs } = runRecording(config, { previousOutputs: first.outputs });
        // A stack policy sees a component's registered outputs.
        const again = asPolicyResources(await run).map((r) => (r.name === "kubeadm-ha-lifecycle" ? { ...r, props: registeredOutputs.get(r.name)! } : r));
        expect(again.find((r) => r.name === "kubeadm-ha-lifecycle")?.props.running).toEqual(first.outputs.lifecycle);
        expect(await stackViolations(again, etcdQuorumKept)).toEqual([]);
    });
});

describe("broken resources are reported", () => {
    const instance = (props: Record<string, any>): ResourceLike => ({
        type: "aws:ec2/instance:Instance",
        name: "bad",
        props: { metadataOptions: { httpTokens: "required" }, rootBlockDevice: { encrypted: true }, userData: "#!/bin/bash\n", ...props },
    });

    it("an instance that allows IMDSv1", async () => {
        expect(await resourceViolations(imdsV2, instance({ metadataOptions: { httpTokens: "optional" } }))).toEqual([
            "the instance allows IMDSv1; set metadataOptions.httpTokens to required",
        ]);
    });

    it("an unencrypted root volume", async () => {
        expect(await resourceViolations(encryptedRootVolume, instance({ rootBlockDevice: { volumeType: "gp3" } }))).toHaveLength(1);
    });

    it("a private key or a bootstrap token in user data, also base64-encoded", async () => {
        const key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n";
        expect(await resourceViolations(noSecretsInUserData, instance({ userData: `cat > /etc/k.pem <<EOF\n${key}EOF` }))).toEqual([
            "user data contains a private key",
        ]);
        expect(
            await resourceViolations(
                noSecretsInUserData,
                instance({ userData: undefined, userDataBase64: Buffer.from("kubeadm join --token abcdef.0123456789abcdef").toString("base64") }),
            ),
        ).toEqual(["user data contains what looks like a kubeadm bootstrap token"]);
    });

    it("a private key or a bootstrap token in a launch template's user data, base64 and also gzip-compressed", async () => {
        const template = (userData: Buffer): ResourceLike => ({
            type: "aws:ec2/launchTemplate:LaunchTemplate",
            name: "bad",
            props: { imageId: "ami-0123456789abcdef0", userData: userData.toString("base64") },
        });
        const key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n";
        expect(await resourceViolations(noSecretsInUserData, template(Buffer.from(`#!/bin/bash\necho '${key}' > /etc/k.pem\n`)))).toEqual([
            "user data contains a private key",
        ]);
        expect(await resourceViolations(noSecretsInUserData, template(gzipSync("#!/bin/bash\nkubeadm join --token abcdef.0123456789abcdef\n")))).toEqual([
            "user data contains what looks like a kubeadm bootstrap token",
        ]);
        expect(await resourceViolations(noSecretsInUserData, template(Buffer.from("#!/bin/bash\napt-get install -y kubeadm\n")))).toEqual([]);
    });

    const group = (healthCheck: Record<string, unknown>): ResourceLike => ({
        type: "aws:lb/targetGroup:TargetGroup",
        name: "api",
        props: { port: 6443, healthCheck: { interval: 5, unhealthyThreshold: 2, ...healthCheck } },
    });

    it("a TCP or HTTP health check on the API", async () => {
        expect(await resourceViolations(apiHealthCheck, group({ protocol: "TCP", port: "6443" }))).toEqual([
            "the API health check uses TCP; it must be HTTPS",
            "the API health check path is unset; use one of /healthz, /readyz, /livez",
        ]);
        expect(await resourceViolations(apiHealthCheck, group({ protocol: "HTTPS", port: "443", path: "/healthz" }))).toEqual([
            "the API health check probes port 443; it must be 6443",
        ]);
    });

    it("an API health check that keeps a dead API server in rotation longer than 10 s", async () => {
        const https = { protocol: "HTTPS", port: "6443", path: "/readyz" };
        expect(MAX_DETECTION_SECONDS).toBe(10);
        expect(await resourceViolations(apiHealthCheck, group({ ...https, interval: 5, unhealthyThreshold: 2 }))).toEqual([]);
        expect(await resourceViolations(apiHealthCheck, group({ ...https, interval: 10, unhealthyThreshold: 2 }))).toEqual([
            "the API health check takes a dead API server out after 10 s x 2 = 20 s; at most 10 s is allowed (interval 5, unhealthyThreshold 2 reach 10 s)",
        ]);
        expect(await resourceViolations(apiHealthCheck, group({ ...https, interval: 5, unhealthyThreshold: 3 }))).toHaveLength(1);
        // Left unset, AWS checks an NLB target every 30 s and needs 2 failures: 60 s.
        expect(await resourceViolations(apiHealthCheck, group({ ...https, interval: undefined, unhealthyThreshold: undefined }))).toEqual([
            "the API health check takes a dead API server out after 30 s x 2 = 60 s; at most 10 s is allowed (interval 5, unhealthyThreshold 2 reach 10 s)",
        ]);
    });

    it("a looser detection bound set in the policy pack config", async () => {
        const slow = group({ protocol: "HTTPS", port: "6443", path: "/healthz", interval: 10, unhealthyThreshold: 2 });
        expect(apiHealthCheck.configSchema?.properties.maxDetectionSeconds).toMatchObject({ type: "integer", default: 10, minimum: 10 });
        expect(await resourceViolations(apiHealthCheck, slow, { maxDetectionSeconds: 20 })).toEqual([]);
        expect(await resourceViolations(apiHealthCheck, slow, { maxDetectionSeconds: 15 })).toEqual([
            "the API health check takes a dead API server out after 10 s x 2 = 20 s; at most 15 s is allowed (interval 5, unhealthyThreshold 2 reach 10 s)",
        ]);
    });

    it.each([
        [
            "an ingress rule resource for etcd",
            {
                type: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                props: { ipProtocol: "tcp", fromPort: 2379, toPort: 2380, cidrIpv4: "0.0.0.0/0" },
            },
            "2379, 2380",
        ],
        [
            "an all-protocols rule over IPv6",
            { type: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", props: { ipProtocol: "-1", cidrIpv6: "::/0" } },
            "2379, 2380, 10250, 10257, 10259",
        ],
        [
            "an inline security group rule for the kubelet",
            {
                type: "aws:ec2/securityGroup:SecurityGroup",
                props: { ingress: [{ protocol: "tcp", fromPort: 10000, toPort: 11000, cidrBlocks: ["0.0.0.0/0"] }] },
            },
            "10250, 10257, 10259",
        ],
        [
            "a legacy security group rule",
            {
                type: "aws:ec2/securityGroupRule:SecurityGroupRule",
                props: { type: "ingress", protocol: "tcp", fromPort: 10259, toPort: 10259, cidrBlocks: ["0.0.0.0/0"] },
            },
            "10259",
        ],
    ])("%s open to the world", async (_label, resource, ports) => {
        expect(await resourceViolations(noPrivatePortsToWorld, { name: "open", ...resource })).toEqual([
            `port(s) ${ports} are open to the internet; allow them only from the cluster's security groups`,
        ]);
    });

    it("leaves the API and SSH open to the world alone", async () => {
        const rule = (port: number): ResourceLike => ({
            type: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            name: "ok",
            props: { ipProtocol: "tcp", fromPort: port, toPort: port, cidrIpv4: "0.0.0.0/0" },
        });
        expect(await resourceViolations(noPrivatePortsToWorld, rule(6443))).toEqual([]);
        expect(await resourceViolations(noPrivatePortsToWorld, rule(22))).toEqual([]);
    });

    it("a control plane of one node, or three nodes crowded into one zone", async () => {
        const subnets = ["a", "b", "c"].map((z) => ({ type: "aws:ec2/subnet:Subnet", name: z, props: { availabilityZone: `us-east-1${z}` } }));
        const node = (zone: string) => instance({ tags: { "kubeadm-ha/role": "control-plane" }, availabilityZone: zone });
        expect(await stackViolations([...subnets, node("us-east-1a")])).toEqual([
            "the control plane has 1 node(s); an HA control plane needs at least 3",
            "control-plane nodes use 1 zone(s) (us-east-1a); at least 3 are needed",
        ]);
        expect(await stackViolations([...subnets, node("us-east-1a"), node("us-east-1a"), node("us-east-1b")])).toEqual([
            "control-plane nodes use 2 zone(s) (us-east-1a, us-east-1b); at least 3 are needed",
        ]);
    });
});

describe("etcd-quorum-kept", () => {
    const node = (role: string, cluster = "kubeadm-ha"): ResourceLike => ({
        type: "aws:ec2/instance:Instance",
        name: role,
        props: { tags: { "kubeadm-ha/cluster": cluster, "kubeadm-ha/role": role } },
    });
    const nodes = (count: number, role: string, cluster?: string) => Array.from({ length: count }, () => node(role, cluster));
    const running = (record: Record<string, unknown>): ResourceLike => ({
        type: "kubeadm-ha:lifecycle:ClusterLifecycle",
        name: "kubeadm-ha-lifecycle",
        props: { running: { clusterName: "kubeadm-ha", etcdTopology: "stacked", controlPlaneCount: 3, etcdCount: 0, formatVersion: 1, ...record } },
    });
    const external = { etcdTopology: "external", etcdCount: 3 };

    it.each([
        ["stacked 5 to 3", running({ controlPlaneCount: 5 }), nodes(3, "control-plane")],
        ["stacked 3 to 5", running({}), nodes(5, "control-plane")],
        ["external 5 to 3 members, and API servers 3 to 1", running({ ...external, etcdCount: 5 }), [...nodes(1, "control-plane"), ...nodes(3, "etcd")]],
        ["a new cluster (no running record)", { ...running({}), props: {} }, nodes(1, "control-plane")],
    ])("allows %s", async (_label, lifecycle, instances) => {
        expect(await stackViolations([lifecycle, ...instances], etcdQuorumKept)).toEqual([]);
    });

    it.each([
        [
            "stacked 7 to 3 at once",
            running({ controlPlaneCount: 7 }),
            nodes(3, "control-plane"),
            "the running cluster has 7 stacked etcd member(s) and the plan keeps 3: removing 4 at once leaves fewer than the 4 a majority of 7 needs, and etcd would lose quorum; remove members in steps that each keep a majority",
        ],
        [
            "external 3 to 1",
            running(external),
            [...nodes(3, "control-plane"), ...nodes(1, "etcd")],
            "the running cluster has 3 external etcd member(s) and the plan keeps 1: removing 2 at once leaves fewer than the 2 a majority of 3 needs, and etcd would lose quorum; remove members in steps that each keep a majority",
        ],
        [
            "stacked to external",
            running({}),
            [...nodes(3, "control-plane"), ...nodes(3, "etcd")],
            "the running cluster has 3 stacked etcd member(s) and the plan keeps 0 (the plan moves etcd onto nodes of its own, a new, empty etcd): removing 3 at once leaves fewer than the 2 a majority of 3 needs, and etcd would lose quorum; remove members in steps that each keep a majority",
        ],
        [
            "a renamed cluster",
            running({}),
            nodes(3, "control-plane", "renamed"),
            "the running cluster has 3 stacked etcd member(s) and the plan keeps 0 (no planned instance belongs to cluster kubeadm-ha): removing 3 at once leaves fewer than the 2 a majority of 3 needs, and etcd would lose quorum; remove members in steps that each keep a majority",
        ],
    ])("reports %s", async (_label, lifecycle, instances, message) => {
        expect(await stackViolations([lifecycle, ...instances], etcdQuorumKept)).toEqual([message]);
    });
});

describe("the pack", () => {
    it("enforces every rule as mandatory", () => {
        expect(policies.map((p) => [p.name, p.enforcementLevel])).toEqual(policies.map((p) => [p.name, "mandatory"]));
    });
});
