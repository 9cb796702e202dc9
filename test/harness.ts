/** The offline engine, with each run in its own jest module registry. */
import { ProgramRun, runProgram as runOffline, RunOptions } from "../tools/offline/engine";

export { REGION_ZONES, UNKNOWN } from "../tools/offline/engine";
export type { ProgramRun, RecordedResource } from "../tools/offline/engine";

export function runProgram(config: Record<string, unknown>, options: Omit<RunOptions, "isolate"> = {}): Promise<ProgramRun> {
    return runOffline(config, { ...options, isolate: (load) => jest.isolateModules(load) });
}

/** Every string anywhere in a value. */
export function strings(value: unknown): string[] {
    if (typeof value === "string") return [value];
    if (Array.isArray(value)) return value.flatMap(strings);
    if (value && typeof value === "object") return Object.values(value).flatMap(strings);
    return [];
}
