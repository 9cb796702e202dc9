/**
 * Upgrades, configuration changes and certificate renewal on a live cluster, under the lifecycle
 * simulation: a new `kubernetesVersion`, `monitoring` or an expiring certificate, then `pulumi up`.
 */
import { ClusterEvent, LifecycleSimulation, RELEASES, UpResult } from "../tools/offline/lifecycle";
import { CP, expectSafe, liveCluster } from "./lifecycle-helpers";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const NEWEST_134 = RELEASES["1.34"].at(-1)!;

/** The events of the last run, from index `since`. */
const eventsSince = (sim: LifecycleSimulation, since: number) => sim.world().events.slice(since);

/** Control-plane hosts that are alive, by instance name. */
function liveControlPlane(sim: LifecycleSimulation) {
    return Object.values(sim.world().hosts).filter((h) => h.alive && h.role === "control-plane");
}

/**
 * One node at a time: each node's upgrade events (drain .. uncordon) come from its own member step, and
 * no node starts before the previous one has finished and passed its gate (a readiness check by the
 * previous step after its uncordon).
 */
function expectOneNodeAtATime(events: ClusterEvent[], steps: string[]): void {
    const upgrading = ["upgrade-apply", "upgrade-node", "drain", "kubelet-restart", "uncordon"];
    const order = events.filter((e) => upgrading.includes(e.what)).map((e) => e.step);
    // Contiguous per step, in chain order.
    expect(order.filter((s, i) => i === 0 || order[i - 1] !== s)).toEqual(steps);
    for (const [previous, next] of steps.slice(1).map((s, i) => [steps[i], s])) {
        const lastOfPrevious = events.map((e) => e.step === previous && e.what === "uncordon").lastIndexOf(true);
        const firstOfNext = events.findIndex((e) => e.step === next && upgrading.includes(e.what));
        const gated = events.slice(lastOfPrevious, firstOfNext).some((e) => e.step === previous && e.what === "ready-check");
        expect([previous, next, gated]).toEqual([previous, next, true]);
    }
}

function expectNoFailure(result: UpResult): void {
    expect(result.failed && `${result.failed.step}: ${result.failed.output}`).toBeUndefined();
}

describe("upgrades under pulumi up", () => {
    it("1.33 → 1.34: a snapshot, exactly one upgrade apply, then upgrade node on every other node, one at a time, each after the previous node's gate", async () => {
        const sim = await liveCluster({ kubernetesVersion: "1.33" });
        expect(sim.world().cluster.version).toBe(RELEASES["1.33"].at(-1));
        const since = sim.world().events.length;
        const result = await sim.up({ kubernetesVersion: "1.34" });
        expectSafe(sim, result);
        const events = eventsSince(sim, since);
        const applies = events.filter((e) => e.what === "upgrade-apply");
        expect(applies.map((e) => [e.step, e.to])).toEqual([[`${CP(0)}-member`, NEWEST_134]]);
        expect(events.filter((e) => e.what === "upgrade-node").map((e) => [e.step, e.to])).toEqual([
            [`${CP(1)}-member`, NEWEST_134],
            [`${CP(2)}-member`, NEWEST_134],
        ]);
        // The snapshot is uploaded before the first change of the upgrade.
        const snapshot = events.findIndex((e) => e.what === "snapshot-now");
        const firstChange = events.findIndex((e) => e.what === "apt-install");
        expect(snapshot).toBeGreaterThanOrEqual(0);
        expect(snapshot).toBeLessThan(firstChange);
        expectOneNodeAtATime(events, [`${CP(0)}-member`, `${CP(1)}-member`, `${CP(2)}-member`]);
        for (const host of liveControlPlane(sim)) expect([host.instance, host.kubelet, host.controlPlane]).toEqual([host.instance, NEWEST_134, NEWEST_134]);
        expect(sim.world().cluster.version).toBe(NEWEST_134);
        // 1.34's kubeadm expects another pause image than 1.33's: each drained node's containerd follows it.
        for (const host of liveControlPlane(sim)) {
            expect([host.instance, readFileSync(join(sim.hostRoot(host.id), "etc/containerd/config.toml"), "utf8")]).toEqual([
                host.instance,
                expect.stringContaining('sandbox_image = "registry.k8s.io/pause:3.10.1"'),
            ]);
        }
        expect(events.filter((e) => e.what === "containerd-restart").map((e) => e.step)).toEqual([`${CP(0)}-member`, `${CP(1)}-member`, `${CP(2)}-member`]);
        // Done: the next run changes nothing.
        const again = await sim.up({ kubernetesVersion: "1.34" });
        expect(again.steps).toEqual([]);
    });

    it("a patch upgrade goes the same way, to exactly that release", async () => {
        const sim = await liveCluster({ kubernetesVersion: "1.34.1" });
        const since = sim.world().events.length;
        const result = await sim.up({ kubernetesVersion: "1.34.2" });
        expectSafe(sim, result);
        const events = eventsSince(sim, since);
        expect(events.filter((e) => e.what.startsWith("upgrade-")).map((e) => `${e.what} ${e.step} ${e.to}`)).toEqual([
            `upgrade-apply ${CP(0)}-member 1.34.2`,
            `upgrade-node ${CP(1)}-member 1.34.2`,
            `upgrade-node ${CP(2)}-member 1.34.2`,
        ]);
        expectOneNodeAtATime(events, [`${CP(0)}-member`, `${CP(1)}-member`, `${CP(2)}-member`]);
    });

    it("refuses a skipped minor and a downgrade before anything is touched, naming both versions", async () => {
        const sim = await liveCluster({ kubernetesVersion: "1.32" });
        const since = sim.world().events.length;
        await expect(sim.up({ kubernetesVersion: "1.34" })).rejects.toThrow(/1\.32.*1\.34|1\.34.*1\.32/s);
        const newer = await liveCluster({ kubernetesVersion: "1.34" });
        await expect(newer.up({ kubernetesVersion: "1.33" })).rejects.toThrow(/1\.34.*1\.33|1\.33.*1\.34/s);
        expect(eventsSince(sim, since)).toEqual([]);
    });

    it("a node refuses a skipped minor by itself, before apt is touched, when the stack's record disagrees with the cluster", async () => {
        const sim = await liveCluster({ kubernetesVersion: "1.32" });
        const first = await sim.up({ kubernetesVersion: "1.32" });
        // A record that says 1.33 (an update that failed after recording it): the program's check passes 1.33 → 1.34.
        const record = { ...first.run.outputs.lifecycle, kubernetesVersion: "1.33" };
        const since = sim.world().events.length;
        const result = await sim.up({ kubernetesVersion: "1.34" }, { outputs: { lifecycle: record } });
        expect(result.failed?.step).toBe(`${CP(0)}-member`);
        expect(result.failed?.output).toContain(
            "the cluster runs 1.32.10 and 1.34.0 was asked for: kubeadm upgrades one minor at a time; upgrade to 1.33 first",
        );
        expect(eventsSince(sim, since).filter((e) => ["apt-install", "snapshot-now", "drain"].includes(e.what) || e.what.startsWith("upgrade-"))).toEqual([]);
    });

    it("a node replaced after the upgrade installs the cluster's release and joins without an upgrade of its own", async () => {
        const sim = await liveCluster({ kubernetesVersion: "1.33" });
        expectSafe(sim, await sim.up({ kubernetesVersion: "1.34" }));
        const since = sim.world().events.length;
        const result = await sim.up({ kubernetesVersion: "1.34" }, { replace: [CP(1)] });
        expectSafe(sim, result);
        const events = eventsSince(sim, since);
        expect(events.filter((e) => e.what.startsWith("upgrade-"))).toEqual([]);
        expect(events.filter((e) => e.what === "join")).toHaveLength(1);
        for (const host of liveControlPlane(sim)) expect([host.instance, host.kubelet]).toEqual([host.instance, NEWEST_134]);
    });

    it("a gate that fails stops the run at that node; the next run finishes the upgrade", async () => {
        const sim = await liveCluster({ kubernetesVersion: "1.33" });
        sim.kill(CP(2));
        const first = await sim.up({ kubernetesVersion: "1.34" });
        // Node 0's gate before its upgrade sees node 2's etcd member down: nothing is upgraded.
        expect(first.failed?.step).toBe(`${CP(0)}-member`);
        expect(first.failed?.output).toMatch(/etcd did not settle at its healthy voting members.*ip-10-0-32-12\.ec2\.internal false false/);
        expect(sim.world().events.filter((e) => e.what.startsWith("upgrade-"))).toEqual([]);
        // Node 2 replaced in the same run as the upgrade: its replacement joins at 1.34 (the template's
        // release) and the others are upgraded one at a time.
        const second = await sim.up({ kubernetesVersion: "1.34" }, { replace: [CP(2)] });
        expectNoFailure(second);
        expectSafe(sim, second);
        for (const host of liveControlPlane(sim)) expect([host.instance, host.controlPlane ?? host.kubelet]).toEqual([host.instance, NEWEST_134]);
    });
});

describe("configuration changes under pulumi up", () => {
    it("monitoring reaches running nodes: the cluster's copy first, then each node's static pods, one node at a time", async () => {
        const sim = await liveCluster();
        const since = sim.world().events.length;
        const result = await sim.up({ monitoring: "true" });
        expectSafe(sim, result);
        const events = eventsSince(sim, since);
        const rendered = events.filter((e) => ["apiserver-manifest", "etcd-manifest"].includes(e.what)).map((e) => `${e.what} ${e.step}`);
        expect(rendered).toEqual([0, 1, 2].flatMap((i) => [`apiserver-manifest ${CP(i)}-member`, `etcd-manifest ${CP(i)}-member`]));
        // Each node updates the cluster's copy (the first changes it) before re-rendering its own pods.
        const order = events.filter((e) => ["upload-config", "apiserver-manifest"].includes(e.what)).map((e) => `${e.what} ${e.step}`);
        expect(order).toEqual([0, 1, 2].flatMap((i) => [`upload-config ${CP(i)}-member`, `apiserver-manifest ${CP(i)}-member`]));
        for (const host of liveControlPlane(sim)) {
            const manifest = (name: string) => require("node:fs").readFileSync(`${host.root}/etc/kubernetes/manifests/${name}.yaml`, "utf8");
            expect(manifest("kube-controller-manager")).toContain("--bind-address=0.0.0.0");
            expect(manifest("kube-scheduler")).toContain("--bind-address=0.0.0.0");
            expect(manifest("etcd")).toContain("--listen-metrics-urls=http://0.0.0.0:2381");
        }
        expect((await sim.up({ monitoring: "true" })).steps.filter((s) => s.step.endsWith("-member"))).toEqual([]);
    });
});

describe("certificate renewal under pulumi up", () => {
    it("renews within the window, one node at a time, and a later run with the same config changes nothing", async () => {
        const sim = await liveCluster();
        // Ten months on: 55 days left, inside the 60-day window.
        sim.age(310);
        const expiry = Object.values(sim.world().hosts).find((h) => h.certExpiry)!.certExpiry!;
        const since = sim.world().events.length;
        const result = await sim.up({}, { outputs: { certificates: { earliestExpiry: expiry } } });
        expectSafe(sim, result);
        const events = eventsSince(sim, since);
        expect(events.filter((e) => e.what === "certs-renew").map((e) => e.step)).toEqual([0, 1, 2].map((i) => `${CP(i)}-member`));
        for (const host of liveControlPlane(sim)) expect(Date.parse(host.certExpiry!)).toBeGreaterThan(Date.now() + 300 * 86_400_000);
        // The request stays what it was: the member steps do not run again.
        const again = await sim.up({}, { outputs: { certificates: { earliestExpiry: expiry, renewalRequestedFor: expiry } } });
        expect(again.steps).toEqual([]);
    });
});
