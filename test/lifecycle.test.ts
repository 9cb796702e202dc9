/**
 * Later `pulumi up`s on a live cluster, under the lifecycle simulation: Pulumi's update semantics
 * applied to the real rendered steps, on simulated hosts that share one model of the cluster.
 */
import { CP, expectSafe, liveCluster, ran } from "./lifecycle-helpers";

describe("the lifecycle simulation", () => {
    it("first up: kubeadm init once on node 0, then joins one at a time", async () => {
        const sim = await liveCluster();
        const events = sim.world().events.filter((e) => ["init", "join"].includes(e.what));
        expect(events.map((e) => `${e.what} ${e.step}`)).toEqual(["init kubeadm-ha-cluster-init", `join ${CP(1)}-member`, `join ${CP(2)}-member`]);
    });

    it("a second up with the same config runs nothing", async () => {
        const sim = await liveCluster();
        const again = await sim.up({});
        expect(ran(again)).toEqual([]);
        expectSafe(sim, again);
    });

    it("edited scripts re-run on every node as updates that converge, without a reset or a second init", async () => {
        const sim = await liveCluster();
        sim.editScripts(/-member$|cluster-init/);
        const result = await sim.up({});
        expectSafe(sim, result);
        // cluster-init ignores every change; the members update in place, in order.
        expect(ran(result)).toEqual([`update ${CP(0)}-member`, `update ${CP(1)}-member`, `update ${CP(2)}-member`]);
        expect(sim.world().events.filter((e) => e.what === "join")).toHaveLength(2);
    });

    it("replacing node 1 while its old host is alive: the new node joins, then the old member goes", async () => {
        const sim = await liveCluster();
        const oldName = sim.world().cluster.members[1].name;
        const before = sim.world().events.length;
        const result = await sim.up({}, { replace: [CP(1)] });
        expectSafe(sim, result);
        const changes = sim
            .world()
            .events.slice(before)
            .filter((e) => ["join", "member-remove", "delete-node", "reset", "init", "snapshot-now"].includes(e.what))
            .map((e) => `${e.what} ${e.member ?? e.node ?? ""}`.trim());
        // A snapshot in S3 first (taken through a live member by the new node), then joined, so the
        // cluster never has fewer healthy members than planned.
        expect(changes.slice(0, 4)).toEqual(["snapshot-now", "join", `member-remove ${oldName}`, `delete-node ${oldName}`]);
    });

    it("replacing node 1 whose host is gone: the dead member is removed before the join, nothing dials the dead host", async () => {
        const sim = await liveCluster();
        sim.kill(CP(1));
        const result = await sim.up({}, { replace: [CP(1)] });
        expectSafe(sim, result);
        expect(result.steps.every((s) => s.dialSeconds === 0)).toBe(true);
    });

    it.each([["alive"], ["gone"]])("replacing node 0 (old host %s) joins the live cluster instead of a second init", async (state) => {
        const sim = await liveCluster();
        if (state === "gone") sim.kill(CP(0));
        const before = sim.world().events.length;
        const result = await sim.up({}, { replace: [CP(0)] });
        expectSafe(sim, result);
        expect(ran(result)).not.toContain("create kubeadm-ha-cluster-init");
        // Node 0 goes first in the chain; its replacement still snapshots through a live member before it joins.
        const events = sim.world().events.slice(before);
        const snapshot = events.findIndex((e) => e.what === "snapshot-now" && e.step === `${CP(0)}-member`);
        expect(snapshot).toBeGreaterThanOrEqual(0);
        expect(snapshot).toBeLessThan(events.findIndex((e) => e.what === "join"));
    });

    it("replacing two nodes in one run: joins and removals one at a time", async () => {
        const sim = await liveCluster();
        const result = await sim.up({}, { replace: [CP(1), CP(2)] });
        expectSafe(sim, result);
    });

    it("a new instance type replaces every node, rolled one node at a time, and keeps the cluster", async () => {
        const sim = await liveCluster();
        const result = await sim.up({ instanceType: "t3.small" });
        expectSafe(sim, result);
        expect(sim.world().events.filter((e) => e.what === "join")).toHaveLength(2 + 3);
    });

    it("scaling 3 → 5 → 3 adds and removes members one at a time", async () => {
        const sim = await liveCluster();
        // The zones stay the cluster's three: five nodes left to themselves would spread into a fourth
        // zone, which scaling back down would leave, and the lifecycle guard refuses a zone leaving.
        const zones = JSON.stringify(["us-east-1a", "us-east-1b", "us-east-1c"]);
        expectSafe(sim, await sim.up({ controlPlaneCount: "5", availabilityZones: zones }));
        expectSafe(sim, await sim.up({ controlPlaneCount: "3", availabilityZones: zones }));
    });

    it("etcdRestoreFrom set on a live cluster restores nothing and runs no init: its steps find the cluster and stop", async () => {
        const sim = await liveCluster();
        const before = sim.world().events.length;
        const result = await sim.up({ etcdRestoreFrom: "s3://old-backups/kubeadm-ha/etcd/20261120T101500Z-kubeadm-ha-cp-1.db" });
        expectSafe(sim, result);
        expect(ran(result, "create").filter((s) => /restore/.test(s))).toEqual([
            `create ${CP(0)}-etcd-restore`,
            expect.stringMatching(/^create kubeadm-ha-cluster-init-restore-[0-9a-f]{12}$/),
        ]);
        const restoreStep = result.steps.find((s) => s.step === `${CP(0)}-etcd-restore`)!;
        expect(restoreStep.output).toContain("joins it, nothing is restored");
        expect(
            sim
                .world()
                .events.slice(before)
                .filter((e) => ["init", "join", "reset", "member-remove"].includes(e.what)),
        ).toEqual([]);
    });

    it("refuses to act without quorum, and says how to recover", async () => {
        const sim = await liveCluster();
        sim.kill(CP(1));
        sim.kill(CP(2));
        const result = await sim.up({}, { replace: [CP(1)] });
        expect(result.failed?.output).toContain("etcd has no quorum");
        expect(sim.world().events.filter((e) => e.what === "init")).toHaveLength(1);
    });
});
