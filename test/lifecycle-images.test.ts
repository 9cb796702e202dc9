/**
 * Node images on a live cluster, under the lifecycle simulation: each node keeps the image and launch
 * template version it was built from; a newer Ubuntu image (even once `pulumi refresh` has seen the
 * template's new version) replaces nothing; `rollNodes` or a new `ami` rebuilds one node per run.
 */
import { LifecycleSimulation, UpResult } from "../tools/offline/lifecycle";
import { CP, expectSafe, liveCluster, ran } from "./lifecycle-helpers";

const FIRST_IMAGE = "ami-0f1e2d3c4b5a69788";
const NEWER_IMAGE = "ami-0aaaabbbbccccdddd";
const INSTANCE = "aws:ec2/instance:Instance";

/** Instance ids by name after a run. */
const instanceIds = (result: UpResult) => Object.fromEntries(result.run.ofType(INSTANCE).map((i) => [i.name, i.id]));
const joins = (sim: LifecycleSimulation, since: number) =>
    sim
        .world()
        .events.slice(since)
        .filter((e) => e.what === "join")
        .map((e) => e.step);
const recordedImages = (result: UpResult) => result.run.outputs.lifecycle.nodes.map((n: { name: string; image: string }) => `${n.name} ${n.image}`);

describe("node images on a live cluster", () => {
    it("pins every instance to a launch template version number and records what each node was built from", async () => {
        const sim = await liveCluster();
        const again = await sim.up({});
        for (const instance of again.run.ofType(INSTANCE)) expect([instance.name, instance.inputs.launchTemplate.version]).toEqual([instance.name, "1"]);
        expect(again.run.outputs.lifecycle.nodes).toEqual(
            [0, 1, 2].map((i) => ({ name: CP(i), image: FIRST_IMAGE, launchTemplateVersion: "1", userDataSha256: expect.stringMatching(/^[0-9a-f]{64}$/) })),
        );
    });

    it("a newer Ubuntu image, even once a refresh has seen the template's new version, replaces no node", async () => {
        const sim = await liveCluster();
        const before = sim.world().events.length;
        const first = await sim.up({}, { images: { x86_64: NEWER_IMAGE } });
        const refreshed = await sim.up({}, { images: { x86_64: NEWER_IMAGE }, refresh: true });
        expectSafe(sim, refreshed);
        expect([...ran(first), ...ran(refreshed)]).toEqual([]);
        expect(joins(sim, before)).toEqual([]);
        expect(instanceIds(refreshed)).toEqual(instanceIds(first));
        // The template holds the new image for the nodes built from now on; the nodes keep theirs.
        expect(refreshed.run.ofType("aws:ec2/launchTemplate:LaunchTemplate").find((t) => t.name.endsWith("-cp"))?.inputs.imageId).toBe(NEWER_IMAGE);
        expect(recordedImages(refreshed)).toEqual([0, 1, 2].map((i) => `${CP(i)} ${FIRST_IMAGE}`));
    });

    it("a scale-up node gets the newer image while the running nodes keep theirs", async () => {
        const sim = await liveCluster();
        const zones = JSON.stringify(["us-east-1a", "us-east-1b", "us-east-1c"]);
        const grown = await sim.up({ controlPlaneCount: "5", availabilityZones: zones }, { images: { x86_64: NEWER_IMAGE } });
        expectSafe(sim, grown);
        expect(recordedImages(grown)).toEqual([...[0, 1, 2].map((i) => `${CP(i)} ${FIRST_IMAGE}`), ...[3, 4].map((i) => `${CP(i)} ${NEWER_IMAGE}`)]);
    });

    it("rollNodes rebuilds one node per pulumi up through the member chain, each run gated, until none is left", async () => {
        const sim = await liveCluster();
        const images = { x86_64: NEWER_IMAGE };
        let previous = instanceIds(await sim.up({}, { images }));
        for (const i of [0, 1, 2]) {
            const since = sim.world().events.length;
            const result = await sim.up({ rollNodes: "true" }, { images });
            expectSafe(sim, result);
            const ids = instanceIds(result);
            // Exactly this node is a new instance, and it alone joins, through its member step.
            expect(Object.keys(ids).filter((n) => ids[n] !== previous[n])).toEqual([CP(i)]);
            expect(joins(sim, since)).toEqual([`${CP(i)}-member`]);
            // The old member goes once the new one has joined, and every other member step gates after it.
            const changes = sim
                .world()
                .events.slice(since)
                .filter((e) => ["join", "member-remove"].includes(e.what))
                .map((e) => e.what);
            expect(changes).toEqual(["join", "member-remove"]);
            const order = ran(result).filter((s) => s.endsWith("-member"));
            expect(order).toEqual([`replace ${CP(i)}-member`, ...[0, 1, 2].filter((j) => j !== i).map((j) => `update ${CP(j)}-member`)].sort(byNode));
            expect(recordedImages(result)).toEqual([0, 1, 2].map((j) => `${CP(j)} ${j <= i ? NEWER_IMAGE : FIRST_IMAGE}`));
            previous = ids;
        }
        // Every node runs the current image: nothing is left to roll.
        expect(ran(await sim.up({ rollNodes: "true" }, { images }))).toEqual([]);
    });

    it("a new ami rolls the nodes to it, one per run, without rollNodes", async () => {
        const sim = await liveCluster();
        const since = sim.world().events.length;
        const result = await sim.up({ ami: NEWER_IMAGE });
        expectSafe(sim, result);
        expect(joins(sim, since)).toEqual([`${CP(0)}-member`]);
        expect(recordedImages(result)).toEqual([`${CP(0)} ${NEWER_IMAGE}`, `${CP(1)} ${FIRST_IMAGE}`, `${CP(2)} ${FIRST_IMAGE}`]);
    });
});

/** Member steps in chain order. */
function byNode(a: string, b: string): number {
    return Number(/-(\d+)-member$/.exec(a)![1]) - Number(/-(\d+)-member$/.exec(b)![1]);
}
