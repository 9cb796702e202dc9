/**
 * `npm run lab [-- --stack dev]`: the stack's cluster on lab hosts, for a person to use. The
 * program runs offline (as the tests run it), every remote command it renders runs on lab hosts with
 * the real kubeadm, etcd and control plane, and the cluster stays up until interrupted (Ctrl-C), then
 * every namespace, process and file of the lab is removed. The lab's network is not reachable from
 * this machine's own namespace, so kubectl runs on the lab's deployer host: the script it prints does
 * that. Stacked etcd only: external members run an etcd release this machine's Go module proxy
 * does not serve.
 */
import { parseArgs } from "node:util";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, labUnavailable } from "./hosts";
import { LabCluster } from "./cluster";
import { CURRENT, nodeAgent } from "./releases";
import { runProgram, zonesOf } from "../tools/offline/engine";
import { readStackConfig } from "../tools/render";
import { ETCD_RELEASE } from "../core/etcd";

async function main(): Promise<number> {
    const { values } = parseArgs({ options: { stack: { type: "string", default: "dev" } } });
    const unavailable = labUnavailable();
    if (unavailable) {
        console.error(`npm run lab: ${unavailable}`);
        return 1;
    }
    const stack = readStackConfig(values.stack!);
    if ((stack.config.etcdTopology ?? "stacked") !== "stacked") {
        console.error(
            `npm run lab: the lab runs stacked etcd only (external members run etcd ${ETCD_RELEASE.version}, which the lab cannot build here); stack ${values.stack} has etcdTopology ${stack.config.etcdTopology}`,
        );
        return 1;
    }
    const release = stack.config.kubernetesVersion ?? CURRENT.kubernetes;
    // Replacements tracked from the first run, as a stack's instances are.
    const run = await runProgram(stack.config, { regionZones: zonesOf(stack.region), replacements: { replace: [] } });
    const agent = nodeAgent();
    const lab = new Lab(agent);
    const cluster = new LabCluster(lab, agent);
    const { failed } = cluster.up(run, release, (r) =>
        console.log(`${r.status === 0 ? "ok    " : "FAILED"} ${r.action} ${r.step} on ${r.host} (${r.seconds.toFixed(1)} s)`),
    );
    if (failed) {
        console.error(failed.stdout.slice(-4000), failed.stderr.slice(-4000));
        lab.stop();
        return 1;
    }
    cluster.addDeployer(run, { kubernetes: release });
    const kubeconfig = join(lab.dir, "kubeconfig");
    writeFileSync(kubeconfig, run.outputs.kubeconfig as string, { mode: 0o600 });
    const kubectl = join(lab.dir, "kubectl");
    writeFileSync(
        kubectl,
        `#!/bin/sh\n# kubectl on the lab's deployer host, which reaches the load balancer's name\nexec nsenter --target ${lab.host("deployer").initPid} --net --mount --pid --uts -- kubectl "$@"\n`,
        { mode: 0o755 },
    );
    console.log(`\nThe ${values.stack} stack's cluster runs on lab ${lab.name}.`);
    console.log(`  kubeconfig (the program's admin output): ${kubeconfig}; its server, ${LabCluster.endpointName(run)}, resolves on the lab's hosts only`);
    console.log(`  kubectl through the load balancer:        sudo ${kubectl} get nodes`);
    console.log("Ctrl-C stops the lab and removes it.");
    // Signal listeners do not keep Node.js running: a timer does, until the signal comes.
    await new Promise<void>((resolve) => {
        const keepAlive = setInterval(() => undefined, 1 << 30);
        for (const signal of ["SIGINT", "SIGTERM"] as const) {
            process.once(signal, () => {
                clearInterval(keepAlive);
                resolve();
            });
        }
    });
    lab.stop();
    return 0;
}

main().then(
    (code) => process.exit(code),
    (error) => {
        console.error(`npm run lab: ${error instanceof Error ? error.message : error}`);
        process.exit(1);
    },
);
