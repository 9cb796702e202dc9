import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ConfigError, DECLARED_KEYS, DEFAULTS, isBurstable, offeringProblems, parseConfig, unsupportedMinor } from "../core/config";
import { runProgram } from "./harness";

/**
 * Parses a config given as the strings Pulumi hands a program (lists and maps as JSON); the stack
 * sets exactly the keys given, as the program sees them in its namespace.
 */
/** The day the default release was chosen: support warnings are judged on it, not on the day the test runs. */
const TODAY = "2026-12-03";

function parseWith(values: Record<string, unknown>, today = TODAY) {
    return parseConfig(
        (k) => {
            const v = values[k];
            return v === undefined ? undefined : typeof v === "string" ? v : JSON.stringify(v);
        },
        Object.keys(values),
        today,
    );
}

function problemsOf(values: Record<string, unknown>): string[] {
    try {
        parseWith(values);
    } catch (err) {
        if (err instanceof ConfigError) return err.problems;
        throw err;
    }
    throw new Error(`expected ${JSON.stringify(values)} to be rejected`);
}

describe("stack configuration", () => {
    it("accepts the defaults and fills every key", () => {
        const { config, warnings } = parseWith({});
        expect(config).toEqual({
            clusterName: "kubeadm-ha",
            controlPlaneCount: 3,
            etcdTopology: "stacked",
            etcdCount: 3,
            kubernetesVersion: { minor: "1.37", patch: "1.37.2" },
            instanceType: "t3.medium",
            etcdInstanceType: "t3.small",
            cpuCredits: "standard",
            ami: undefined,
            rootVolumeSizeGiB: 30,
            vpcCidr: "10.0.0.0/16",
            availabilityZones: [],
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
            etcdBackupInterval: { text: "15m", seconds: 900, onCalendar: "*-*-* *:00/15:00" },
            etcdBackupBucket: undefined,
            etcdBackupKmsKey: { kind: "sse-s3" },
            etcdBackupS3RetentionDays: 14,
            certificateRenewalDays: 60,
            etcdRestoreFrom: undefined,
            tags: {},
        });
        expect(warnings).toEqual(["kubeadm-ha:sshAllowedCidrs allows SSH from anywhere; narrow it to your deployer's addresses"]);
    });

    it("declares in Pulumi.yaml exactly the keys and defaults the parser applies", () => {
        const project = parse(readFileSync(join(__dirname, "..", "Pulumi.yaml"), "utf8"));
        const declared = Object.fromEntries(
            Object.entries(project.config as Record<string, { default: unknown; description: string }>).map(([k, v]) => [k, v.default]),
        );
        expect(declared).toEqual(DEFAULTS);
        // The list unknown keys are checked against is that same set.
        expect([...DECLARED_KEYS].sort()).toEqual(Object.keys(project.config).sort());
        for (const [k, v] of Object.entries(project.config as Record<string, { description?: string; type?: string }>)) {
            expect([k, typeof v.description, typeof v.type]).toEqual([k, "string", "string"]);
        }
    });

    it.each([
        ["Pulumi.dev.yaml", "stacked"],
        ["Pulumi.external.yaml", "external"],
    ])("parses the example stack %s (%s etcd) without a problem", (file, topology) => {
        const stack = parse(readFileSync(join(__dirname, "..", file), "utf8")).config as Record<string, unknown>;
        const own = Object.fromEntries(
            Object.entries(stack)
                .filter(([k]) => k.startsWith("kubeadm-ha:"))
                .map(([k, v]) => [k.slice("kubeadm-ha:".length), typeof v === "string" ? v : JSON.stringify(v)]),
        );
        const { config } = parseWith(own);
        expect([config.etcdTopology, config.tags]).toEqual([topology, { environment: "dev" }]);
    });

    it("reads pinned releases, tags and overrides", () => {
        const { config, warnings } = parseWith({
            kubernetesVersion: "1.36.4",
            tags: ["team=platform", "cost-centre=k8s=core"],
            ami: "ami-0123456789abcdef0",
            controlPlaneCount: "1",
            sshAllowedCidrs: ["198.51.100.0/24"],
        });
        expect(config.kubernetesVersion).toEqual({ minor: "1.36", patch: "1.36.4" });
        expect(config.tags).toEqual({ team: "platform", "cost-centre": "k8s=core" });
        expect(config.ami).toBe("ami-0123456789abcdef0");
        expect(warnings).toEqual(["kubeadm-ha:controlPlaneCount = 1: a single control-plane node is not highly available"]);
    });

    it("defaults to an exact release of a minor in upstream support, and warns about a minor past its support", () => {
        const versionWarnings = (values: Record<string, unknown>, today = TODAY) =>
            parseWith(values, today).warnings.filter((w) => w.startsWith("kubeadm-ha:kubernetesVersion"));
        const { config } = parseWith({});
        expect(config.kubernetesVersion.patch).toMatch(/^\d+\.\d+\.\d+$/);
        expect(unsupportedMinor(config.kubernetesVersion.minor, TODAY)).toBeUndefined();
        expect(versionWarnings({})).toEqual([]);
        expect(versionWarnings({ kubernetesVersion: "1.34" })).toEqual([
            "kubeadm-ha:kubernetesVersion = 1.34: 1.34 left upstream support on 2026-10-27 and gets no security fixes; move to 1.35 or 1.36 or 1.37, one minor per pulumi up",
        ]);
        // The same default, a year on, is past its support and says so.
        expect(versionWarnings({}, "2027-11-01")).toEqual([
            expect.stringMatching(/^kubeadm-ha:kubernetesVersion = 1\.37\.2: 1\.37 left upstream support on 2027-10-28/),
        ]);
        expect(versionWarnings({ kubernetesVersion: "1.38" })).toEqual([expect.stringContaining("does not know 1.38's support dates")]);
    });

    it("allows an even control-plane count when etcd is external", () => {
        expect(parseWith({ etcdTopology: "external", controlPlaneCount: "2" }).config.controlPlaneCount).toBe(2);
    });

    const cases: [string, Record<string, unknown>, string][] = [
        [
            "an even count with stacked etcd",
            { controlPlaneCount: "4" },
            "kubeadm-ha:controlPlaneCount = 4: stacked etcd runs one member per control-plane node and needs an odd count for a majority; allowed: 1, 3, 5, 7",
        ],
        ["a count that is not a number", { controlPlaneCount: "three" }, 'kubeadm-ha:controlPlaneCount = "three" is not a whole number; allowed: 1 to 7'],
        ["a count out of range", { controlPlaneCount: "9" }, 'kubeadm-ha:controlPlaneCount = "9" is out of range; allowed: 1 to 7'],
        [
            "an even etcd count",
            { etcdTopology: "external", etcdCount: "2" },
            "kubeadm-ha:etcdCount = 2: etcd needs an odd member count for a majority; allowed: 1, 3, 5, 7",
        ],
        ["an unknown topology", { etcdTopology: "hybrid" }, 'kubeadm-ha:etcdTopology = "hybrid" is not allowed; allowed: stacked, external'],
        [
            "a version before v1beta4",
            { kubernetesVersion: "1.30" },
            'kubeadm-ha:kubernetesVersion = "1.30" must be a Kubernetes release such as 1.37.2 (or a minor such as 1.37, its newest patch), at least 1.31 for kubeadm\'s v1beta4 configuration',
        ],
        [
            "a version with a v prefix",
            { kubernetesVersion: "v1.34" },
            'kubeadm-ha:kubernetesVersion = "v1.34" must be a Kubernetes release such as 1.37.2 (or a minor such as 1.37, its newest patch), at least 1.31 for kubeadm\'s v1beta4 configuration',
        ],
        [
            "a malformed instance type",
            { instanceType: "large" },
            'kubeadm-ha:instanceType = "large" must be an EC2 instance type such as t3.medium or m7g.large',
        ],
        ["a malformed AMI id", { ami: "ubuntu" }, 'kubeadm-ha:ami = "ubuntu" must be an AMI id such as ami-0123456789abcdef0, or empty to look up Ubuntu LTS'],
        ["a malformed CIDR", { vpcCidr: "10.0.0/16" }, 'kubeadm-ha:vpcCidr = "10.0.0/16" is not an IPv4 CIDR block such as 10.0.0.0/16'],
        ["a CIDR with host bits", { podCidr: "192.168.1.0/16" }, 'kubeadm-ha:podCidr = "192.168.1.0/16" has host bits set (the network is 192.168.0.0/16)'],
        [
            "a VPC too large",
            { vpcCidr: "10.0.0.0/8" },
            'kubeadm-ha:vpcCidr = "10.0.0.0/8" must be a block from /16 to /24 (AWS allows VPCs from /16 to /28 and each zone gets a sixteenth of it)',
        ],
        [
            "a service range too large",
            { serviceCidr: "10.96.0.0/11" },
            'kubeadm-ha:serviceCidr = "10.96.0.0/11" must be a block from /12 to /24 (kube-apiserver accepts at most a /12)',
        ],
        [
            "overlapping pod and VPC ranges",
            { podCidr: "10.0.128.0/17" },
            "kubeadm-ha:vpcCidr = 10.0.0.0/16 overlaps kubeadm-ha:podCidr = 10.0.128.0/17: the VPC, pod and service ranges must not share addresses",
        ],
        [
            "overlapping service and pod ranges",
            { serviceCidr: "192.168.0.0/24" },
            "kubeadm-ha:podCidr = 192.168.0.0/16 overlaps kubeadm-ha:serviceCidr = 192.168.0.0/24: the VPC, pod and service ranges must not share addresses",
        ],
        [
            "too few zones",
            { availabilityZones: ["us-east-1a", "us-east-1b"] },
            'kubeadm-ha:availabilityZones = ["us-east-1a","us-east-1b"] has 2 zone(s); 3 are needed so that losing one zone cannot take a majority of the nodes',
        ],
        [
            "a zone named twice",
            { availabilityZones: ["us-east-1a", "us-east-1a", "us-east-1b"] },
            'kubeadm-ha:availabilityZones = ["us-east-1a","us-east-1a","us-east-1b"] lists a zone twice',
        ],
        [
            "zones that are not a list",
            { availabilityZones: "us-east-1a" },
            'kubeadm-ha:availabilityZones = "us-east-1a" is not valid JSON; set it as a YAML list or map in the stack file',
        ],
        ["an empty allow list", { apiAllowedCidrs: [] }, "kubeadm-ha:apiAllowedCidrs = [] must list at least one CIDR block"],
        [
            "a bad allowed CIDR",
            { sshAllowedCidrs: ["1.2.3.4"] },
            'kubeadm-ha:sshAllowedCidrs = ["1.2.3.4"] has "1.2.3.4", which is not an IPv4 CIDR block such as 10.0.0.0/16',
        ],
        [
            "a health path that anonymous clients cannot read",
            { healthCheckPath: "/metrics" },
            'kubeadm-ha:healthCheckPath = "/metrics" is not allowed; allowed: /healthz, /readyz, /livez',
        ],
        ["a non-boolean protect", { protect: "yes" }, 'kubeadm-ha:protect = "yes" is not allowed; allowed: true, false'],
        ["a non-boolean rollNodes", { rollNodes: "1" }, 'kubeadm-ha:rollNodes = "1" is not allowed; allowed: true, false'],
        ["an unknown CNI", { cni: "flannel" }, 'kubeadm-ha:cni = "flannel" is not allowed; allowed: calico, cilium, none'],
        ["a negative backup retention", { etcdBackupRetention: "-1" }, 'kubeadm-ha:etcdBackupRetention = "-1" is out of range; allowed: 0 to 1000'],
        ["a non-boolean monitoring", { monitoring: "on" }, 'kubeadm-ha:monitoring = "on" is not allowed; allowed: true, false'],
        [
            "a tag without a value",
            { tags: ["team"] },
            'kubeadm-ha:tags = ["team"] has "team"; each tag is "key=value", the key 1-128 characters not starting with aws:',
        ],
        [
            "a cluster name too long for AWS names",
            { clusterName: "a-very-long-cluster-name" },
            "kubeadm-ha:clusterName = \"a-very-long-cluster-name\" must be 2-20 characters of lowercase letters, digits and '-', starting with a letter (it prefixes AWS names limited to 32 characters)",
        ],
        ["a bad SSH user", { sshUser: "Ubuntu User" }, 'kubeadm-ha:sshUser = "Ubuntu User" must be a Linux user name such as ubuntu'],
        ["a tiny root volume", { rootVolumeSizeGiB: "8" }, 'kubeadm-ha:rootVolumeSizeGiB = "8" is out of range; allowed: 20 to 16384'],
        ["an unknown CPU credit mode", { cpuCredits: "burst" }, 'kubeadm-ha:cpuCredits = "burst" is not allowed; allowed: standard, unlimited'],
    ];

    it.each(cases)("rejects %s with one message naming the key, value and what is allowed", (_label, values, message) => {
        expect(problemsOf(values)).toEqual([message]);
    });

    it.each([
        [
            "a key Pulumi.yaml does not declare",
            { controlPlaneCout: "5" },
            "kubeadm-ha:controlPlaneCout is not a key this program declares in Pulumi.yaml, so it would be ignored; did you mean controlPlaneCount?",
        ],
        [
            "a declared key in the wrong case",
            { InstanceType: "m7g.large" },
            "kubeadm-ha:InstanceType is not a key this program declares in Pulumi.yaml, so it would be ignored; did you mean instanceType?",
        ],
    ])("rejects %s, naming it and the closest declared key", (_label, values, message) => {
        expect(problemsOf(values)).toEqual([message]);
    });

    it("reports every bad key at once", () => {
        expect(problemsOf({ controlPlaneCount: "4", etcdTopology: "stacked", healthCheckPath: "/" })).toHaveLength(2);
    });

    it("reports an unknown key together with the other problems, without its value (it may be a secret)", () => {
        const problems = problemsOf({ etcdCuont: "hunter2", healthCheckPath: "/" });
        expect(problems).toHaveLength(2);
        expect(problems[0]).toMatch(/^kubeadm-ha:etcdCuont is not a key .*; did you mean etcdCount\?$/);
        expect(problems.join("\n")).not.toContain("hunter2");
    });

    it("lists the declared keys when no declared key is close", () => {
        const [problem] = problemsOf({ replicas: "3" });
        expect(problem).toMatch(
            /^kubeadm-ha:replicas is not a key this program declares in Pulumi.yaml, so it would be ignored; did you mean \w+\? \(declared: /,
        );
        for (const declared of DECLARED_KEYS) expect(problem).toContain(declared);
    });

    it("reads cpuCredits and knows which instance types are burstable", () => {
        expect(parseWith({ cpuCredits: "unlimited" }).config.cpuCredits).toBe("unlimited");
        expect(["t3.medium", "t3a.large", "t4g.small", "t2.micro", "m7g.large", "c6i.large", "m5.large"].map(isBurstable)).toEqual([
            true,
            true,
            true,
            true,
            false,
            false,
            false,
        ]);
    });
});

describe("instance type offerings", () => {
    const offered = (pairs: string[]) => pairs.map((p) => ({ instanceType: p.split("@")[0], zone: p.split("@")[1] }));

    it("passes when every zone a tier uses offers its type", () => {
        const needs = [{ configKey: "instanceType" as const, instanceType: "m7i.large", zones: ["us-east-1a", "us-east-1b", "us-east-1a"] }];
        expect(offeringProblems(needs, offered(["m7i.large@us-east-1a", "m7i.large@us-east-1b", "t3.small@us-east-1c"]))).toEqual([]);
    });

    it("names the type and each zone that lacks it, per key", () => {
        const needs = [
            { configKey: "instanceType" as const, instanceType: "m7i.large", zones: ["us-east-1a", "us-east-1b", "us-east-1e"] },
            { configKey: "etcdInstanceType" as const, instanceType: "t3.small", zones: ["us-east-1a", "us-east-1b", "us-east-1e"] },
        ];
        expect(offeringProblems(needs, offered(["m7i.large@us-east-1a", "t3.small@us-east-1a", "t3.small@us-east-1b", "t3.small@us-east-1e"]))).toEqual([
            'kubeadm-ha:instanceType = "m7i.large" is not offered in us-east-1b, us-east-1e (its nodes go to us-east-1a, us-east-1b, us-east-1e); allowed: an instance type offered in every one of those zones, or kubeadm-ha:availabilityZones set to zones that offer it',
        ]);
    });
});

describe("configuration errors in the program", () => {
    it("stop before any resource is declared, with the message and no stack trace", async () => {
        await expect(runProgram({ controlPlaneCount: "4" })).rejects.toThrow(/kubeadm-ha:controlPlaneCount = 4: stacked etcd/);
        // A RunError is what Pulumi prints as a bare message, without the program's stack trace.
        const rejected = await runProgram({ controlPlaneCount: "4" }).catch((e) => e);
        expect(rejected.__pulumiRunError).toBe(true);
    });

    it.each([
        [
            "an instance type the region does not offer",
            { instanceType: "x9.huge" },
            /kubeadm-ha:instanceType = "x9.huge" is not an instance type offered in this region/,
        ],
        [
            "an instance type too small for kubeadm",
            { instanceType: "t3.micro" },
            /kubeadm-ha:instanceType = "t3.micro" has 2 vCPU and 1024 MiB; allowed: at least 2 vCPU and 1700 MiB/,
        ],
        [
            "a zone the region lacks",
            { availabilityZones: ["us-east-1a", "us-east-1b", "eu-west-1a"] },
            /names eu-west-1a, not available in this region; allowed: us-east-1a, us-east-1b, us-east-1c, us-east-1d/,
        ],
    ])("reject %s before any resource", async (_label, config, message) => {
        const resources: unknown[] = [];
        const error = await runProgram(config).then(
            (run) => {
                resources.push(...run.resources);
                return undefined;
            },
            (e) => e,
        );
        expect(error?.message).toMatch(message);
        expect(resources).toEqual([]);
    });

    it.each([false, true])("reject a key Pulumi.yaml does not declare before any resource (preview: %s)", async (preview) => {
        const error = await runProgram({ controlPlaneCout: "5" }, { preview }).then(
            (run) => new Error(`declared ${run.resources.length} resources`),
            (e) => e,
        );
        expect(error.message).toBe(
            "invalid stack configuration:\n  - kubeadm-ha:controlPlaneCout is not a key this program declares in Pulumi.yaml, so it would be ignored; did you mean controlPlaneCount?",
        );
        expect(error.__pulumiRunError).toBe(true);
    });

    it.each([false, true])("reject an instance type a chosen zone does not offer, before any resource (preview: %s)", async (preview) => {
        const error = await runProgram({ etcdTopology: "external" }, { preview, notOffered: { "us-east-1b": ["t3.medium"], "us-east-1c": ["t3.small"] } }).then(
            (run) => new Error(`declared ${run.resources.length} resources`),
            (e) => e,
        );
        expect(error.message).toBe(
            [
                "invalid stack configuration:",
                '  - kubeadm-ha:instanceType = "t3.medium" is not offered in us-east-1b (its nodes go to us-east-1a, us-east-1b, us-east-1c); allowed: an instance type offered in every one of those zones, or kubeadm-ha:availabilityZones set to zones that offer it',
                '  - kubeadm-ha:etcdInstanceType = "t3.small" is not offered in us-east-1c (its nodes go to us-east-1a, us-east-1b, us-east-1c); allowed: an instance type offered in every one of those zones, or kubeadm-ha:availabilityZones set to zones that offer it',
            ].join("\n"),
        );
        expect(error.__pulumiRunError).toBe(true);
    });

    it("asks EC2 once for the offerings of every type in the zones its nodes use, and ignores zones it does not use", async () => {
        // us-east-1d lacks t3.medium, but three control-plane nodes only use a, b and c.
        const run = await runProgram({}, { preview: true, notOffered: { "us-east-1d": ["t3.medium"] } });
        const calls = run.invokes.filter((i) => i.token === "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings");
        expect(calls.map((c) => c.inputs)).toEqual([
            {
                locationType: "availability-zone",
                filters: [
                    { name: "instance-type", values: ["t3.medium"] },
                    { name: "location", values: ["us-east-1a", "us-east-1b", "us-east-1c"] },
                ],
            },
        ]);
        expect(run.resources.length).toBeGreaterThan(0);
    });

    it("rejects a region with too few zones", async () => {
        await expect(runProgram({}, { regionZones: ["us-east-1a", "us-east-1b"] })).rejects.toThrow(
            "kubeadm-ha:availabilityZones is unset and the region offers only 2 zone(s) (us-east-1a, us-east-1b); 3 are needed",
        );
    });
});
