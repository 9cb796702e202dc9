/**
 * The releases the lab runs, and where lab/build/build-release.sh caches their binaries. The lab
 * runs what the program installs: its default Kubernetes release and the etcd that release's kubeadm
 * pins for a stacked cluster, built in full for lab hosts; and the previous minor, whose kubeadm
 * alone is built, to judge the configurations of a cluster before its upgrade (no lab host runs it
 * yet: its control plane would cost CI as long again to build). Each pin is checked against the real
 * kubeadm (`kubeadm config images list`) by the lab's tests, so a stale one fails there.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { DEFAULTS } from "../core/config";

export interface LabRelease {
    kubernetes: string;
    /** The etcd release this Kubernetes release's kubeadm runs for stacked members ("3.7.0" of "3.7.0-0"). */
    etcd: string;
    /** Built for lab hosts (kubeadm, the control plane, kubectl and etcd), or its kubeadm alone. */
    hosts: boolean;
}

/** The program's default release. */
export const CURRENT: LabRelease = { kubernetes: DEFAULTS.kubernetesVersion, etcd: "3.7.0", hosts: true };

/** The newest patch of the minor before it: what a minor upgrade starts from. */
export const PREVIOUS_MINOR: LabRelease = { kubernetes: "1.36.5", etcd: "3.6.8", hosts: false };

export const LAB_RELEASES: readonly LabRelease[] = [CURRENT, PREVIOUS_MINOR];

export const BUILD_SCRIPT = join(__dirname, "build", "build-release.sh");

/** The per-machine cache, as build-release.sh computes it. */
export function labCache(): string {
    return process.env.KUBEADM_HA_LAB_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "kubeadm-ha-lab");
}

/** The directory holding a built release's binaries; throws, naming the command that builds it, when it is missing. */
export function releaseDir(component: "kubernetes" | "kubeadm" | "etcd", release: string): string {
    const dir = join(labCache(), `${component}-v${release}`);
    if (!existsSync(join(dir, ".complete"))) {
        throw new Error(
            `the lab's ${component} ${release} binaries are not built: run lab/build/build-release.sh ${component} ${release} (npm run lab:build builds every release the lab uses)`,
        );
    }
    return dir;
}

/** A built binary of the program's default release: kubeadm, kube-apiserver, ..., etcd, etcdctl, etcdutl. */
export function binary(name: string, release: LabRelease = CURRENT): string {
    if (!release.hosts && name !== "kubeadm") throw new Error(`the lab builds only kubeadm of ${release.kubernetes}, not ${name}`);
    const component = name.startsWith("etcd") ? "etcd" : release.hosts ? "kubernetes" : "kubeadm";
    return join(releaseDir(component, component === "etcd" ? release.etcd : release.kubernetes), name);
}

export const NODE_AGENT_BUILD_SCRIPT = join(__dirname, "build", "build-node-agent.sh");

/** The lab's node agent (lab/node-agent), built for its current source if it is not cached yet. */
export function nodeAgent(): string {
    const result = spawnSync("bash", [NODE_AGENT_BUILD_SCRIPT], { encoding: "utf8" });
    if (result.status !== 0) throw new Error(`building the lab's node agent failed: ${result.stderr}`);
    return result.stdout.trim();
}
