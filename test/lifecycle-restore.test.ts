/**
 * A new stack started from an etcd snapshot (etcdRestoreFrom), under the lifecycle simulation: the
 * rendered restore steps download the snapshot from S3 (the model's), check it, and restore it with
 * the etcdutl of the etcd the new cluster runs: stacked, the one in the etcd image the node's kubeadm
 * runs (through containerd), or the pinned release of that etcd minor where the image has none;
 * external, the members' own. The model's etcdutl refuses a snapshot of another etcd minor than its
 * own (the Kubernetes etcd guide restores only with the same major.minor) and checks etcdutl's rules
 * for --bump-revision and --mark-compacted, which every restore passes so that no watcher resumes at
 * a revision the restored cluster reuses (etcd-io/etcd#16028).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ETCD_RELEASE, ETCDUTL_RELEASES, RESTORE_REVISION_BUMP } from "../core/etcd";
import { resetState } from "../tools/offline/engine";
import { LifecycleSimulation, SimSnapshot, UpResult } from "../tools/offline/lifecycle";
import { runProgram } from "./harness";
import { tempDir } from "./tools";

jest.setTimeout(600_000);

const SOURCE = "s3://old-backups/kubeadm-ha/etcd/20261120T101500Z-kubeadm-ha-cp-1.db";
const STACKED_RESTORE = "kubeadm-ha-cp-0-etcd-restore";

/** A new stack whose etcd starts from `snapshot` in S3 (recorded: with the release that wrote it, as uploads now are). */
async function restoredStack(config: Record<string, unknown>, snapshot: SimSnapshot, recorded = true): Promise<{ sim: LifecycleSimulation; result: UpResult }> {
    resetState();
    const sim = new LifecycleSimulation(tempDir("lifecycle-restore"), runProgram);
    sim.putSnapshot(SOURCE, snapshot, recorded);
    const result = await sim.up({ ...config, etcdRestoreFrom: SOURCE });
    return { sim, result };
}

const restores = (sim: LifecycleSimulation) => sim.world().events.filter((e) => e.what === "etcd-restore");
const failure = (result: UpResult) => result.failed && `${result.failed.step} on ${result.failed.host}: ${result.failed.output}`;

/** What the model's etcdutl wrote into a host's etcd data directory. */
function restoredData(sim: LifecycleSimulation, instance: string): { restoredBy: string; revision: number; compactedAt?: number; name: string } {
    const host = Object.values(sim.world().hosts).find((h) => h.instance === instance && h.alive)!;
    return JSON.parse(readFileSync(join(host.root, "var/lib/etcd/member/snap/db"), "utf8"));
}

describe("a stack restored from an etcd snapshot", () => {
    it("stacked: restores with the etcdutl of the etcd image its kubeadm runs, moving revisions on and compacting them, then runs kubeadm init on the data", async () => {
        // kubeadm 1.37 runs registry.k8s.io/etcd:3.7.0-0.
        const { sim, result } = await restoredStack({ kubernetesVersion: "1.37.2" }, { etcd: "3.7.0", revision: 48_210, keys: 1_200 });
        expect(failure(result)).toBeUndefined();
        expect(restores(sim)).toEqual([
            expect.objectContaining({ step: STACKED_RESTORE, version: "3.7.0", from: "3.7.0", bump: RESTORE_REVISION_BUMP, compacted: true }),
        ]);
        const data = restoredData(sim, "kubeadm-ha-cp-0");
        expect(data).toEqual(
            expect.objectContaining({ restoredBy: "3.7.0", revision: 48_210 + RESTORE_REVISION_BUMP, compactedAt: 48_210 + RESTORE_REVISION_BUMP }),
        );
        const step = result.steps.find((s) => s.step === STACKED_RESTORE)!;
        expect(step.output).toContain(`restored ${data.name} from ${SOURCE} (sha256 `);
        expect(step.output).toContain(
            `revision 48210, 1200 keys, written by etcd 3.7.0) into ${sim.world().hosts[step.host].root}/var/lib/etcd with etcdutl 3.7.0 for etcd 3.7.0; ` +
                `revisions moved on by ${RESTORE_REVISION_BUMP} and compacted`,
        );
        // One cluster, initialised once on the restored data, and every node joined it.
        const world = sim.world();
        expect(world.cluster.inits).toBe(1);
        expect(world.cluster.members.map((m) => m.name).sort()).toEqual(
            result.run
                .ofType("aws:ec2/instance:Instance")
                .map((i) => i.state.privateDns)
                .sort(),
        );
    });

    it("stacked: refuses a snapshot another etcd minor wrote (read from the snapshot when the upload did not record it), and nothing starts", async () => {
        // A 1.36 cluster's snapshot (etcd 3.6), uploaded by a kubeadm-ha that did not record the release,
        // into a stack whose kubeadm runs etcd 3.7: the snapshot's storage version says 3.6.
        const { sim, result } = await restoredStack({ kubernetesVersion: "1.37.2" }, { etcd: "3.6.8", revision: 9_001, keys: 300 }, false);
        expect(result.failed?.step).toBe(STACKED_RESTORE);
        expect(result.failed!.output).toContain(
            `${SOURCE} was written by etcd 3.6.0, and this cluster runs etcd 3.7.0: etcd restores a snapshot only with the etcdutl of the major.minor that wrote it`,
        );
        expect(restores(sim)).toEqual([]);
        expect(sim.world().cluster.inits).toBe(0);
    });

    it("stacked, on a release whose etcd image has no etcdutl: restores with the pinned etcdutl release of the same minor, checksum verified", async () => {
        // kubeadm 1.34 runs registry.k8s.io/etcd:3.6.5-0, built by Kubernetes with etcd and etcdctl only.
        const pinned = ETCDUTL_RELEASES.find((r) => r.version.startsWith("3.6."))!;
        const { sim, result } = await restoredStack({ kubernetesVersion: "1.34.2" }, { etcd: "3.6.5", revision: 7_000, keys: 250 });
        expect(failure(result)).toBeUndefined();
        const step = result.steps.find((s) => s.step === STACKED_RESTORE)!;
        expect(step.output).toContain(
            "the etcd image registry.k8s.io/etcd:3.6.5-0 that kubeadm runs has no etcdutl of etcd 3.6; fetching the pinned release of that minor",
        );
        expect(restores(sim)).toEqual([expect.objectContaining({ version: pinned.version, from: "3.6.5", bump: RESTORE_REVISION_BUMP, compacted: true })]);
        expect(Object.values(sim.world().downloads ?? {})).toEqual([expect.objectContaining({ version: pinned.version })]);
    });

    it("external: every member restores with the members' own etcdutl, moving revisions on and compacting them", async () => {
        const { sim, result } = await restoredStack({ etcdTopology: "external", etcdCount: "3" }, { etcd: "3.5.21", revision: 31_000, keys: 800 });
        expect(failure(result)).toBeUndefined();
        const done = restores(sim);
        expect(done.map((e) => e.step).sort()).toEqual([0, 1, 2].map((i) => `kubeadm-ha-etcd-${i}-etcd-restore`));
        for (const e of done)
            expect(e).toEqual(expect.objectContaining({ version: ETCD_RELEASE.version, from: "3.5.21", bump: RESTORE_REVISION_BUMP, compacted: true }));
        // Nothing downloaded: the members' etcdutl is the release they run.
        expect(sim.world().downloads ?? {}).toEqual({});
        expect(sim.world().etcd.formed).toBe(1);
        expect(sim.world().cluster.inits).toBe(1);
    });
});
