/**
 * What a live cluster cannot take: the pure checks, each rule both ways, then the program run twice
 * (the second run reads the first run's outputs, as a StackReference to the stack itself does).
 */
import { CLUSTER_LIFECYCLE_TYPE } from "../components/lifecycle";
import { MIN_KUBERNETES_MINOR } from "../core/config";
import { checkLifecycle, keepsQuorum, LifecycleRecord, readLifecycleRecord, scaleDownSteps } from "../core/lifecycle";
import { runProgram } from "./harness";
import { runRecording } from "./recording";

const ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"];

const RUNNING: LifecycleRecord = {
    clusterName: "kubeadm-ha",
    vpcCidr: "10.0.0.0/16",
    podCidr: "192.168.0.0/16",
    serviceCidr: "10.96.0.0/12",
    etcdTopology: "stacked",
    zones: ZONES,
    kubernetesVersion: "1.34",
    controlPlaneCount: 3,
    etcdCount: 0,
    cni: "calico",
    formatVersion: 1,
};
const EXTERNAL: Partial<LifecycleRecord> = { etcdTopology: "external", etcdCount: 3 };

const REBUILD = "or, to have it, create a new stack with the new value and start its etcd from a snapshot of this one (kubeadm-ha:etcdRestoreFrom)";
const MOVE =
    "or, to have it, create a new stack with the new value and move the workloads to it (a snapshot of this cluster would bring back addresses from the old range)";

const CNI_WHY =
    "the pod network is chosen when the cluster is built: a switch removes the running one under every pod (with none, the one you installed stays and a second is added) and installs one that assigns pod addresses its own way (Calico's IP pools, Cilium's cluster-pool IPAM), and kubeadm-ha has no migration between them";
const CNI_TODO =
    "or, to have it, create a new stack with the new value and move the workloads to it (a snapshot of this cluster would bring back the old pod network's objects)";

type Change = [label: string, running: Partial<LifecycleRecord>, requested: Partial<LifecycleRecord>];

function check(running: Partial<LifecycleRecord>, requested: Partial<LifecycleRecord>): string[] {
    return checkLifecycle({ ...RUNNING, ...running }, { ...RUNNING, ...requested });
}

describe("checks against the running cluster", () => {
    it("lets a new cluster (no record of a previous update) have anything", () => {
        expect(checkLifecycle(undefined, { ...RUNNING, controlPlaneCount: 1, kubernetesVersion: "1.31" })).toEqual([]);
    });

    const refused: [...Change, string][] = [
        [
            "a new cluster name",
            {},
            { clusterName: "prod" },
            `kubeadm-ha:clusterName: the cluster runs kubeadm-ha, prod was requested: it names every resource and is the kubeadm cluster name, so a new name replaces every node, the load balancer and the PKI: a new, empty cluster; set it back to kubeadm-ha, ${REBUILD}`,
        ],
        [
            "a new VPC range",
            {},
            { vpcCidr: "10.1.0.0/16" },
            `kubeadm-ha:vpcCidr: the cluster runs 10.0.0.0/16, 10.1.0.0/16 was requested: a new range is a new VPC, and with it new subnets, nodes and load balancer: a new, empty cluster; set it back to 10.0.0.0/16, ${REBUILD}`,
        ],
        [
            "a new pod range",
            {},
            { podCidr: "172.16.0.0/16" },
            `kubeadm-ha:podCidr: the cluster runs 192.168.0.0/16, 172.16.0.0/16 was requested: the pod range is fixed when kubeadm init runs (kube-controller-manager's cluster CIDR, each node's pod range, the pod network's pool); set it back to 192.168.0.0/16, ${MOVE}`,
        ],
        [
            "a new service range",
            {},
            { serviceCidr: "10.100.0.0/16" },
            `kubeadm-ha:serviceCidr: the cluster runs 10.96.0.0/12, 10.100.0.0/16 was requested: the service range is fixed when kubeadm init runs: every Service's cluster IP and the API server certificates' kubernetes Service address come from it; set it back to 10.96.0.0/12, ${MOVE}`,
        ],
        [
            "stacked to external etcd",
            {},
            EXTERNAL,
            `kubeadm-ha:etcdTopology: the cluster runs stacked, external was requested: moving etcd between the control-plane nodes and nodes of its own starts a new, empty etcd: every object in the cluster would be lost; set it back to stacked, ${REBUILD}`,
        ],
        [
            "external to stacked etcd",
            EXTERNAL,
            { etcdTopology: "stacked", etcdCount: 0 },
            `kubeadm-ha:etcdTopology: the cluster runs external, stacked was requested: moving etcd between the control-plane nodes and nodes of its own starts a new, empty etcd: every object in the cluster would be lost; set it back to external, ${REBUILD}`,
        ],
        [
            "a zone removed",
            {},
            { zones: ["us-east-1a", "us-east-1b"] },
            'kubeadm-ha:availabilityZones: the cluster runs in ["us-east-1a","us-east-1b","us-east-1c"], ["us-east-1a","us-east-1b"] was requested: us-east-1c would leave the list; control-plane node 2 would move from us-east-1c to us-east-1a. ' +
                "Their subnets would be replaced, and with them the nodes in them and the load balancer: a new load balancer has a new DNS name, and that name is the API endpoint every certificate and kubeconfig names. " +
                `Set kubeadm-ha:availabilityZones to ["us-east-1a","us-east-1b","us-east-1c"] (zones may be added at the end while no node moves), ${REBUILD}`,
        ],
        [
            "zones reordered",
            {},
            { zones: ["us-east-1a", "us-east-1c", "us-east-1b"] },
            'kubeadm-ha:availabilityZones: the cluster runs in ["us-east-1a","us-east-1b","us-east-1c"], ["us-east-1a","us-east-1c","us-east-1b"] was requested: us-east-1b, us-east-1c would change position (a zone\'s subnet follows its position); control-plane node 1 would move from us-east-1b to us-east-1c; control-plane node 2 would move from us-east-1c to us-east-1b. ' +
                "Their subnets would be replaced, and with them the nodes in them and the load balancer: a new load balancer has a new DNS name, and that name is the API endpoint every certificate and kubeconfig names. " +
                `Set kubeadm-ha:availabilityZones to ["us-east-1a","us-east-1b","us-east-1c"] (zones may be added at the end while no node moves), ${REBUILD}`,
        ],
        [
            "a zone added at the end that moves nodes 3 and 4 of five",
            { controlPlaneCount: 5 },
            { controlPlaneCount: 5, zones: [...ZONES, "us-east-1d"] },
            'kubeadm-ha:availabilityZones: the cluster runs in ["us-east-1a","us-east-1b","us-east-1c"], ["us-east-1a","us-east-1b","us-east-1c","us-east-1d"] was requested: control-plane node 3 would move from us-east-1a to us-east-1d; control-plane node 4 would move from us-east-1b to us-east-1a. ' +
                `Moving a node replaces it with a new instance in another zone. Set kubeadm-ha:availabilityZones to ["us-east-1a","us-east-1b","us-east-1c"] (zones may be added at the end while no node moves), ${REBUILD}`,
        ],
        [
            "a zone swapped under the external etcd nodes only",
            { ...EXTERNAL, controlPlaneCount: 2, zones: [...ZONES, "us-east-1d"] },
            { ...EXTERNAL, controlPlaneCount: 2, zones: [...ZONES, "us-east-1e"] },
            'kubeadm-ha:availabilityZones: the cluster runs in ["us-east-1a","us-east-1b","us-east-1c","us-east-1d"], ["us-east-1a","us-east-1b","us-east-1c","us-east-1e"] was requested: us-east-1d would leave the list. ' +
                "Their subnets would be replaced, and with them the nodes in them and the load balancer: a new load balancer has a new DNS name, and that name is the API endpoint every certificate and kubeconfig names. " +
                `Set kubeadm-ha:availabilityZones to ["us-east-1a","us-east-1b","us-east-1c","us-east-1d"] (zones may be added at the end while no node moves), ${REBUILD}`,
        ],
        [
            "stacked 7 to 3 at once",
            { controlPlaneCount: 7 },
            { controlPlaneCount: 3 },
            "kubeadm-ha:controlPlaneCount: the cluster runs 7 etcd members (one per control-plane node), 3 was requested: removing 4 at once leaves fewer than the 4 a majority of 7 needs, and etcd would lose quorum; go down in steps, one `pulumi up` each: 5 first, then 3",
        ],
        [
            "stacked 3 to 1",
            {},
            { controlPlaneCount: 1 },
            "kubeadm-ha:controlPlaneCount: the cluster runs 3 etcd members (one per control-plane node), 1 was requested: removing 2 at once leaves fewer than the 2 a majority of 3 needs, and etcd would lose quorum; no smaller steps reach 1 from 3 while keeping a majority; set it back to 3, or, to run 1, create a new stack with 1 and start its etcd from a snapshot of this one (kubeadm-ha:etcdRestoreFrom)",
        ],
        [
            "external 7 members to 3 at once",
            { ...EXTERNAL, etcdCount: 7 },
            { ...EXTERNAL, etcdCount: 3 },
            "kubeadm-ha:etcdCount: the cluster runs 7 etcd members (on nodes of their own), 3 was requested: removing 4 at once leaves fewer than the 4 a majority of 7 needs, and etcd would lose quorum; go down in steps, one `pulumi up` each: 5 first, then 3",
        ],
        [
            "calico to cilium",
            {},
            { cni: "cilium" },
            `kubeadm-ha:cni: the cluster runs calico, cilium was requested: ${CNI_WHY}; set it back to calico, ${CNI_TODO}`,
        ],
        [
            "cilium to none",
            { cni: "cilium" },
            { cni: "none" },
            `kubeadm-ha:cni: the cluster runs cilium, none was requested: ${CNI_WHY}; set it back to cilium, ${CNI_TODO}`,
        ],
        [
            "none to calico",
            { cni: "none" },
            { cni: "calico" },
            `kubeadm-ha:cni: the cluster runs none, calico was requested: ${CNI_WHY}; set it back to none, ${CNI_TODO}`,
        ],
        [
            "a skipped minor",
            { kubernetesVersion: "1.33" },
            { kubernetesVersion: "1.35" },
            "kubeadm-ha:kubernetesVersion: the cluster runs 1.33, 1.35 was requested: kubeadm upgrades one minor at a time; set 1.34 first, then 1.35",
        ],
        [
            "two skipped minors, to a release",
            { kubernetesVersion: "1.32.5" },
            { kubernetesVersion: "1.35.1" },
            "kubeadm-ha:kubernetesVersion: the cluster runs 1.32.5, 1.35.1 was requested: kubeadm upgrades one minor at a time; set 1.33 first, then 1.34, then 1.35.1",
        ],
        [
            "a minor downgrade",
            { kubernetesVersion: "1.34" },
            { kubernetesVersion: "1.33" },
            "kubeadm-ha:kubernetesVersion: the cluster runs 1.34, 1.33 was requested: kubeadm cannot downgrade a cluster; set it back to 1.34 or a newer version",
        ],
        [
            "a patch downgrade",
            { kubernetesVersion: "1.34.3" },
            { kubernetesVersion: "1.34.1" },
            "kubeadm-ha:kubernetesVersion: the cluster runs 1.34.3, 1.34.1 was requested: kubeadm cannot downgrade a cluster, not even by a patch; set it back to 1.34.3 or a newer version (1.34 means the newest 1.34 patch)",
        ],
        [
            "a version below the program's minimum",
            { kubernetesVersion: `1.${MIN_KUBERNETES_MINOR}` },
            { kubernetesVersion: `1.${MIN_KUBERNETES_MINOR - 1}` },
            `kubeadm-ha:kubernetesVersion: the cluster runs 1.${MIN_KUBERNETES_MINOR}, 1.${MIN_KUBERNETES_MINOR - 1} was requested: this program supports 1.${MIN_KUBERNETES_MINOR} and newer (kubeadm's v1beta4 configuration); keep 1.${MIN_KUBERNETES_MINOR} or set a newer version`,
        ],
    ];
    it.each(refused)("refuses %s", (_label, running, requested, message) => {
        expect(check(running, requested)).toEqual([message]);
    });

    const allowed: Change[] = [
        ["no change at all", {}, {}],
        ["3 to 5 control-plane nodes, a zone added at the end", {}, { controlPlaneCount: 5, zones: [...ZONES, "us-east-1d"] }],
        ["stacked 5 to 3 (3 of 5 is a majority)", { controlPlaneCount: 5 }, { controlPlaneCount: 3 }],
        ["stacked 7 to 5", { controlPlaneCount: 7 }, { controlPlaneCount: 5 }],
        ["external 5 members to 3", { ...EXTERNAL, etcdCount: 5 }, { ...EXTERNAL, etcdCount: 3 }],
        ["external: any change of API servers, which hold no member", { ...EXTERNAL, controlPlaneCount: 5 }, { ...EXTERNAL, controlPlaneCount: 2 }],
        ["a zone added at the end while no node moves", {}, { zones: [...ZONES, "us-east-1d"] }],
        ["the next minor", { kubernetesVersion: "1.33" }, { kubernetesVersion: "1.34" }],
        ["the next minor, from a release to a release", { kubernetesVersion: "1.33.4" }, { kubernetesVersion: "1.34.0" }],
        ["a newer patch", { kubernetesVersion: "1.34.1" }, { kubernetesVersion: "1.34.3" }],
        ["a pinned release to its minor's newest patch", { kubernetesVersion: "1.34.2" }, { kubernetesVersion: "1.34" }],
        ["a minor to one of its releases (which patch runs is not recorded)", { kubernetesVersion: "1.34" }, { kubernetesVersion: "1.34.2" }],
    ];
    it.each(allowed)("allows %s", (_label, running, requested) => {
        expect(check(running, requested)).toEqual([]);
    });

    it("reports every refusal at once", () => {
        expect(check({ controlPlaneCount: 7 }, { clusterName: "prod", controlPlaneCount: 3, kubernetesVersion: "1.36" }).map((m) => m.split(":")[1])).toEqual([
            "clusterName",
            "controlPlaneCount",
            "kubernetesVersion",
        ]);
    });

    it("keeps a majority of the running members, and steps down through odd counts", () => {
        const table = [1, 3, 5, 7].flatMap((running) => [1, 3, 5, 7].map((requested) => `${running}→${requested}: ${keepsQuorum(running, requested)}`));
        expect(table.filter((row) => row.endsWith("false"))).toEqual(["3→1: false", "5→1: false", "7→1: false", "7→3: false"]);
        expect(scaleDownSteps(7, 3)).toEqual([5, 3]);
        expect(scaleDownSteps(5, 3)).toEqual([3]);
        expect(scaleDownSteps(3, 1)).toBeUndefined();
        expect(scaleDownSteps(7, 1)).toBeUndefined();
    });

    it("reads the record back, or says why it cannot", () => {
        expect(readLifecycleRecord(undefined)).toEqual({});
        expect(readLifecycleRecord(RUNNING)).toEqual({ record: RUNNING });
        expect(readLifecycleRecord({ ...RUNNING, formatVersion: 2 })).toEqual({
            error: "the stack's lifecycle output, written by its last update, has format 2, which this program does not know (it writes 1); run the version of the program that wrote it, or a newer one; the checks that protect a live cluster need it (see `pulumi stack output lifecycle`)",
        });
        expect(readLifecycleRecord({ ...RUNNING, cni: "flannel" })).toEqual({
            error: "the stack's lifecycle output, written by its last update, lacks a valid cni; the checks that protect a live cluster need it (see `pulumi stack output lifecycle`)",
        });
        expect(readLifecycleRecord({ ...RUNNING, zones: [], controlPlaneCount: "3" })).toEqual({
            error: "the stack's lifecycle output, written by its last update, lacks a valid controlPlaneCount, zones; the checks that protect a live cluster need it (see `pulumi stack output lifecycle`)",
        });
    });
});

describe("a record written before it kept the pod network", () => {
    const older: Partial<LifecycleRecord> = { ...RUNNING };
    delete older.cni;
    const release = (name: string) => ({ name, chart: name, version: "1", namespace: "kube-system" });

    it.each([
        ["calico", "a calico release", [release("calico")]],
        ["cilium", "a cilium release and monitoring", [release("cilium"), release("kube-prometheus-stack")]],
        ["none", "monitoring alone", [release("kube-prometheus-stack")]],
        ["none", "no release", []],
    ])("reads it as %s from the same update's addons output (%s)", (cni, _label, addons) => {
        expect(readLifecycleRecord(older, addons)).toEqual({ record: { ...RUNNING, cni } });
    });

    it("reads it as calico, the default of every release that wrote it, without a readable addons output", () => {
        expect(readLifecycleRecord(older)).toEqual({ record: RUNNING });
        expect(readLifecycleRecord(older, "calico")).toEqual({ record: RUNNING });
    });

    it("then refuses a switch as for a new record", () => {
        const read = readLifecycleRecord(older, [release("cilium")]);
        expect("record" in read && checkLifecycle(read.record, { ...RUNNING, cni: "calico" })).toEqual([
            `kubeadm-ha:cni: the cluster runs cilium, calico was requested: ${CNI_WHY}; set it back to cilium, ${CNI_TODO}`,
        ]);
    });
});

/**
 * What the record says `count` control-plane nodes were built from: the lookup's image; the template's
 * first version for the first `kept` (running from the first run), a later one for the others.
 */
const builtNodes = (count: number, kept = count) =>
    Array.from({ length: count }, (_, i) => ({
        name: `kubeadm-ha-cp-${i}`,
        image: "ami-0f1e2d3c4b5a69788",
        launchTemplateVersion: i < kept ? "1" : expect.stringMatching(/^[2-9]\d*$/),
        userDataSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    }));

/** The program after an update that left `previousOutputs`. */
function runAfter(config: Record<string, unknown>, previousOutputs: Record<string, unknown>, preview = false) {
    return runRecording(config, { previousOutputs, preview });
}

const READ = "read pulumi:pulumi:StackReference::previous-run";

describe("the program, run twice", () => {
    let first: Awaited<ReturnType<typeof runProgram>>;
    beforeAll(async () => {
        first = await runProgram({ kubernetesVersion: "1.33" });
    });

    it("records what it applied in a plain (non-secret) lifecycle output", () => {
        expect(first.outputs.lifecycle).toEqual({ ...RUNNING, kubernetesVersion: "1.33", nodes: builtNodes(3) });
        expect(first.secretOutputs).not.toContain("lifecycle");
        expect(first.plainOutputs.lifecycle).toEqual(first.outputs.lifecycle);
    });

    it("reads its own stack's last outputs, and on a first run finds none", () => {
        const [read] = first.ofType("pulumi:pulumi:StackReference");
        // Self-managed state (the organization "organization"): the bare stack name, which both layouts resolve (core/stack-reference.ts).
        expect(read).toMatchObject({ name: "previous-run", inputs: { name: "test" }, state: { outputs: {} } });
        expect(first.named("kubeadm-ha-lifecycle").inputs).toEqual({ requested: first.outputs.lifecycle });
    });

    it.each([
        ["an update", false],
        ["a preview", true],
    ])("refuses, in %s, a change the cluster cannot take before declaring anything but the read", async (_label, preview) => {
        const { run, declared } = runAfter({ kubernetesVersion: "1.35", podCidr: "172.16.0.0/16" }, first.outputs, preview);
        await expect(run).rejects.toThrow(
            "refused: the running cluster cannot take this change:\n" +
                "  - kubeadm-ha:podCidr: the cluster runs 192.168.0.0/16, 172.16.0.0/16 was requested: ",
        );
        await expect(run).rejects.toThrow(
            "  - kubeadm-ha:kubernetesVersion: the cluster runs 1.33, 1.35 was requested: kubeadm upgrades one minor at a time; set 1.34 first, then 1.35",
        );
        expect(declared).toEqual([READ]);
    });

    it("refuses scaling 5 nodes to 3 with the default zones, which would drop a zone", async () => {
        const five = await runProgram({ controlPlaneCount: 5 });
        expect(five.outputs.lifecycle.zones).toEqual([...ZONES, "us-east-1d"]);
        const { run, declared } = runAfter({ controlPlaneCount: 3 }, five.outputs);
        await expect(run).rejects.toThrow(/kubeadm-ha:availabilityZones: .* us-east-1d would leave the list/);
        expect(declared).toEqual([READ]);
        // Keeping the zones, as the message says, is fine: 3 of 5 members keep a majority.
        const { run: kept } = runAfter({ controlPlaneCount: 3, availabilityZones: [...ZONES, "us-east-1d"] }, five.outputs);
        await expect(kept).resolves.toBeDefined();
    });

    it("lets a cluster grow and upgrade by one minor, recording what it ran and what it runs", async () => {
        const grown = { controlPlaneCount: 5, kubernetesVersion: "1.34" };
        const { run, declared, registeredOutputs } = runAfter(grown, first.outputs);
        const second = await run;
        expect(declared[0]).toBe(READ);
        expect(declared.length).toBeGreaterThan(20);
        expect(second.outputs.lifecycle).toEqual({ ...RUNNING, controlPlaneCount: 5, zones: [...ZONES, "us-east-1d"], nodes: builtNodes(5, 3) });
        // What a stack policy sees: both records, as the component's outputs.
        expect(second.named("kubeadm-ha-lifecycle").type).toBe(CLUSTER_LIFECYCLE_TYPE);
        expect(registeredOutputs.get("kubeadm-ha-lifecycle")).toEqual({ running: first.outputs.lifecycle, requested: second.outputs.lifecycle });
        // The run after, with nothing changed, declares the same inputs: the running record is no input.
        const third = await runAfter(grown, second.outputs).run;
        expect(third.named("kubeadm-ha-lifecycle").inputs).toEqual(second.named("kubeadm-ha-lifecycle").inputs);
        expect(third.named("kubeadm-ha-lifecycle").inputs).toEqual({ requested: second.outputs.lifecycle });
    });

    it("refuses a new pod network on a stack whose record predates the field, from the addons output of its last update", async () => {
        const older = { ...first.outputs.lifecycle };
        delete older.cni;
        const addons = [{ name: "cilium", chart: "cilium", version: "1.18.6", namespace: "kube-system" }];
        const { run, declared } = runAfter({ kubernetesVersion: "1.33" }, { ...first.outputs, lifecycle: older, addons });
        await expect(run).rejects.toThrow(
            "  - kubeadm-ha:cni: the cluster runs cilium, calico was requested: the pod network is chosen when the cluster is built",
        );
        expect(declared).toEqual([READ]);
        const kept = await runAfter({ kubernetesVersion: "1.33", cni: "cilium" }, { ...first.outputs, lifecycle: older, addons }).run;
        expect(kept.outputs.lifecycle.cni).toBe("cilium");
    });

    it("refuses a record it cannot read rather than guessing", async () => {
        const { run, declared } = runAfter({}, { ...first.outputs, lifecycle: { formatVersion: 9 } });
        await expect(run).rejects.toThrow("the stack's lifecycle output, written by its last update, has format 9");
        expect(declared).toEqual([READ]);
    });
});
