/**
 * The offline engine, watched from inside the run: what the program registers or reads, in order,
 * and the outputs its components register (what a stack policy sees of a component), kept even when
 * the run fails.
 */
import { runProgram, RunOptions } from "../tools/offline/engine";

export function runRecording(config: Record<string, unknown>, options: Omit<RunOptions, "isolate"> = {}) {
    const declared: string[] = [];
    const registeredOutputs = new Map<string, Record<string, any>>();
    const run = runProgram(config, {
        ...options,
        isolate: (load) =>
            jest.isolateModules(() => {
                load();
                const pulumi = require("@pulumi/pulumi");
                const monitor = pulumi.runtime.getMonitor();
                for (const method of ["registerResource", "readResource"]) {
                    const original = monitor[method].bind(monitor);
                    monitor[method] = (req: any, callback: any) => {
                        declared.push(`${method === "readResource" ? "read " : ""}${req.getType()}::${req.getName()}`);
                        return original(req, callback);
                    };
                }
                const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
                monitor.registerResourceOutputs = (req: any, callback: any) => {
                    const urn: string = req.getUrn();
                    registeredOutputs.set(urn.slice(urn.lastIndexOf("::") + 2), pulumi.runtime.deserializeProperties(req.getOutputs()));
                    return registerOutputs(req, callback);
                };
            }),
    });
    return { run, declared, registeredOutputs };
}
