/**
 * Later `pulumi up`s on a live cluster with external etcd, under the lifecycle simulation: the etcd
 * members run on their own hosts (etcdctl and the etcd unit are the model's), the control-plane
 * nodes' API servers reach them through the endpoints their manifests name.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LifecycleSimulation, UpResult } from "../tools/offline/lifecycle";
import { resetState } from "../tools/offline/engine";
import { runProgram } from "./harness";
import { tempDir } from "./tools";

const EXTERNAL = { etcdTopology: "external", etcdCount: "3" };
const CP = (i: number) => `kubeadm-ha-cp-${i}`;
const ETCD = (i: number) => `kubeadm-ha-etcd-${i}`;
const INSTANCE = "aws:ec2/instance:Instance";

async function liveCluster(): Promise<LifecycleSimulation> {
    resetState();
    const sim = new LifecycleSimulation(tempDir("lifecycle-external"), runProgram);
    expectSafe(sim, await sim.up(EXTERNAL));
    return sim;
}

const up = (sim: LifecycleSimulation, replace: string[] = []) => sim.up(EXTERNAL, { replace });

/** The planned instances of a tier, as the run declares them. */
function planned(result: UpResult, tier: "control-plane" | "etcd") {
    return result.run
        .ofType(INSTANCE)
        .filter((i) => (i.inputs.tags["kubeadm-ha/role"] === "etcd") === (tier === "etcd"))
        .map((i) => ({ name: i.name, dns: i.state.privateDns as string, ip: i.state.privateIp as string }));
}

/** The client URLs of the external members that run now. */
function liveClientUrls(sim: LifecycleSimulation): string[] {
    const world = sim.world();
    return world.etcd.members.filter((m) => m.host && world.hosts[m.host].alive && world.hosts[m.host].etcd?.memberId === m.id).map((m) => m.clientUrl);
}

/**
 * What every run must keep: one kubeadm init and one etcd cluster formed in the cluster's life; no
 * reset of a node that stays; no stacked member; the external members exactly the planned etcd
 * instances (name and peer URL), all started, running and voting, and etcd's quorum never lost by a
 * change; the Nodes exactly the planned control-plane nodes, each API server ready; no step waiting
 * on a dead host; no two membership changes at once; no pod keeping the bootstrap pin.
 */
function expectSafe(sim: LifecycleSimulation, result: UpResult): void {
    expect(result.failed && `${result.failed.step} on ${result.failed.host}: ${result.failed.output}`).toBeUndefined();
    const world = sim.world();
    expect(world.cluster.inits).toBe(1);
    expect(world.events.filter((e) => e.what === "second-init")).toEqual([]);
    expect(world.etcd.formed).toBe(1);
    const alive = Object.values(world.hosts).filter((h) => h.alive);
    const staying = new Set(alive.map((h) => h.id));
    expect(world.events.filter((e) => e.what === "reset" && staying.has(e.host))).toEqual([]);
    expect(world.cluster.members).toEqual([]);

    const etcd = planned(result, "etcd");
    const members = world.etcd.members.map((m) => ({ name: m.name, peerUrl: m.peerUrl, learner: m.learner }));
    expect(members.sort((a, b) => a.name.localeCompare(b.name))).toEqual(
        etcd.map((p) => ({ name: p.name, peerUrl: `https://${p.ip}:2380`, learner: false })).sort((a, b) => a.name.localeCompare(b.name)),
    );
    expect(liveClientUrls(sim).sort()).toEqual(etcd.map((p) => `https://${p.ip}:2379`).sort());
    expect(world.events.filter((e) => e.what === "etcd-quorum-lost")).toEqual([]);

    const controlPlane = planned(result, "control-plane");
    expect([...world.cluster.nodes].sort()).toEqual(controlPlane.map((p) => p.dns).sort());
    for (const node of controlPlane) expect([node.name, sim.apiReady(node.name)]).toEqual([node.name, true]);

    expect(result.steps.filter((s) => s.dialSeconds > 60)).toEqual([]);
    expect(result.overlapping).toEqual([]);
    for (const host of alive.filter((h) => h.role === "control-plane")) {
        const podHosts = join(host.root, "var/lib/kubelet/pods/kube-proxy/etc-hosts");
        expect([host.instance, readFileSync(podHosts, "utf8")]).not.toEqual([host.instance, expect.stringContaining("kubeadm-ha bootstrap pin")]);
    }
}

const ran = (result: UpResult) => result.steps.map((s) => `${s.action} ${s.step}`);
/** The events of the external etcd cluster since `from`, as "<what> <member>". */
const etcdChanges = (sim: LifecycleSimulation, from: number) =>
    sim
        .world()
        .events.slice(from)
        .filter((e) => ["etcd-form", "etcd-add", "etcd-remove", "etcd-promote"].includes(e.what))
        .map((e) => `${e.what} ${e.member}`);

describe("the lifecycle simulation, external etcd", () => {
    it("first up: the members form one etcd cluster, then one kubeadm init and joins; every API server ready", async () => {
        const sim = await liveCluster();
        const world = sim.world();
        expect(world.events.filter((e) => e.what === "etcd-form").map((e) => e.step)).toEqual([`${ETCD(0)}-start`]);
        expect(world.events.filter((e) => ["init", "join"].includes(e.what)).map((e) => `${e.what} ${e.step}`)).toEqual([
            "init kubeadm-ha-cluster-init",
            `join ${CP(1)}-member`,
            `join ${CP(2)}-member`,
        ]);
        // Every member started once, without an error, and kubeadm ran only after the health gate.
        expect(world.events.filter((e) => e.what === "etcd-start").map((e) => [e.step, e.error])).toEqual(
            [0, 1, 2].map((i) => [`${ETCD(i)}-start`, undefined]),
        );
        const members = world.etcd.members.map((m) => m.clientUrl);
        for (const servers of Object.values(sim.apiServerEtcdServers())) expect(servers).toEqual(members);
    });

    it("a second up with the same config runs nothing", async () => {
        const sim = await liveCluster();
        const again = await up(sim);
        expect(ran(again)).toEqual([]);
        expectSafe(sim, again);
    });

    it("edited scripts re-run as updates that converge: no reset, no second init, no etcd restart or member change", async () => {
        const sim = await liveCluster();
        const before = sim.world().events.length;
        sim.editScripts(/-start$|-member$|cluster-init|etcd-healthy$/);
        const result = await up(sim);
        expectSafe(sim, result);
        // cluster-init ignores every change; the health gate has no update command and runs again.
        expect(ran(result)).toEqual([
            `update ${ETCD(0)}-start`,
            `update ${ETCD(1)}-start`,
            `update ${ETCD(2)}-start`,
            "update kubeadm-ha-etcd-healthy",
            `update ${CP(0)}-member`,
            `update ${CP(1)}-member`,
            `update ${CP(2)}-member`,
        ]);
        const events = sim.world().events.slice(before);
        expect(events.filter((e) => ["etcd-start", "join", "init"].includes(e.what))).toEqual([]);
        expect(etcdChanges(sim, before)).toEqual([]);
    });

    it.each([
        [1, "alive"],
        [1, "gone"],
        [0, "gone"],
    ])(
        "replacing etcd member %i whose instance is %s: the new one joins as a learner and is promoted; the old member goes, never before quorum allows",
        async (index, state) => {
            const sim = await liveCluster();
            const oldPeerUrl = sim.world().etcd.members.find((m) => m.name === ETCD(index))!.peerUrl;
            if (state === "gone") sim.kill(ETCD(index));
            const before = sim.world().events.length;
            const result = await up(sim, [ETCD(index)]);
            expectSafe(sim, result);
            // Alive (Pulumi creates the replacement first), the old member still votes, healthy: it goes
            // only once the new one votes. Gone, it goes first: etcd adds no member while a voter is down,
            // and removing a member that is down costs the quorum nothing.
            const replaced = [`etcd-add ${ETCD(index)}`, `etcd-promote ${ETCD(index)}`];
            expect(etcdChanges(sim, before)).toEqual(
                state === "alive" ? [...replaced, `etcd-remove ${ETCD(index)}`] : [`etcd-remove ${ETCD(index)}`, ...replaced],
            );
            const events = sim.world().events.slice(before);
            expect(events.filter((e) => e.what === "etcd-add").map((e) => e.learner)).toEqual([true]);
            expect(events.filter((e) => e.what === "etcd-remove").map((e) => e.peerUrl)).toEqual([oldPeerUrl]);
            // The learner is promoted after it has caught up: etcd refused the first tries, and the step waited.
            const start = result.steps.find((s) => s.step === `${ETCD(index)}-start`)!;
            expect(start.output).toMatch(/promoted the learner at https:\/\/[0-9.]+:2380 \([0-9a-f]+\) to a voting member/);
            // A snapshot in S3 through the live peer first, by the new member's start step.
            const snapshot = events.findIndex((e) => e.what === "snapshot-now" && e.step === `${ETCD(index)}-start`);
            expect(snapshot).toBeGreaterThanOrEqual(0);
            expect(snapshot).toBeLessThan(events.findIndex((e) => ["etcd-remove", "etcd-add"].includes(e.what)));
            // The members that stay are not restarted when their start steps update (new peers, same unit).
            const starts = sim
                .world()
                .events.slice(before)
                .filter((e) => e.what === "etcd-start");
            expect(starts.map((e) => [e.step, e.error])).toEqual([[`${ETCD(index)}-start`, undefined]]);
            expect(result.steps.every((s) => s.dialSeconds === 0)).toBe(true);
            // The control plane only follows: each member step, one node at a time, re-renders its API
            // server with the new member list (no join, no reset, no init), and each node's cert-renewal
            // step takes the new member's certificates into its expiry metric.
            expect(ran(result).filter((s) => / kubeadm-ha-cp-|cluster-init/.test(s))).toEqual(
                [0, 1, 2].flatMap((i) => [`update ${CP(i)}-member`, `update ${CP(i)}-cert-renewal`]),
            );
            const rendered = sim
                .world()
                .events.slice(before)
                .filter((e) => e.what === "apiserver-manifest");
            expect(rendered.map((e) => e.step)).toEqual([0, 1, 2].map((i) => `${CP(i)}-member`));
            expect(
                sim
                    .world()
                    .events.slice(before)
                    .filter((e) => ["join", "reset", "init"].includes(e.what)),
            ).toEqual([]);
        },
    );

    it("a replacement that would leave etcd without a healthy majority is refused, with what to do, and changes nothing", async () => {
        const sim = await liveCluster();
        // Member 2 is lost and stays planned; replacing member 1 would need one of the two healthy
        // members gone before the new one votes (the old way: removed first), or a member added while
        // a voter is down, which etcd refuses.
        sim.kill(ETCD(2));
        const before = sim.world().events.length;
        const result = await up(sim, [ETCD(1)]);
        expect(result.failed?.step).toBe(`${ETCD(1)}-start`);
        expect(result.failed?.output).toMatch(
            /refusing to add kubeadm-ha-etcd-1 to etcd: voting members are down \(https:\/\/[0-9.]+:2380\), and etcd takes no new member while one is; a replacement removes the member it replaces only once the new one votes, so nothing was changed\. Bring them back, or replace them too/,
        );
        expect(etcdChanges(sim, before)).toEqual([]);
        expect(sim.world().events.filter((e) => e.what === "etcd-quorum-lost")).toEqual([]);
        // The old member 1 still runs and votes.
        const old = sim.world().etcd.members.find((m) => m.name === ETCD(1))!;
        expect([old.learner, liveClientUrls(sim)]).toEqual([false, expect.arrayContaining([old.clientUrl])]);
    }, 300_000);

    it("a learner that does not catch up stays a learner and the old member stays; the next up promotes it, then removes the old one", async () => {
        const sim = await liveCluster();
        sim.changeWorld((w) => {
            w.etcd.learnerCatchUp = 1000;
        });
        const before = sim.world().events.length;
        const stopped = await up(sim, [ETCD(1)]);
        expect(stopped.failed?.step).toBe(`${ETCD(1)}-start`);
        expect(stopped.failed?.output).toMatch(
            /the learner at https:\/\/[0-9.]+:2380 did not become a voting member within 600s \(etcd: etcdserver: can only promote a learner member which is in sync with leader\); it stays a learner, and no member was removed for it/,
        );
        expect(etcdChanges(sim, before)).toEqual([`etcd-add ${ETCD(1)}`]);
        expect(sim.world().events.filter((e) => e.what === "etcd-quorum-lost")).toEqual([]);
        // It catches up; the next up finishes the replacement from where it stopped.
        sim.changeWorld((w) => {
            w.etcd.learnerCatchUp = 0;
            for (const m of w.etcd.members) if (m.learner) m.behind = 1;
        });
        const after = sim.world().events.length;
        // No --replace: the new instance is the stack's already, and its start step, which failed, runs again.
        const finished = await up(sim);
        expectSafe(sim, finished);
        expect(etcdChanges(sim, after)).toEqual([`etcd-promote ${ETCD(1)}`, `etcd-remove ${ETCD(1)}`]);
    }, 300_000);

    it.each([
        [1, "alive"],
        [0, "gone"],
    ])("replacing control-plane node %i (old host %s) joins it with the cluster's etcd endpoints, no second init", async (index, state) => {
        const sim = await liveCluster();
        const endpoints = sim.world().etcd.members.map((m) => m.clientUrl);
        if (state === "gone") sim.kill(CP(index));
        const before = sim.world().events.length;
        const result = await up(sim, [CP(index)]);
        expectSafe(sim, result);
        expect(ran(result)).not.toContain("create kubeadm-ha-cluster-init");
        expect(
            sim
                .world()
                .events.slice(before)
                .filter((e) => ["join", "init", "reset"].includes(e.what))
                .map((e) => `${e.what} ${e.step}`),
        ).toEqual([`join ${CP(index)}-member`]);
        expect(sim.apiServerEtcdServers()[CP(index)]).toEqual(endpoints);
        expect(etcdChanges(sim, before)).toEqual([]);
    });

    // Today nothing re-renders an API server's --etcd-servers after kubeadm wrote it, so replacing
    // every member one run at a time would leave each API server naming only addresses that are gone;
    // the member steps re-render them from the ClusterConfiguration each time it changes.
    it("after every etcd member is replaced one run at a time, each API server names only live members", async () => {
        const sim = await liveCluster();
        for (const index of [0, 1, 2]) {
            const result = await up(sim, [ETCD(index)]);
            expectSafe(sim, result);
            const live = liveClientUrls(sim);
            for (const [instance, servers] of Object.entries(sim.apiServerEtcdServers())) {
                expect([instance, servers.filter((s) => !live.includes(s))]).toEqual([instance, []]);
            }
        }
    });
});
