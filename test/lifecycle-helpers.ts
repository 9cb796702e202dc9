/** What the stacked lifecycle tests share: a live cluster to start from, and what every run must keep. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LifecycleSimulation, UpResult } from "../tools/offline/lifecycle";
import { resetState } from "../tools/offline/engine";
import { runProgram } from "./harness";
import { tempDir } from "./tools";

export const CP = (i: number) => `kubeadm-ha-cp-${i}`;

export async function liveCluster(config: Record<string, unknown> = {}): Promise<LifecycleSimulation> {
    resetState();
    const sim = new LifecycleSimulation(tempDir("lifecycle"), runProgram);
    const first = await sim.up(config);
    expectSafe(sim, first);
    return sim;
}

/** What every run must keep: one init in the cluster's life, no reset of a node that stays, membership equal to the plan, no step waiting on a dead host, and no two membership changes at once. */
export function expectSafe(sim: LifecycleSimulation, result: UpResult): void {
    expect(result.failed && `${result.failed.step} on ${result.failed.host}: ${result.failed.output}`).toBeUndefined();
    const world = sim.world();
    expect(world.cluster.inits).toBe(1);
    expect(world.events.filter((e) => e.what === "second-init")).toEqual([]);
    const alive = Object.values(world.hosts).filter((h) => h.alive);
    const staying = new Set(alive.map((h) => h.id));
    expect(world.events.filter((e) => e.what === "reset" && staying.has(e.host))).toEqual([]);
    const planned = result.run.ofType("aws:ec2/instance:Instance").map((i) => i.state.privateDns as string);
    expect(world.cluster.members.map((m) => m.name).sort()).toEqual([...planned].sort());
    expect(world.cluster.members.every((m) => !m.learner)).toBe(true);
    expect(world.cluster.nodes.sort()).toEqual([...planned].sort());
    expect(result.steps.filter((s) => s.dialSeconds > 60)).toEqual([]);
    expect(result.overlapping).toEqual([]);
    // No pod keeps the address the bootstrap pinned the endpoint to.
    for (const host of alive) {
        const podHosts = join(host.root, "var/lib/kubelet/pods/kube-proxy/etc-hosts");
        expect([host.instance, readFileSync(podHosts, "utf8")]).not.toEqual([host.instance, expect.stringContaining("kubeadm-ha bootstrap pin")]);
    }
}

export const ran = (result: UpResult, action?: string) => result.steps.filter((s) => !action || s.action === action).map((s) => `${s.action} ${s.step}`);
