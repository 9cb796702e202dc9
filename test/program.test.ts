/**
 * The resource graph the program declares, under Pulumi mocks, in preview (computed values unknown)
 * and update (computed values known).
 */
import { parseAllDocuments } from "yaml";
import { ProgramRun, runProgram, UNKNOWN, strings } from "./harness";
import { validateDocument } from "./schemas/kubeadm-v1beta4";
import { userDataOf } from "../tools/render";

const INSTANCE = "aws:ec2/instance:Instance";
const COMMAND = "command:remote:Command";
const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";

/** Every ingress rule as (security group, port range, source CIDR or "sg:<group>"). */
function ingressRules(run: ProgramRun): { group: string; ports: string; from: string }[] {
    return run.ofType(INGRESS).map((r) => ({
        group: r.options.parent,
        ports: `${r.inputs.fromPort}-${r.inputs.toPort}`,
        from: r.inputs.cidrIpv4 ?? `sg:${r.dependsOn.find((d) => d !== r.options.parent) ?? r.options.parent}`,
    }));
}

function token(run: ProgramRun): string {
    const part = (suffix: string) => run.named(`kubeadm-ha-token-${suffix}`).state.result as string;
    return `${part("id")}.${part("secret")}`;
}

describe.each([
    ["update", false],
    ["preview", true],
])("the stacked-etcd program (%s)", (_mode, preview) => {
    let run: ProgramRun;
    beforeAll(async () => {
        run = await runProgram({}, { preview });
    });

    it("declares three control-plane instances in three distinct zones' subnets", () => {
        const instances = run.ofType(INSTANCE);
        expect(instances.map((i) => i.name)).toEqual(["kubeadm-ha-cp-0", "kubeadm-ha-cp-1", "kubeadm-ha-cp-2"]);
        const subnets = run.ofType("aws:ec2/subnet:Subnet").map((s) => s.inputs.availabilityZone);
        expect(subnets).toEqual(["us-east-1a", "us-east-1b", "us-east-1c"]);
        expect(instances.map((i) => i.inputs.subnetId)).toEqual(
            ["kubeadm-ha-public-0-id", "kubeadm-ha-public-1-id", "kubeadm-ha-public-2-id"].map((id) => (preview ? UNKNOWN : id)),
        );
    });

    it("hardens every instance: IMDSv2 only, encrypted gp3 root volume, standard CPU credits", () => {
        for (const instance of run.ofType(INSTANCE)) {
            expect(instance.inputs.metadataOptions).toEqual({ httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 });
            expect(instance.inputs.rootBlockDevice).toEqual({ volumeType: "gp3", volumeSize: 30, encrypted: true, deleteOnTermination: true });
            expect(instance.inputs.creditSpecification).toEqual({ cpuCredits: "standard" });
            expect(instance.options.protect).toBe(false);
        }
    });

    it("protects nothing by default, so `pulumi destroy` can run: the engine refuses to delete a protected resource", () => {
        expect(run.resources.filter((r) => r.options.protect).map((r) => `${r.type}::${r.name}`)).toEqual([]);
    });

    it("builds nodes from the tier's launch template at the version number it has now, and replaces (never stops) them for a new type", () => {
        const [template] = run.ofType("aws:ec2/launchTemplate:LaunchTemplate");
        expect(template.inputs.imageId).toBe("ami-0f1e2d3c4b5a69788");
        // The metadata guard first, then the node preparation.
        expect(Buffer.from(template.inputs.userData, "base64").toString("utf8")).toMatch(
            /^#!\/usr\/bin\/env bash\n# The instance metadata service for root only[\s\S]*\n# kubeadm-ha node preparation/,
        );
        for (const instance of run.ofType(INSTANCE)) {
            // Nothing copied from an old state on replacement: no ignoreChanges, no image on the instance.
            expect(instance.options.ignoreChanges).toEqual([]);
            expect(instance.inputs.ami).toBeUndefined();
            expect(instance.inputs.userData).toBeUndefined();
            // A number, never $Latest: a refresh after a new template version must not replace the node.
            expect(instance.inputs.launchTemplate).toEqual({ id: preview ? UNKNOWN : "kubeadm-ha-cp-id", version: preview ? UNKNOWN : "1" });
            expect(instance.options.replaceOnChanges).toEqual(["instanceType"]);
        }
    });

    it("gives every node an Elastic IP, and every step connects to it", () => {
        const eips = run.ofType("aws:ec2/eip:Eip");
        expect(eips.map((e) => [e.name, e.inputs.domain, e.inputs.instance])).toEqual(
            [0, 1, 2].map((i) => [`kubeadm-ha-cp-${i}-address`, "vpc", preview ? UNKNOWN : `kubeadm-ha-cp-${i}-id`]),
        );
        for (const eip of eips) expect(run.waitsFor(eip.name, "kubeadm-ha-igw")).toBe(true);
        if (preview) return;
        const addresses = eips.map((e) => e.state.publicIp);
        for (const c of run.ofType(COMMAND)) expect(addresses).toContain(c.inputs.connection.host);
    });

    it("fronts the API with a cross-zone NLB, a TCP listener on 6443 and an HTTPS /healthz check", () => {
        const [nlb] = run.ofType("aws:lb/loadBalancer:LoadBalancer");
        expect(nlb.inputs).toMatchObject({ loadBalancerType: "network", internal: false, enableCrossZoneLoadBalancing: true });
        expect(nlb.dependsOn).toEqual(expect.arrayContaining(["kubeadm-ha-public-0", "kubeadm-ha-public-1", "kubeadm-ha-public-2", "kubeadm-ha-api-lb"]));
        const [listener] = run.ofType("aws:lb/listener:Listener");
        expect(listener.inputs).toMatchObject({ port: 6443, protocol: "TCP" });
        expect(listener.inputs.defaultActions[0].type).toBe("forward");
        const [group] = run.ofType("aws:lb/targetGroup:TargetGroup");
        expect(group.inputs).toMatchObject({ port: 6443, protocol: "TCP", targetType: "instance" });
        expect(group.inputs.healthCheck).toEqual({
            enabled: true,
            protocol: "HTTPS",
            port: "6443",
            path: "/healthz",
            matcher: "200",
            interval: 5,
            timeout: 3,
            healthyThreshold: 2,
            unhealthyThreshold: 2,
        });
        const attachments = run.ofType("aws:lb/targetGroupAttachment:TargetGroupAttachment");
        expect(attachments).toHaveLength(3);
        expect(attachments.map((a) => a.dependsOn)).toEqual([
            ["kubeadm-ha", "kubeadm-ha-cp-0"],
            ["kubeadm-ha", "kubeadm-ha-cp-1"],
            ["kubeadm-ha", "kubeadm-ha-cp-2"],
        ]);
    });

    it("is hairpin-safe: client IP preservation off for instance targets", () => {
        const [group] = run.ofType("aws:lb/targetGroup:TargetGroup");
        expect(group.inputs.targetType === "ip" || group.inputs.preserveClientIp === "false").toBe(true);
    });

    it("opens exactly the documented ports, and no etcd or kubelet port to the world", () => {
        const rules = ingressRules(run);
        // The nodes' own Elastic IPs, through which their kubelets reach the load balancer.
        const nodeAddresses = [10, 11, 12].map((host) => (preview ? UNKNOWN : `198.51.100.${host}/32`));
        expect(rules).toEqual(
            expect.arrayContaining([
                { group: "kubeadm-ha-api-lb", ports: "6443-6443", from: "0.0.0.0/0" },
                { group: "kubeadm-ha-api-lb", ports: "6443-6443", from: "10.0.0.0/16" },
                ...nodeAddresses.map((from) => ({ group: "kubeadm-ha-api-lb", ports: "6443-6443", from })),
                // A node's API server answers the load balancer and the VPC only.
                { group: "kubeadm-ha-control-plane", ports: "6443-6443", from: "sg:kubeadm-ha-api-lb" },
                { group: "kubeadm-ha-control-plane", ports: "6443-6443", from: "10.0.0.0/16" },
                { group: "kubeadm-ha-control-plane", ports: "22-22", from: "0.0.0.0/0" },
                { group: "kubeadm-ha-control-plane", ports: "2379-2380", from: "sg:kubeadm-ha-control-plane" },
                { group: "kubeadm-ha-control-plane", ports: "10250-10250", from: "sg:kubeadm-ha-control-plane" },
                { group: "kubeadm-ha-control-plane", ports: "10257-10257", from: "sg:kubeadm-ha-control-plane" },
                { group: "kubeadm-ha-control-plane", ports: "10259-10259", from: "sg:kubeadm-ha-control-plane" },
                // Calico (the default pod network): VXLAN and Typha between nodes.
                { group: "kubeadm-ha-control-plane", ports: "4789-4789", from: "sg:kubeadm-ha-control-plane" },
                { group: "kubeadm-ha-control-plane", ports: "5473-5473", from: "sg:kubeadm-ha-control-plane" },
            ]),
        );
        expect(rules).toHaveLength(14);
        expect(run.named("kubeadm-ha-control-plane-calico-4789").inputs.ipProtocol).toBe("udp");
        const world = rules.filter((r) => r.from === "0.0.0.0/0");
        expect(world.sort((a, b) => a.ports.localeCompare(b.ports))).toEqual([
            { group: "kubeadm-ha-control-plane", ports: "22-22", from: "0.0.0.0/0" },
            { group: "kubeadm-ha-api-lb", ports: "6443-6443", from: "0.0.0.0/0" },
        ]);
    });

    it("names each rule by what it allows, and lets every step that uses the load balancer wait for its node's rule", () => {
        const names = run.ofType(INGRESS).map((r) => r.name);
        expect(names).toEqual(
            expect.arrayContaining([
                "kubeadm-ha-api-lb-api-from-0-0-0-0-0",
                "kubeadm-ha-api-lb-api-from-10-0-0-0-16",
                "kubeadm-ha-api-lb-api-from-kubeadm-ha-cp-0",
                "kubeadm-ha-api-lb-api-from-kubeadm-ha-cp-2",
                "kubeadm-ha-control-plane-api-from-lb",
                "kubeadm-ha-control-plane-api-from-10-0-0-0-16",
                "kubeadm-ha-control-plane-ssh-from-0-0-0-0-0",
            ]),
        );
        // Rules once named by list position take over their state: the renaming changes nothing on AWS.
        const formerNames = (name: string) => run.named(name).options.aliases;
        expect(formerNames("kubeadm-ha-api-lb-api-from-0-0-0-0-0")).toEqual(["kubeadm-ha-api-lb-api-0"]);
        expect(formerNames("kubeadm-ha-api-lb-api-from-10-0-0-0-16")).toEqual(["kubeadm-ha-api-lb-api-1"]);
        expect(formerNames("kubeadm-ha-control-plane-api-from-10-0-0-0-16")).toEqual(["kubeadm-ha-control-plane-api-1"]);
        expect(formerNames("kubeadm-ha-control-plane-ssh-from-0-0-0-0-0")).toEqual(["kubeadm-ha-control-plane-ssh-0"]);
        expect(formerNames("kubeadm-ha-control-plane-api-from-lb")).toEqual([]);
        for (const node of [0, 1, 2]) {
            const rule = `kubeadm-ha-api-lb-api-from-kubeadm-ha-cp-${node}`;
            expect(run.waitsFor(rule, `kubeadm-ha-cp-${node}-address`)).toBe(true);
            for (const step of ["kubeadm-ha-cluster-init", `kubeadm-ha-cp-${node}-member`, "kubeadm-ha-api-reachable"]) {
                expect([step, rule, run.waitsFor(step, rule)]).toEqual([step, rule, true]);
            }
        }
    });

    it("runs cluster-init once, after every node is prepared, then each node's member step one at a time", () => {
        for (const node of [0, 1, 2]) expect(run.waitsFor("kubeadm-ha-cluster-init", `kubeadm-ha-cp-${node}-prepared`)).toBe(true);
        expect(run.waitsFor("kubeadm-ha-cp-0-member", "kubeadm-ha-cluster-init")).toBe(true);
        expect(run.waitsFor("kubeadm-ha-cp-1-member", "kubeadm-ha-cp-0-member")).toBe(true);
        expect(run.waitsFor("kubeadm-ha-cp-2-member", "kubeadm-ha-cp-1-member")).toBe(true);
        expect(run.waitsFor("kubeadm-ha-cp-1-member", "kubeadm-ha-cp-2-member")).toBe(false);
        for (const node of [0, 1, 2]) {
            expect(run.waitsFor(`kubeadm-ha-cp-${node}-member`, `kubeadm-ha-cp-${node}-pki`)).toBe(true);
            expect(run.waitsFor(`kubeadm-ha-cp-${node}-pki`, `kubeadm-ha-cp-${node}-prepared`)).toBe(true);
        }
        // Nothing talks to the cluster from outside before membership matches the plan and the NLB answers.
        expect(run.waitsFor("kubeadm-ha-membership", "kubeadm-ha-cp-2-member")).toBe(true);
        expect(run.waitsFor("kubeadm-ha-api-reachable", "kubeadm-ha-membership")).toBe(true);
        // cluster-init ignores every later change of its inputs: it never runs a second time.
        expect(run.named("kubeadm-ha-cluster-init").options.ignoreChanges).toEqual(expect.arrayContaining(["create", "stdin", "connection", "triggers"]));
        // The member steps were once named after init and join: aliases keep them (an update, not a
        // delete of the old step).
        expect(run.ofType(COMMAND).filter((c) => /token/.test(c.name))).toEqual([]);
        if (!preview) expect(run.named("kubeadm-ha-cp-2-member").inputs.create).toContain("kubeadm kubeconfig user --client-name");
    });

    it("gives every remote step a short dial limit (long only for the boot wait), a trigger, and no delete command", () => {
        const commands = run.ofType(COMMAND);
        // Per node: prepared, pki, member, etcd backup, certificate renewal; then cluster-init, membership and the API gate.
        expect(commands).toHaveLength(3 * 5 + 3);
        for (const c of commands) {
            // In preview the connection waits on the node's address, so it is unknown as a whole.
            if (preview) expect(c.inputs.connection).toBe(UNKNOWN);
            else if (c.name.endsWith("-prepared")) expect(c.inputs.connection).toMatchObject({ user: "ubuntu", dialErrorLimit: 40, perDialTimeout: 30 });
            // 4 attempts of 10 s: a host that is gone holds `pulumi up` for under a minute.
            else expect(c.inputs.connection).toMatchObject({ user: "ubuntu", dialErrorLimit: 3, perDialTimeout: 10 });
            expect(c.inputs.addPreviousOutputInEnv).toBe(false);
            expect(c.inputs.triggers.length).toBeGreaterThanOrEqual(1);
            expect(c.options.replaceOnChanges).toEqual(["triggers[*]"]);
            // Nothing runs when a step is deleted: no secret replayed, no dead host dialled, no reset.
            expect([c.name, c.inputs.delete]).toEqual([c.name, undefined]);
        }
        // A changed input re-runs the same converging script, never a different one.
        for (const name of ["kubeadm-ha-cp-0-member", "kubeadm-ha-cp-2-member", "kubeadm-ha-membership"]) {
            expect(run.named(name).inputs.update).toBe(run.named(name).inputs.create);
        }
    });

    it("pins every step after a node's first to the SSH host key that first step printed", () => {
        const commands = run.ofType(COMMAND);
        const prepared = commands.filter((c) => c.name.endsWith("-prepared"));
        expect(prepared).toHaveLength(3);
        if (preview) return;
        const keyOf = new Map(prepared.map((p) => [p.inputs.connection.host, (p.state.stdout as string).split("\n").pop()]));
        expect([...keyOf.values()].every((key) => /^ssh-ed25519 [A-Za-z0-9+/]+=* /.test(key ?? ""))).toBe(true);
        expect(new Set(keyOf.values()).size).toBe(3);
        for (const c of commands) {
            // The first contact trusts the key it is shown; it can check none.
            if (c.name.endsWith("-prepared")) expect(c.inputs.connection.hostKey).toBeUndefined();
            else expect([c.name, c.inputs.connection.hostKey]).toEqual([c.name, keyOf.get(c.inputs.connection.host)]);
        }
        expect(run.named("kubeadm-ha-cp-0-prepared").inputs.create).toContain("ssh_host_ed25519_key.pub");
    });

    it("sends every secret on stdin as a secret, and none in scripts or user data", () => {
        // In preview the values are not known yet, so nothing secret can show either.
        const secretOrUnknown = (c: { inputs: Record<string, unknown>; secretInputs: string[] }) =>
            c.secretInputs.includes("stdin") || (preview && c.inputs.stdin === UNKNOWN);
        for (const c of run.ofType(COMMAND)) {
            if (c.inputs.stdin !== undefined) expect([c.name, secretOrUnknown(c)]).toEqual([c.name, true]);
        }
        for (const name of ["kubeadm-ha-cp-0-pki", "kubeadm-ha-cluster-init", "kubeadm-ha-cp-1-member"]) {
            expect(secretOrUnknown(run.named(name))).toBe(true);
        }
        const exposed = [
            ...run.ofType("aws:ec2/launchTemplate:LaunchTemplate").map((t) => Buffer.from(t.inputs.userData, "base64").toString("utf8")),
            ...run.ofType(COMMAND).flatMap((c) => [c.inputs.create, c.inputs.delete]),
            ...strings(run.plainOutputs),
        ].filter((s): s is string => typeof s === "string");
        expect(exposed.length).toBeGreaterThan(10);
        for (const text of exposed) {
            expect(text).not.toMatch(/PRIVATE KEY/);
            expect(text).not.toMatch(/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/);
        }
    });

    it("exports the endpoint, nodes and topology in plain, the kubeconfig and SSH key as secrets", () => {
        expect(run.secretOutputs.sort()).toEqual(["kubeconfig", "sshPrivateKey"]);
        expect(run.outputs.etcdTopology).toBe("stacked");
        if (preview) return;
        expect(run.outputs.apiEndpoint).toBe("https://kubeadm-ha-0123456789abcdef.elb.us-east-1.amazonaws.com:6443");
        expect(run.outputs.controlPlaneNodes).toEqual([
            { name: "ip-10-0-0-10.ec2.internal", zone: "us-east-1a", privateIp: "10.0.0.10", publicIp: "198.51.100.10", instanceId: "kubeadm-ha-cp-0-id" },
            { name: "ip-10-0-16-11.ec2.internal", zone: "us-east-1b", privateIp: "10.0.16.11", publicIp: "198.51.100.11", instanceId: "kubeadm-ha-cp-1-id" },
            { name: "ip-10-0-32-12.ec2.internal", zone: "us-east-1c", privateIp: "10.0.32.12", publicIp: "198.51.100.12", instanceId: "kubeadm-ha-cp-2-id" },
        ]);
    });
});

describe("the kubeadm configuration sent to the nodes", () => {
    let run: ProgramRun;
    beforeAll(async () => {
        run = await runProgram({ kubernetesVersion: "1.34.2" });
    });

    it("sends only documents that pass the strict v1beta4 schema", () => {
        for (const name of ["kubeadm-ha-cluster-init", "kubeadm-ha-cp-0-member", "kubeadm-ha-cp-1-member", "kubeadm-ha-cp-2-member"]) {
            const docs = parseAllDocuments(run.named(name).inputs.stdin).map((d) => d.toJS());
            expect([name, docs.flatMap(validateDocument)]).toEqual([name, []]);
        }
    });

    it("inits node 0 with the NLB endpoint, its own name and address, and the bootstrap token", () => {
        const docs = parseAllDocuments(run.named("kubeadm-ha-cluster-init").inputs.stdin).map((d) => d.toJS());
        expect(docs.map((d) => `${d.apiVersion}/${d.kind}`)).toEqual([
            "kubeadm.k8s.io/v1beta4/InitConfiguration",
            "kubeadm.k8s.io/v1beta4/ClusterConfiguration",
            "kubelet.config.k8s.io/v1beta1/KubeletConfiguration",
        ]);
        // Node 0's own member step joins it when it replaces a lost node 0.
        const [join0] = parseAllDocuments(run.named("kubeadm-ha-cp-0-member").inputs.stdin).map((d) => d.toJS());
        expect(join0.controlPlane.localAPIEndpoint.advertiseAddress).toBe("10.0.0.10");
        const [init, cluster, kubelet] = docs;
        expect(init.bootstrapTokens[0].token).toBe(token(run));
        expect(init.nodeRegistration).toEqual({
            name: "ip-10-0-0-10.ec2.internal",
            criSocket: "unix:///var/run/containerd/containerd.sock",
            kubeletExtraArgs: [{ name: "node-ip", value: "10.0.0.10" }],
        });
        expect(init.localAPIEndpoint).toEqual({ advertiseAddress: "10.0.0.10", bindPort: 6443 });
        expect(cluster).toMatchObject({
            clusterName: "kubeadm-ha",
            kubernetesVersion: "v1.34.2",
            controlPlaneEndpoint: "kubeadm-ha-0123456789abcdef.elb.us-east-1.amazonaws.com:6443",
            encryptionAlgorithm: "ECDSA-P256",
            networking: { podSubnet: "192.168.0.0/16", serviceSubnet: "10.96.0.0/12", dnsDomain: "cluster.local" },
            etcd: { local: { dataDir: "/var/lib/etcd" } },
        });
        expect(kubelet.cgroupDriver).toBe("systemd");
    });

    it("joins the other nodes as control planes by token and CA pin, through the NLB endpoint", () => {
        const [join] = parseAllDocuments(run.named("kubeadm-ha-cp-2-member").inputs.stdin).map((d) => d.toJS());
        expect(join.kind).toBe("JoinConfiguration");
        expect(join.discovery.bootstrapToken).toEqual({
            token: token(run),
            apiServerEndpoint: "kubeadm-ha-0123456789abcdef.elb.us-east-1.amazonaws.com:6443",
            caCertHashes: [expect.stringMatching(/^sha256:[0-9a-f]{64}$/)],
        });
        expect(join.controlPlane).toEqual({ localAPIEndpoint: { advertiseAddress: "10.0.32.12", bindPort: 6443 } });
        expect(join.nodeRegistration.name).toBe("ip-10-0-32-12.ec2.internal");
        // The other planned nodes are where a join finds a live API server; every planned name is what
        // etcd membership is reconciled to.
        const planned = "PLANNED_NODES='ip-10-0-0-10.ec2.internal ip-10-0-16-11.ec2.internal ip-10-0-32-12.ec2.internal'";
        expect(run.named("kubeadm-ha-cp-2-member").inputs.create).toContain("API_SERVERS='10.0.0.10 10.0.16.11'");
        expect(run.named("kubeadm-ha-cp-2-member").inputs.create).toContain(planned);
        // A replacement of node 0 finds the live cluster through the others and joins it.
        expect(run.named("kubeadm-ha-cp-0-member").inputs.create).toContain("API_SERVERS='10.0.16.11 10.0.32.12'");
        // cluster-init refuses to run where any other planned node answers on 6443.
        expect(run.named("kubeadm-ha-cluster-init").inputs.create).toContain("API_SERVERS='10.0.16.11 10.0.32.12'");
    });

    it("places the shared CAs on every node and the etcd CA key only with stacked etcd", () => {
        const files = (name: string) =>
            (run.named(name).inputs.stdin as string)
                .trim()
                .split("\n")
                .map((line) => line.split(" ").slice(0, 2).join(" "));
        expect(files("kubeadm-ha-cp-1-pki")).toEqual([
            "0644 ca.crt",
            "0600 ca.key",
            "0644 front-proxy-ca.crt",
            "0600 front-proxy-ca.key",
            "0600 sa.key",
            "0644 sa.pub",
            "0644 etcd/ca.crt",
            "0644 apiserver.crt",
            "0600 apiserver.key",
            "0600 etcd/ca.key",
        ]);
    });
});

describe("placement of larger control planes", () => {
    it("spreads five nodes over three zones 2/2/1", async () => {
        const run = await runProgram({ controlPlaneCount: "5", availabilityZones: ["us-east-1a", "us-east-1b", "us-east-1c"] });
        const zoneOf = new Map(run.ofType("aws:ec2/subnet:Subnet").map((s) => [`${s.name}-id`, s.inputs.availabilityZone]));
        const zones = run.ofType(INSTANCE).map((i) => zoneOf.get(i.inputs.subnetId));
        expect(zones).toEqual(["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1a", "us-east-1b"]);
        expect(run.ofType("aws:lb/targetGroupAttachment:TargetGroupAttachment")).toHaveLength(5);
        expect(run.waitsFor("kubeadm-ha-cp-4-member", "kubeadm-ha-cp-3-member")).toBe(true);
    });

    it("follows a Graviton instance type to the arm64 Ubuntu image", async () => {
        const run = await runProgram({ instanceType: "m7g.large" });
        const ami = run.invokes.find((i) => i.token === "aws:ec2/getAmi:getAmi")!;
        expect(ami.inputs.filters).toEqual(
            expect.arrayContaining([
                { name: "name", values: ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"] },
                { name: "architecture", values: ["arm64"] },
            ]),
        );
        expect(ami.inputs.owners).toEqual(["099720109477"]);
        expect(run.ofType("aws:ec2/launchTemplate:LaunchTemplate").map((t) => t.inputs.imageId)).toEqual(["ami-0a1b2c3d4e5f60718"]);
    });

    it("uses an AMI override without looking one up, and honours protect and the health path", async () => {
        const run = await runProgram({ ami: "ami-0123456789abcdef0", protect: "true", healthCheckPath: "/readyz" });
        expect(run.invokes.map((i) => i.token)).not.toContain("aws:ec2/getAmi:getAmi");
        expect(run.ofType("aws:ec2/launchTemplate:LaunchTemplate").map((t) => t.inputs.imageId)).toEqual(["ami-0123456789abcdef0"]);
        expect(run.ofType(INSTANCE).every((i) => i.options.protect)).toBe(true);
        expect(run.ofType("aws:ec2/eip:Eip").every((e) => e.options.protect)).toBe(true);
        expect(run.ofType("aws:lb/targetGroup:TargetGroup")[0].inputs.healthCheck.path).toBe("/readyz");
    });
});

describe.each([
    ["update", false],
    ["preview", true],
])("a locked-down stack: the API and SSH from one address (%s)", (_mode, preview) => {
    const DEPLOYER = "203.0.113.7/32";
    let run: ProgramRun;
    beforeAll(async () => {
        run = await runProgram({ apiAllowedCidrs: [DEPLOYER], sshAllowedCidrs: [DEPLOYER] }, { preview });
    });

    it("opens nothing to the world, and the load balancer to the deployer, the VPC and each node's Elastic IP", () => {
        const rules = ingressRules(run);
        expect(rules.filter((r) => r.from === "0.0.0.0/0")).toEqual([]);
        const nodeAddresses = [10, 11, 12].map((host) => (preview ? UNKNOWN : `198.51.100.${host}/32`));
        // Resources register as their inputs resolve: compare the sources in order.
        const sources = (group: string, ports: string) =>
            rules
                .filter((r) => r.group === group && r.ports === ports)
                .map((r) => r.from)
                .sort();
        expect(sources("kubeadm-ha-api-lb", "6443-6443")).toEqual([DEPLOYER, "10.0.0.0/16", ...nodeAddresses].sort());
        expect(sources("kubeadm-ha-control-plane", "6443-6443")).toEqual(["10.0.0.0/16", "sg:kubeadm-ha-api-lb"]);
        expect(rules.filter((r) => r.ports === "22-22")).toEqual([{ group: "kubeadm-ha-control-plane", ports: "22-22", from: DEPLOYER }]);
        expect(run.named("kubeadm-ha-api-lb-api-from-203-0-113-7-32").inputs.cidrIpv4).toBe(DEPLOYER);
    });

    it("still lets every node reach the API through the load balancer: kubelets, joins and the API gate", () => {
        if (preview) return;
        // Every step runs on a node and reaches the endpoint from that node's Elastic IP.
        const allowed = run
            .ofType(INGRESS)
            .filter((r) => r.options.parent === "kubeadm-ha-api-lb")
            .map((r) => r.inputs.cidrIpv4);
        for (const step of ["kubeadm-ha-cluster-init", "kubeadm-ha-cp-1-member", "kubeadm-ha-api-reachable"]) {
            expect(allowed).toContain(`${run.named(step).inputs.connection.host}/32`);
        }
    });
});

describe("security group rules from configured lists", () => {
    it("makes one rule per distinct block: a repeated entry, or the VPC range listed again, adds nothing", async () => {
        const run = await runProgram({
            apiAllowedCidrs: ["203.0.113.7/32", "10.0.0.0/16", "203.0.113.7/32"],
            sshAllowedCidrs: ["203.0.113.7/32", "203.0.113.7/32"],
        });
        const rules = ingressRules(run);
        const lb = rules.filter((r) => r.group === "kubeadm-ha-api-lb").map((r) => r.from);
        expect(lb.filter((from) => !from.startsWith("198.51.100.")).sort()).toEqual(["10.0.0.0/16", "203.0.113.7/32"]);
        expect(lb).toHaveLength(2 + 3);
        expect(rules.filter((r) => r.ports === "22-22").map((r) => r.from)).toEqual(["203.0.113.7/32"]);
        const names = run.resources.map((r) => `${r.type}::${r.name}`);
        expect(new Set(names).size).toBe(names.length);
    });

    it("touches only the rules of a block that was added or removed when a list is edited", async () => {
        const before = await runProgram({ apiAllowedCidrs: ["203.0.113.7/32", "192.0.2.0/24"], sshAllowedCidrs: ["203.0.113.7/32"] });
        const after = await runProgram({ apiAllowedCidrs: ["192.0.2.0/24"], sshAllowedCidrs: ["192.0.2.0/24", "203.0.113.7/32"] });
        const rulesOf = (run: ProgramRun) => new Map(run.ofType(INGRESS).map((r) => [r.name, JSON.stringify(r.inputs)]));
        const [was, is] = [rulesOf(before), rulesOf(after)];
        expect([...was.keys()].filter((n) => !is.has(n))).toEqual(["kubeadm-ha-api-lb-api-from-203-0-113-7-32"]);
        expect([...is.keys()].filter((n) => !was.has(n))).toEqual(["kubeadm-ha-control-plane-ssh-from-192-0-2-0-24"]);
        // Every rule on both sides is unchanged.
        expect([...is].filter(([n, inputs]) => was.has(n) && was.get(n) !== inputs)).toEqual([]);
    });
});

describe("determinism", () => {
    it("declares identical resource inputs when run twice with the same config", async () => {
        const first = await runProgram({ controlPlaneCount: "3", tags: ["team=platform"] });
        const second = await runProgram({ controlPlaneCount: "3", tags: ["team=platform"] });
        const snapshot = (run: ProgramRun) =>
            Object.fromEntries(run.resources.map((r) => [`${r.type}::${r.name}`, { inputs: r.inputs, dependsOn: [...r.dependsOn].sort() }]));
        expect(Object.keys(snapshot(first)).length).toBe(first.resources.length);
        expect(snapshot(second)).toEqual(snapshot(first));
    });
});

describe.each([
    ["update", false],
    ["preview", true],
])("the external-etcd program (%s)", (_mode, preview) => {
    let run: ProgramRun;
    beforeAll(async () => {
        run = await runProgram({ etcdTopology: "external", sshAllowedCidrs: ["198.51.100.0/24"] }, { preview });
    });

    const etcdNodes = () => run.ofType(INSTANCE).filter((i) => i.name.includes("-etcd-"));

    it("adds three etcd members on their own instances, one per zone, hardened like the control plane", () => {
        expect(etcdNodes().map((i) => i.name)).toEqual(["kubeadm-ha-etcd-0", "kubeadm-ha-etcd-1", "kubeadm-ha-etcd-2"]);
        const zoneOf = new Map(run.ofType("aws:ec2/subnet:Subnet").map((s) => [`${s.name}-id`, s.inputs.availabilityZone]));
        if (!preview) expect(etcdNodes().map((i) => zoneOf.get(i.inputs.subnetId))).toEqual(["us-east-1a", "us-east-1b", "us-east-1c"]);
        for (const node of etcdNodes()) {
            expect(node.inputs.instanceType).toBe("t3.small");
            expect(node.inputs.metadataOptions.httpTokens).toBe("required");
            expect(node.inputs.rootBlockDevice.encrypted).toBe(true);
            const userData = userDataOf(run, node);
            expect(userData).toContain("ETCD_VERSION='3.5.25'");
            expect(userData).toContain("sha256sum --check");
        }
    });

    it("keeps etcd ports between etcd and the API servers, and nothing open to the world", () => {
        const rules = ingressRules(run);
        const etcdRules = rules.filter((r) => r.group === "kubeadm-ha-etcd");
        expect(etcdRules).toHaveLength(4);
        expect(etcdRules).toEqual(
            expect.arrayContaining([
                { group: "kubeadm-ha-etcd", ports: "2379-2379", from: "sg:kubeadm-ha-control-plane" },
                { group: "kubeadm-ha-etcd", ports: "2379-2379", from: "sg:kubeadm-ha-etcd" },
                { group: "kubeadm-ha-etcd", ports: "2380-2380", from: "sg:kubeadm-ha-etcd" },
                { group: "kubeadm-ha-etcd", ports: "22-22", from: "198.51.100.0/24" },
            ]),
        );
        // The control-plane nodes run no etcd member in this topology.
        expect(rules.filter((r) => r.group === "kubeadm-ha-control-plane" && r.ports === "2379-2380")).toEqual([]);
        expect(rules.filter((r) => r.group !== "kubeadm-ha-api-lb" && r.from === "0.0.0.0/0")).toEqual([]);
        // The API through the load balancer from the control-plane nodes' addresses; etcd members never use it.
        expect(
            run
                .ofType(INGRESS)
                .filter((r) => /-api-from-kubeadm-ha-/.test(r.name))
                .map((r) => r.name),
        ).toEqual([0, 1, 2].map((i) => `kubeadm-ha-api-lb-api-from-kubeadm-ha-cp-${i}`));
    });

    it("pins the etcd members' steps to their host keys too", () => {
        if (preview) return;
        const commands = run.ofType(COMMAND);
        const keyOf = new Map(commands.filter((c) => c.name.endsWith("-prepared")).map((p) => [p.inputs.connection.host, p.state.stdout]));
        expect(keyOf.size).toBe(6);
        for (const c of commands.filter((c) => !c.name.endsWith("-prepared"))) {
            expect([c.name, c.inputs.connection.hostKey]).toEqual([c.name, keyOf.get(c.inputs.connection.host)]);
        }
    });

    it("starts members one at a time and holds kubeadm init until the etcd health gate passes", () => {
        expect(run.waitsFor("kubeadm-ha-etcd-1-start", "kubeadm-ha-etcd-0-start")).toBe(true);
        expect(run.waitsFor("kubeadm-ha-etcd-2-start", "kubeadm-ha-etcd-1-start")).toBe(true);
        for (const i of [0, 1, 2]) expect(run.waitsFor("kubeadm-ha-etcd-healthy", `kubeadm-ha-etcd-${i}-start`)).toBe(true);
        expect(run.waitsFor("kubeadm-ha-cluster-init", "kubeadm-ha-etcd-healthy")).toBe(true);
    });

    it("converges control-plane nodes one at a time here too, with no etcd membership of their own", () => {
        expect(run.waitsFor("kubeadm-ha-cp-2-member", "kubeadm-ha-cp-1-member")).toBe(true);
        expect(run.waitsFor("kubeadm-ha-cp-0-member", "kubeadm-ha-cluster-init")).toBe(true);
        if (!preview) expect(run.named("kubeadm-ha-cp-1-member").inputs.create).toContain("STACKED='false'");
    });

    it("points kubeadm at every member and gives API servers only a client certificate", () => {
        if (preview) return expect(run.named("kubeadm-ha-cluster-init").inputs.stdin).toBe(UNKNOWN);
        const [, cluster] = parseAllDocuments(run.named("kubeadm-ha-cluster-init").inputs.stdin).map((d) => d.toJS());
        expect(cluster.etcd.external.endpoints).toEqual(["https://10.0.0.110:2379", "https://10.0.16.111:2379", "https://10.0.32.112:2379"]);
        expect(run.outputs.etcdEndpoints).toEqual(cluster.etcd.external.endpoints);
        const files = (run.named("kubeadm-ha-cp-1-pki").inputs.stdin as string)
            .trim()
            .split("\n")
            .map((l) => l.split(" ")[1]);
        expect(files).toEqual(expect.arrayContaining(["etcd/ca.crt", "apiserver-etcd-client.crt", "apiserver-etcd-client.key"]));
        expect(files).not.toContain("etcd/ca.key");
        const memberFiles = (run.named("kubeadm-ha-etcd-0-pki").inputs.stdin as string)
            .trim()
            .split("\n")
            .map((l) => l.split(" ").slice(0, 2).join(" "));
        expect(memberFiles).toEqual([
            "0644 ca.crt",
            "0644 server.crt",
            "0600 server.key",
            "0644 peer.crt",
            "0600 peer.key",
            "0644 healthcheck-client.crt",
            "0600 healthcheck-client.key",
        ]);
    });

    it("renders each member's unit from its own flags and the planned initial cluster", () => {
        if (preview) return;
        const create = run.named("kubeadm-ha-etcd-1-start").inputs.create as string;
        expect(create).toContain("MEMBER_NAME='kubeadm-ha-etcd-1'");
        expect(create).toContain(
            "INITIAL_CLUSTER='kubeadm-ha-etcd-0=https://10.0.0.110:2380,kubeadm-ha-etcd-1=https://10.0.16.111:2380,kubeadm-ha-etcd-2=https://10.0.32.112:2380'",
        );
        expect(create).toContain("--peer-client-cert-auth=true");
        expect(create).toContain("--listen-client-urls=https://10.0.16.111:2379");
        expect(run.outputs.etcdTopology).toBe("external");
    });
});

describe("switching the etcd topology", () => {
    it("adds or removes exactly the etcd tier", async () => {
        const stacked = await runProgram({});
        const external = await runProgram({ etcdTopology: "external" });
        const names = (run: ProgramRun) => new Set(run.resources.map((r) => `${r.type}::${r.name}`));
        const added = [...names(external)].filter((n) => !names(stacked).has(n));
        const removed = [...names(stacked)].filter((n) => !names(external).has(n));
        expect(added.filter((n) => n.startsWith(INSTANCE))).toEqual([
            `${INSTANCE}::kubeadm-ha-etcd-0`,
            `${INSTANCE}::kubeadm-ha-etcd-1`,
            `${INSTANCE}::kubeadm-ha-etcd-2`,
        ]);
        expect(added).toContain("kubeadm-ha:etcd:EtcdCluster::kubeadm-ha");
        expect(added).toContain(`${COMMAND}::kubeadm-ha-etcd-healthy`);
        // Stacked etcd's intra-control-plane etcd rule goes, and backups move with the etcd members;
        // no control-plane node is renamed.
        expect(removed.sort()).toEqual([
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule::kubeadm-ha-control-plane-etcd",
            `${COMMAND}::kubeadm-ha-cp-0-etcd-backup`,
            `${COMMAND}::kubeadm-ha-cp-1-etcd-backup`,
            `${COMMAND}::kubeadm-ha-cp-2-etcd-backup`,
        ]);
        expect(added).toContain(`${COMMAND}::kubeadm-ha-etcd-2-etcd-backup`);
    });
});

describe("etcd backups", () => {
    it("install on every stacked control-plane node once it has joined, from inside kubeadm's etcd pod", async () => {
        const run = await runProgram({});
        for (const node of [0, 1, 2]) {
            const backup = run.named(`kubeadm-ha-cp-${node}-etcd-backup`);
            expect(run.waitsFor(backup.name, `kubeadm-ha-cp-${node}-member`)).toBe(true);
            expect(backup.inputs.create).toContain("ETCD_ACCESS=container");
            expect(backup.inputs.create).toContain("RETENTION=48");
            expect(backup.inputs.delete).toBeUndefined();
        }
    });

    it("install on every external member after the health gate, with the host's etcdctl", async () => {
        const run = await runProgram({ etcdTopology: "external", etcdBackupRetention: "24" });
        for (const i of [0, 1, 2]) {
            const backup = run.named(`kubeadm-ha-etcd-${i}-etcd-backup`);
            expect(run.waitsFor(backup.name, "kubeadm-ha-etcd-healthy")).toBe(true);
            expect(backup.inputs.create).toContain(`ETCD_ENDPOINT=https://10.0.${16 * i}.${110 + i}:2379`);
            expect(backup.inputs.create).toContain("RETENTION=24");
            expect(backup.inputs.create).toContain(`MEMBER_NAME=kubeadm-ha-etcd-${i}`);
        }
        expect(run.resources.filter((r) => /-cp-\d-etcd-backup$/.test(r.name))).toEqual([]);
    });

    it("upload from the nodes that run etcd members, and only those hold the instance profile", async () => {
        for (const topology of ["stacked", "external"]) {
            const run = await runProgram({ etcdTopology: topology, etcdBackupInterval: "30m" });
            const bucket = run.ofType("aws:s3/bucket:Bucket");
            expect(bucket).toHaveLength(1);
            const profile = run.ofType("aws:iam/instanceProfile:InstanceProfile")[0];
            const etcdTier = topology === "stacked" ? /-cp-\d$/ : /-etcd-\d$/;
            for (const instance of run.ofType("aws:ec2/instance:Instance")) {
                expect([instance.name, instance.inputs.iamInstanceProfile]).toEqual([
                    instance.name,
                    etcdTier.test(instance.name) ? profile.state.name : undefined,
                ]);
            }
            for (const step of run.ofType(COMMAND).filter((r) => r.name.endsWith("-etcd-backup"))) {
                expect(step.inputs.create).toContain(`S3_BUCKET=${bucket[0].id}`);
                expect(step.inputs.create).toContain("S3_PREFIX=kubeadm-ha/etcd");
                expect(step.inputs.create).toContain("OnCalendar=*-*-* *:00/30:00");
                expect(step.inputs.create).toContain("systemctl start kubeadm-ha-etcd-snapshot-now.service");
            }
        }
    });

    it("restore a new cluster from etcdRestoreFrom before kubeadm init, in a step of its own name", async () => {
        const source = "s3://old-backups/kubeadm-ha/etcd/20261120T101500Z-kubeadm-ha-cp-1.db";
        const plain = await runProgram({});
        const run = await runProgram({ etcdRestoreFrom: source });
        const restore = run.named("kubeadm-ha-cp-0-etcd-restore");
        expect(restore.inputs.create).toContain("RESTORE_BUCKET='old-backups'");
        // Node 0 restores alone under its node name; the others join it.
        expect(restore.inputs.create).toMatch(/INITIAL_CLUSTER='ip-10-0-0-\d+\.ec2\.internal=https:\/\/10\.0\.0\.\d+:2380'\n/);
        expect(restore.inputs.create).toMatch(/API_SERVERS='10\.0\.16\.\d+ 10\.0\.32\.\d+'\n/);
        const init = run.ofType(COMMAND).find((c) => /^kubeadm-ha-cluster-init-restore-[0-9a-f]{12}$/.test(c.name))!;
        expect(run.waitsFor(init.name, restore.name)).toBe(true);
        expect(init.inputs.create).toContain(`RESTORE_FROM='${source}'`);
        expect(init.inputs.stdin).toContain("DirAvailable--var-lib-etcd");
        expect(plain.named("kubeadm-ha-cluster-init").inputs.stdin).not.toContain("ignorePreflightErrors");
        // The nodes may read that one object while the key is set.
        expect(run.ofType("aws:iam/rolePolicy:RolePolicy")[0].inputs.policy).toContain(
            "arn:aws:s3:::old-backups/kubeadm-ha/etcd/20261120T101500Z-kubeadm-ha-cp-1.db",
        );

        const external = await runProgram({ etcdTopology: "external", etcdRestoreFrom: source });
        for (const i of [0, 1, 2]) {
            const step = external.named(`kubeadm-ha-etcd-${i}-etcd-restore`);
            expect(step.inputs.create).toMatch(/ETCD_PEERS='10\.0\.\d+\.\d+ 10\.0\.\d+\.\d+'\n/);
            // No member starts before every member has restored: a started one answers, and stops the next restore.
            for (const j of [0, 1, 2]) expect(external.waitsFor(`kubeadm-ha-etcd-${j}-start`, step.name)).toBe(true);
        }
    });

    it("are turned off with a retention of 0 by an update of the same steps, never by a delete command", async () => {
        for (const topology of ["stacked", "external"]) {
            const run = await runProgram({ etcdBackupRetention: "0", etcdTopology: topology });
            const steps = run.ofType(COMMAND).filter((r) => r.name.endsWith("-etcd-backup"));
            expect(steps).toHaveLength(3);
            for (const step of steps) expect(step.inputs.create).toContain("systemctl disable --now kubeadm-ha-etcd-backup.timer");
        }
    });
});
