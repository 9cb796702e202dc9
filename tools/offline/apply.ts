/**
 * What `pulumi up` does to the remote commands, apart from where they run: the program's new
 * declaration diffed against the last successful run's as the Pulumi engine does, and the command
 * provider's documented lifecycle applied. A new command is created; changed `triggers` replace it
 * (create-before-delete: its `create` runs again); other changed inputs update it (its `update`,
 * else its `create`, in place); inputs under `ignoreChanges` keep their old values; what waits for a
 * failed step is not started; commands that are gone run their old `delete`, last and in reverse
 * order, only when nothing failed. Commands run one at a time in an order their dependencies allow.
 *
 * Two kinds of host run what this plans: the lifecycle simulation's directories with the models
 * (lifecycle.ts) and the lab's namespaces with real Kubernetes (lab/cluster.ts).
 */
import { ProgramRun, RecordedResource } from "./engine";
import { COMMAND_TYPE } from "./graph";

const EIP_TYPE = "aws:ec2/eip:Eip";

export type Action = "create" | "update" | "replace" | "delete";

export interface StepRun {
    step: string;
    action: Action;
    /** The id of the instance the step's connection reached. */
    host: string;
    /** Seconds spent dialling a host that is gone; 0 when the host answered. */
    dialSeconds: number;
    status: number;
    output: string;
}

/** One command line `up` runs, on the instance its connection names in `run`. */
export interface PlannedStep {
    command: RecordedResource;
    action: Action;
    /** The command line: its create, update or (for a command that is gone) delete. */
    line: string;
    /** The inputs the provider runs it with, after ignoreChanges. */
    inputs: Record<string, any>;
    /** The run that declared it: the new one, or for a delete the previous one. */
    run: ProgramRun;
}

export interface Applied<T extends StepRun> {
    steps: T[];
    /** The first step that failed, which ends the `up` as Pulumi would. */
    failed?: T;
}

/** Commands in an order their dependencies allow (depth first, then name). */
export function commandsByDependency(run: ProgramRun): RecordedResource[] {
    const commands = run.ofType(COMMAND_TYPE);
    const depth = new Map<string, number>();
    const depthOf = (c: RecordedResource): number => {
        if (!depth.has(c.name)) depth.set(c.name, 1 + Math.max(0, ...commands.filter((o) => o !== c && run.waitsFor(c.name, o.name)).map(depthOf)));
        return depth.get(c.name)!;
    };
    return [...commands].sort((a, b) => depthOf(a) - depthOf(b) || a.name.localeCompare(b.name));
}

/** The instance (its id) a command's connection reaches: the one whose Elastic IP is its host. */
export function instanceOf(run: ProgramRun, command: RecordedResource): string {
    const eip = run.ofType(EIP_TYPE).find((e) => e.state.publicIp === command.inputs.connection.host);
    if (!eip) throw new Error(`${command.name} connects to ${command.inputs.connection.host}, no node's address`);
    return eip.inputs.instance as string;
}

/** The id of the instance named `name` in `run`: its Elastic IP's instance (a replacement's id is new). */
export function instanceIdOf(run: ProgramRun, name: string): string {
    const eip = run.ofType(EIP_TYPE).find((e) => e.name === `${name}-address`);
    if (!eip) throw new Error(`${name} has no Elastic IP in the run`);
    return eip.inputs.instance as string;
}

/** The ids of the instances `run` declares: any other is terminated once the `up` succeeds. */
export function plannedInstances(run: ProgramRun): Set<string> {
    return new Set(run.ofType(EIP_TYPE).map((e) => e.inputs.instance as string));
}

/** A step whose host is gone: the provider makes dialErrorLimit + 1 attempts of perDialTimeout seconds each, then fails. */
export function unreachable(step: PlannedStep, host: string): StepRun {
    const { dialErrorLimit = 10, perDialTimeout = 15 } = step.inputs.connection ?? {};
    return {
        step: step.command.name,
        action: step.action,
        host,
        dialSeconds: (dialErrorLimit + 1) * perDialTimeout,
        status: 255,
        output: "dial: host unreachable",
    };
}

/** The inputs a command's diff looks at, after its ignoreChanges. */
function effectiveInputs(command: RecordedResource, previous?: RecordedResource): Record<string, any> {
    const inputs = { ...command.inputs };
    if (previous) for (const key of command.options.ignoreChanges) inputs[key] = previous.inputs[key];
    return inputs;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** One `up` of `run` over `previous` (none on the first): each planned step handed to `execute`, in order. */
export function applyUp<T extends StepRun>(previous: ProgramRun | undefined, run: ProgramRun, execute: (step: PlannedStep) => T): Applied<T> {
    const before = new Map((previous?.ofType(COMMAND_TYPE) ?? []).map((c) => [c.name, c]));
    const steps: T[] = [];
    let failed: T | undefined;
    const failedNames = new Set<string>();

    for (const command of commandsByDependency(run)) {
        const old = before.get(command.name);
        const inputs = effectiveInputs(command, old);
        const action: Action | undefined = !old
            ? "create"
            : !same(inputs.triggers, old.inputs.triggers)
              ? "replace"
              : !same(inputs, old.inputs)
                ? "update"
                : undefined;
        if (!action) continue;
        // Pulumi does not start what waits for a failed step.
        if ([...failedNames].some((f) => run.waitsFor(command.name, f))) continue;
        const line = action === "update" ? (inputs.update ?? inputs.create) : inputs.create;
        if (!line) continue;
        const result = execute({ command, action, line, inputs, run });
        steps.push(result);
        if (result.status !== 0) {
            failed ??= result;
            failedNames.add(command.name);
        }
    }
    // Deletes last, in reverse order: commands that no longer exist run their old delete command.
    if (!failed && previous) {
        const now = new Set(run.ofType(COMMAND_TYPE).map((c) => c.name));
        for (const old of [...before.values()].reverse()) {
            if (now.has(old.name) || !old.inputs.delete) continue;
            steps.push(execute({ command: old, action: "delete", line: old.inputs.delete, inputs: old.inputs, run: previous }));
        }
    }
    return { steps, failed };
}
