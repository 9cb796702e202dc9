/**
 * Benchmark: how long the program takes to evaluate (under the offline engine, with certificate
 * issuance) for 3, 5 and 7 control-plane nodes in both etcd topologies, how many resources it
 * declares, and how many remote-command stages the bootstrap runs one after another.
 *
 *   npm run bench [-- --runs 5]
 *
 * Figures, not assertions: it prints a table and exits 0.
 */
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { resetState, runProgram } from "./offline/engine";
import { COMMAND_TYPE, criticalPath } from "./offline/graph";

/** A fresh module registry for each run, so each run builds its own Pulumi runtime and program. */
function freshModules(load: () => void): void {
    for (const key of Object.keys(require.cache)) {
        if (!key.includes("/tools/offline/")) delete require.cache[key];
    }
    load();
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
    const rows: string[][] = [["topology", "control plane", "resources", "remote commands", "critical path (stages)", `median ms (of ${runs})`, "min ms"]];
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
