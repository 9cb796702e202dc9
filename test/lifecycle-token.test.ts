/**
 * The bootstrap token of control-plane joins, under the lifecycle simulation: every join runs on a
 * token with its full TTL (the kubelet's TLS bootstrap with it comes at the end of the join, after the
 * etcd join), and the token is deleted once the join is done. The model knows each token's expiry.
 */
import { parseAllDocuments } from "yaml";
import { LifecycleSimulation, UpResult } from "../tools/offline/lifecycle";
import { resetState } from "../tools/offline/engine";
import { runProgram } from "./harness";
import { CP, expectSafe } from "./lifecycle-helpers";
import { tempDir } from "./tools";

/** The bootstrap token a member step's join configuration holds. */
function joinToken(result: UpResult, step: string): string {
    const [join] = parseAllDocuments(result.run.named(step).inputs.stdin as string).map((d) => d.toJS());
    return join.discovery.bootstrapToken.token;
}

const HOUR = 3600;

describe("the lifecycle simulation, bootstrap tokens", () => {
    it("a join near its token's expiry gets the token again with its full TTL, deleted when the join is done, never printed", async () => {
        resetState();
        const sim = new LifecycleSimulation(tempDir("lifecycle-token"), runProgram);
        const first = await sim.up({});
        expectSafe(sim, first);
        const token = joinToken(first, `${CP(1)}-member`);
        // Every join of the first up made the token afresh and deleted it after.
        const joins = sim.world().events.filter((e) => e.what === "join");
        expect(joins.map((e) => e.tokenSecondsLeft! > HOUR - 60)).toEqual([true, true]);
        expect(sim.world().cluster.tokens).toEqual([]);

        // The token exists again, three minutes from its expiry (made by hand, or by a join that stopped).
        sim.changeWorld((w) => {
            w.cluster.tokens = [{ token, expires: new Date(Date.now() + 3 * 60_000).toISOString() }];
        });
        const before = sim.world().events.length;
        const result = await sim.up({}, { replace: [CP(1)] });
        expectSafe(sim, result);
        const events = sim.world().events.slice(before);
        const made = events.filter((e) => ["token-delete", "token-create", "join"].includes(e.what)).map((e) => `${e.what} ${e.step}`);
        expect(made).toEqual([`token-delete ${CP(1)}-member`, `token-create ${CP(1)}-member`, `join ${CP(1)}-member`, `token-delete ${CP(1)}-member`]);
        expect(events.find((e) => e.what === "token-create")!.ttlSeconds).toBe(HOUR);
        expect(events.find((e) => e.what === "join")!.tokenSecondsLeft).toBeGreaterThan(HOUR - 60);
        expect(sim.world().cluster.tokens).toEqual([]);
        // Neither the token nor its secret half appears in what any step printed.
        for (const step of [...first.steps, ...result.steps]) {
            expect([step.step, step.output.includes(token.split(".")[1])]).toEqual([step.step, false]);
        }
    }, 300_000);
});
