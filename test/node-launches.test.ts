/** Which nodes keep what they were built from, and which one a run rebuilds: plain data in, a plan out. */
import { NodeBuild, NodeSource, planNodeLaunches, recordedBuilds, UNPINNED_VERSION } from "../core/node-image";

const OLD = "ami-0000000000000000a";
const NEW = "ami-0000000000000000b";
const names = [0, 1, 2].map((i) => `kubeadm-ha-cp-${i}`);
const source = (image = NEW, userDataSha256 = "u1"): NodeSource[] => names.map((name) => ({ name, image, userDataSha256 }));
const built = (image = OLD, userDataSha256 = "u1", launchTemplateVersion = "1"): NodeBuild[] =>
    names.map((name) => ({ name, image, launchTemplateVersion, userDataSha256 }));
const kinds = (plan: ReturnType<typeof planNodeLaunches>) => plan.launches.map((l) => `${l.name} ${l.kind}`);

describe("planning node launches", () => {
    it("builds every node of a new cluster from the template's newest version", () => {
        expect(kinds(planNodeLaunches(source(), undefined, { amiOverride: false, roll: false }))).toEqual(names.map((n) => `${n} new`));
    });

    it("keeps every node on what it was built from when only the lookup finds a newer image or the script changed", () => {
        const plan = planNodeLaunches(source(NEW, "u2"), built(), { amiOverride: false, roll: false });
        expect(kinds(plan)).toEqual(names.map((n) => `${n} kept`));
        expect(plan.waiting).toEqual([]);
    });

    it("rolls the first node built from another image or script, and only that one, when asked", () => {
        const plan = planNodeLaunches(source(NEW, "u2"), built(), { amiOverride: false, roll: true });
        expect(kinds(plan)).toEqual([`${names[0]} rolled`, `${names[1]} kept`, `${names[2]} kept`]);
        expect(plan.launches[0]).toMatchObject({ reasons: [`image ${OLD} → ${NEW}`, "preparation script changed"] });
        expect(plan.waiting.map((w) => w.name)).toEqual(names.slice(1));
        // Once node 0 runs the current image and script, node 1 is next.
        const after = built();
        after[0] = { ...after[0], image: NEW, userDataSha256: "u2", launchTemplateVersion: "2" };
        expect(kinds(planNodeLaunches(source(NEW, "u2"), after, { amiOverride: false, roll: true }))).toEqual([
            `${names[0]} kept`,
            `${names[1]} rolled`,
            `${names[2]} kept`,
        ]);
    });

    it("moves the nodes to an image set in ami, one per run, without rollNodes, and only for the image", () => {
        const plan = planNodeLaunches(source(NEW, "u2"), built(), { amiOverride: true, roll: false });
        expect(kinds(plan)).toEqual([`${names[0]} rolled`, `${names[1]} kept`, `${names[2]} kept`]);
        expect(plan.launches[0]).toMatchObject({ reasons: [`image ${OLD} → ${NEW}`] });
        expect(kinds(planNodeLaunches(source(OLD, "u2"), built(), { amiOverride: true, roll: false }))).toEqual(names.map((n) => `${n} kept`));
    });

    it("reads a record from before pinning as unpinned nodes, kept at $Latest until a roll, and new nodes past its count", () => {
        const record = { controlPlaneCount: 2, etcdCount: 0 };
        const plan = { controlPlane: names.map((name, index) => ({ name, index })), etcd: [] };
        const builds = recordedBuilds(record, plan)!;
        expect(builds).toEqual(names.slice(0, 2).map((name) => ({ name, image: "", launchTemplateVersion: UNPINNED_VERSION, userDataSha256: "" })));
        expect(kinds(planNodeLaunches(source(), builds, { amiOverride: true, roll: false }))).toEqual([
            `${names[0]} unpinned`,
            `${names[1]} unpinned`,
            `${names[2]} new`,
        ]);
        const rolled = planNodeLaunches(source(), builds, { amiOverride: false, roll: true });
        expect(kinds(rolled)).toEqual([`${names[0]} rolled`, `${names[1]} unpinned`, `${names[2]} new`]);
        expect(recordedBuilds(undefined, plan)).toBeUndefined();
    });
});
