/**
 * Stable names. A resource's URN is its identity in the stack's state: renaming one (a component, a
 * node, a step) makes `pulumi up` delete the old resource and create a new one, which for a node or a
 * remote step on a live cluster is never harmless. This snapshot of every URN of both example stacks
 * fails the suite on any rename until it is deliberate: update the snapshot (`npx jest -u
 * test/urns.test.ts`) in the same change that adds `aliases` for what was renamed.
 */
import { readStackConfig } from "../tools/render";
import { ProgramRun, runProgram } from "./harness";

/** The URN's type chain and name, as `pulumi up` would compute it (urn:pulumi:<stack>::<project>::<types>::<name>). */
function urns(run: ProgramRun): string[] {
    const byName = new Map(run.resources.map((r) => [r.name, r]));
    const typeChain = (name: string, seen = new Set<string>()): string => {
        const resource = byName.get(name)!;
        const parent = byName.get(resource.options.parent);
        if (!parent || seen.has(name)) return resource.type;
        seen.add(name);
        return `${typeChain(parent.name, seen)}$${resource.type}`;
    };
    return run.resources.map((r) => `${typeChain(r.name)}::${r.name}`).sort();
}

describe.each([["dev"], ["external"]])("the URNs of stack %s", (stack) => {
    it("are unchanged unless a rename is deliberate (and aliased)", async () => {
        const { config } = readStackConfig(stack);
        expect(urns(await runProgram(config, { preview: true }))).toMatchSnapshot();
    });
});
