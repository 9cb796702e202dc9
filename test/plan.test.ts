import fc from "fast-check";
import { formatCidr, isCidr, overlaps, parseCidr, size } from "../core/cidr";
import { parseConfig } from "../core/config";
import { chooseZones, criticalPathLength, firstAddress, planBootstrap, planSubnets, spreadOverZones } from "../core/plan";

const ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d", "eu-west-1e", "eu-west-1f"];

describe("zone spreading", () => {
    it("never puts more than ceil(N/Z) nodes in one zone, and uses min(N, Z) zones", () => {
        fc.assert(
            fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 6 }), (nodes, zoneCount) => {
                const placement = spreadOverZones(nodes, ZONES.slice(0, zoneCount));
                const counts = new Map<string, number>();
                placement.forEach((z) => counts.set(z, (counts.get(z) ?? 0) + 1));
                expect(placement).toHaveLength(nodes);
                expect(Math.max(...counts.values())).toBeLessThanOrEqual(Math.ceil(nodes / zoneCount));
                expect(counts.size).toBe(Math.min(nodes, zoneCount));
            }),
        );
    });

    it("spreads 5 nodes over 3 zones 2/2/1 and 3 nodes over 3 distinct zones", () => {
        expect(spreadOverZones(5, ZONES.slice(0, 3))).toEqual(["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1a", "eu-west-1b"]);
        expect(new Set(spreadOverZones(3, ZONES.slice(0, 3))).size).toBe(3);
    });

    it("takes the first zones of the region, as many as nodes, when none are configured", () => {
        const config = parseConfig(() => undefined).config;
        expect(chooseZones(config, ["us-east-1c", "us-east-1a", "us-east-1b", "us-east-1d"])).toEqual(["us-east-1a", "us-east-1b", "us-east-1c"]);
    });
});

describe("subnet maths", () => {
    const cidrArb = fc
        .record({ a: fc.integer({ min: 1, max: 223 }), b: fc.integer({ min: 0, max: 255 }), prefix: fc.integer({ min: 16, max: 24 }) })
        .map(({ a, b, prefix }) => {
            const base = ((a << 24) | (b << 16)) >>> 0;
            const masked = prefix === 0 ? 0 : (base & (~0 << (32 - prefix))) >>> 0;
            return formatCidr({ base: BigInt(masked), prefix });
        });

    it("cuts disjoint subnets that lie inside the VPC, one per zone", () => {
        fc.assert(
            fc.property(cidrArb, fc.integer({ min: 1, max: 6 }), (vpcText, zoneCount) => {
                const vpc = parseCidr(vpcText);
                if (!isCidr(vpc)) throw new Error(vpc.error);
                const subnets = planSubnets(vpcText, ZONES.slice(0, zoneCount));
                expect(subnets.map((s) => s.zone)).toEqual(ZONES.slice(0, zoneCount));
                const parsed = subnets.map((s) => parseCidr(s.cidr)).filter(isCidr);
                expect(parsed).toHaveLength(zoneCount);
                parsed.forEach((s, i) => {
                    expect(s.base >= vpc.base && s.base + size(s) <= vpc.base + size(vpc)).toBe(true);
                    parsed.slice(i + 1).forEach((t) => expect(overlaps(s, t)).toBe(false));
                });
            }),
        );
    });

    it("gives the default VPC /20 subnets and the service range its first address", () => {
        expect(planSubnets("10.0.0.0/16", ["a", "b", "c"]).map((s) => s.cidr)).toEqual(["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"]);
        expect(firstAddress("10.96.0.0/12")).toBe("10.96.0.1");
    });

    it("detects overlap exactly", () => {
        const p = (t: string) => {
            const c = parseCidr(t);
            if (!isCidr(c)) throw new Error(c.error);
            return c;
        };
        expect(overlaps(p("10.0.0.0/16"), p("10.0.255.0/24"))).toBe(true);
        expect(overlaps(p("10.0.0.0/16"), p("10.1.0.0/16"))).toBe(false);
    });
});

describe("bootstrap order", () => {
    it("chains stacked joins one after another (etcd admits one learner at a time)", () => {
        expect(planBootstrap("stacked", 3)).toEqual([
            { node: 0, action: "init" },
            { node: 1, action: "join", after: 0 },
            { node: 2, action: "join", after: 1 },
        ]);
        expect(criticalPathLength(planBootstrap("stacked", 7))).toBe(7);
    });

    it("runs external-etcd joins in parallel after init", () => {
        expect(planBootstrap("external", 3).map((s) => s.after)).toEqual([undefined, 0, 0]);
        expect(criticalPathLength(planBootstrap("external", 7))).toBe(2);
    });
});
