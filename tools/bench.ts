/**
 * Benchmark: how long the program takes to evaluate (under the offline engine, with certificate
 * issuance) for 3, 5 and 7 control-plane nodes in both etcd topologies, how many resources it
 * declares, how many remote-command stages the bootstrap runs one after another, and how many an
 * upgrade of the Kubernetes minor (1.33 to 1.34) runs one after another on a live cluster: the
 * commands whose inputs change, each node's member step gated on the one before.
 *
 *   npm run bench [-- --runs 5]
 *
 * Figures, not assertions: it prints a table and exits 0.
 */
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { ProgramRun, resetState, runProgram } from "./offline/engine";
import { COMMAND_TYPE, criticalPath } from "./offline/graph";

/** A fresh module registry for each run, so each run builds its own Pulumi runtime and program. */
function freshModules(load: () => void): void {
    for (const key of Object.keys(require.cache)) {
        if (!key.includes("/tools/offline/")) delete require.cache[key];
    }
    load();
}

/** The remote-command stages a second `pulumi up` runs: the commands whose inputs differ from the first's. */
function changedPath(before: ProgramRun, after: ProgramRun): number {
    const old = new Map(before.ofType(COMMAND_TYPE).map((c) => [c.name, c]));
    return criticalPath(after, (c) => {
        const previous = old.get(c.name);
        if (!previous) return true;
        const ignored = new Set(c.options.ignoreChanges);
        const effective = (r: typeof c) => JSON.stringify(Object.entries(r.inputs).filter(([k]) => !ignored.has(k)));
        return effective(c) !== effective(previous);
    });
}

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
    // Each run loads a fresh Pulumi runtime, which adds process exit hooks of its own.
    process.setMaxListeners(0);
    const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
    const runs = Number(values.runs);
    const rows: string[][] = [
        [
            "topology",
            "control plane",
            "resources",
            "remote commands",
            "critical path (stages)",
            "upgrade critical path (stages)",
            `median ms (of ${runs})`,
            "min ms",
        ],
    ];
    for (const topology of ["stacked", "external"]) {
        for (const count of [3, 5, 7]) {
            const times: number[] = [];
            let summary: string[] = [];
            for (let i = 0; i < runs; i++) {
                resetState();
                const started = process.hrtime.bigint();
                const run = await runProgram({ controlPlaneCount: String(count), etcdTopology: topology }, { isolate: freshModules });
                times.push(Number(process.hrtime.bigint() - started) / 1e6);
                summary = [String(run.resources.length), String(run.ofType(COMMAND_TYPE).length), String(criticalPath(run))];
            }
            resetState();
            const older = await runProgram({ controlPlaneCount: String(count), etcdTopology: topology, kubernetesVersion: "1.33" }, { isolate: freshModules });
            // The same state (keys, certificates) as the run before, as a second `pulumi up` has.
            const newer = await runProgram({ controlPlaneCount: String(count), etcdTopology: topology, kubernetesVersion: "1.34" }, { isolate: freshModules });
            summary.push(String(changedPath(older, newer)));
            rows.push([topology, String(count), ...summary, median(times).toFixed(0), Math.min(...times).toFixed(0)]);
        }
    }
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c])).join(" | ")} |`;
    console.log(`kubeadm-ha benchmark on ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, Node.js ${process.version}`);
    console.log(line(rows[0]));
    console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
    rows.slice(1).forEach((r) => console.log(line(r)));
}

void main();
