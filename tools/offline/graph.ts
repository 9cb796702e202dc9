/** Reading a recorded resource graph: order of the remote steps and the bootstrap's critical path. */
import { ProgramRun, RecordedResource } from "./engine";

export const COMMAND_TYPE = "command:remote:Command";

/**
 * For each remote command, how many commands run one after another up to and including it (through
 * any resources in between). The maximum is the bootstrap's critical path in stages.
 */
export function commandDepths(run: ProgramRun, runs: (command: RecordedResource) => boolean = () => true): Map<string, number> {
    const byName = new Map<string, RecordedResource[]>();
    for (const r of run.resources) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
    const memo = new Map<string, number>();
    const depthOf = (name: string, visiting: Set<string>): number => {
        if (memo.has(name)) return memo.get(name)!;
        if (visiting.has(name)) return 0;
        visiting.add(name);
        const nodes = byName.get(name) ?? [];
        const before = Math.max(0, ...nodes.flatMap((n) => n.dependsOn.map((d) => depthOf(d, visiting))));
        const own = nodes.some((n) => n.type === COMMAND_TYPE && runs(n)) ? 1 : 0;
        visiting.delete(name);
        memo.set(name, before + own);
        return before + own;
    };
    return new Map(run.ofType(COMMAND_TYPE).map((c) => [c.name, depthOf(c.name, new Set())]));
}

/** The most remote commands that run one after another; with `runs`, counting only the commands it selects. */
export function criticalPath(run: ProgramRun, runs?: (command: RecordedResource) => boolean): number {
    return Math.max(0, ...commandDepths(run, runs).values());
}

/** The remote commands in the order they can run: by stage, then by name. */
export function commandsInOrder(run: ProgramRun): { command: RecordedResource; stage: number }[] {
    const depths = commandDepths(run);
    return run
        .ofType(COMMAND_TYPE)
        .map((command) => ({ command, stage: depths.get(command.name)! }))
        .sort((a, b) => a.stage - b.stage || a.command.name.localeCompare(b.command.name));
}
