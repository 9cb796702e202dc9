/**
 * Builds (or finds cached) every release the lab runs and its node agent, and prints how long each took: the cold
 * figure on a fresh machine, the warm one (a directory check) after. `npm run lab:build`.
 */
import { spawnSync } from "node:child_process";
import { BUILD_SCRIPT, LAB_RELEASES, NODE_AGENT_BUILD_SCRIPT } from "../releases";

const wanted = new Map<string, string[]>();
for (const r of LAB_RELEASES) {
    if (r.hosts) {
        wanted.set(`kubernetes ${r.kubernetes}`, [BUILD_SCRIPT, "kubernetes", r.kubernetes]);
        wanted.set(`etcd ${r.etcd}`, [BUILD_SCRIPT, "etcd", r.etcd]);
    } else {
        wanted.set(`kubeadm ${r.kubernetes}`, [BUILD_SCRIPT, "kubeadm", r.kubernetes]);
    }
}
wanted.set("node agent", [NODE_AGENT_BUILD_SCRIPT]);
let failed = false;
for (const [label, command] of wanted) {
    const started = process.hrtime.bigint();
    const result = spawnSync("bash", command, { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (result.status !== 0) failed = true;
    console.log(`${label.padEnd(20)} ${result.status === 0 ? "ok" : "FAILED"} ${seconds.toFixed(1)} s  ${result.stdout.trim()}`);
}
process.exit(failed ? 1 : 0);
