/** The offline engine, with each run in its own jest module registry. */
import { ProgramRun, runProgram as runOffline, RunOptions } from "../tools/offline/engine";

export { REGION_ZONES, UNKNOWN } from "../tools/offline/engine";
export type { ProgramRun, RecordedResource } from "../tools/offline/engine";

export function runProgram(config: Record<string, unknown>, options: Omit<RunOptions, "isolate"> = {}): Promise<ProgramRun> {
    return runOffline(config, { ...options, isolate: (load) => jest.isolateModules(load) });
}
