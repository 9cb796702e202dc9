/**
 * No step changes a directory it did not make. Every rendered step of a first `pulumi up` runs, under
 * the lifecycle simulation, on hosts that hold Ubuntu's system directories with the modes Ubuntu
 * gives them (SYSTEM_DIRECTORIES: /run, /var/lib, /var/log, /tmp, /etc/systemd/system, ...), and after
 * each step every one of them has its mode and owner still; no step asks chown for one; and
 * kubeadm-ha's own logs and runtime files are root's alone. A /run at 0700 stops every user but root
 * from resolving names (/etc/resolv.conf points into /run/systemd/resolve: apt's _apt user cannot
 * reach pkgs.k8s.io) and an etcd member run as etcd from notifying systemd; a /var/lib at 0700 stops
 * that member and the node exporter. The same holds for a first `up` that restores etcd from a
 * snapshot, whose restore writes next to /var/lib/etcd.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { resetState } from "../tools/offline/engine";
import { LifecycleSimulation, SimHost, StepRun, systemDirectories, UpResult, World } from "../tools/offline/lifecycle";
import { runProgram } from "./harness";
import { tempDir } from "./tools";

jest.setTimeout(600_000);

const EXTERNAL = { etcdTopology: "external", etcdCount: "3" };
const SNAPSHOT = "s3://old-backups/kubeadm-ha/etcd/20261120T101500Z-kubeadm-ha-cp-1.db";

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

/** The system directories of `host` whose mode or owner is not what the host had before its first step. */
function changedDirectories(host: SimHost): string[] {
    const changed: string[] = [];
    for (const [dir, mode] of Object.entries(systemDirectories(host.role))) {
        const path = join(host.root, dir);
        let stat;
        try {
            stat = statSync(path);
        } catch {
            changed.push(`/${dir} is gone`);
            continue;
        }
        if ((stat.mode & 0o7777) !== mode) changed.push(`/${dir} is ${octal(stat.mode)}, was ${octal(mode)}`);
        if (stat.uid !== process.getuid!() || stat.gid !== process.getgid!()) changed.push(`/${dir} is owned by ${stat.uid}:${stat.gid}`);
    }
    return changed;
}

/**
 * The chown requests the steps made (hosts/chown's log), and those that name a system directory, or
 * (-R) one that holds one.
 */
function chownRequests(dir: string, world: World): { all: number; ofSystemDirectories: string[] } {
    const lines = readFileSync(join(dir, "chown.log"), "utf8").split("\n").filter(Boolean);
    const found: string[] = [];
    for (const line of lines) {
        const [step, hostId, args] = line.split("\t");
        const host = world.hosts[hostId];
        const words = args.split(" ");
        const recursive = words.includes("-R");
        const [, ...targets] = words.filter((w) => !w.startsWith("-"));
        for (const target of targets.map((t) => relative(host.root, t))) {
            const hit = Object.keys(systemDirectories(host.role)).find((d) => d === target || (recursive && (target === "" || d.startsWith(`${target}/`))));
            if (hit !== undefined) found.push(`${step} on ${host.instance}: chown ${args}`);
        }
    }
    return { all: lines.length, ofSystemDirectories: found };
}

/** Files and directories under `dir` (relative), with their modes. */
function tree(dir: string): [string, number][] {
    const entries: [string, number][] = [];
    for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        const stat = statSync(path);
        entries.push([path, stat.mode & 0o7777]);
        if (stat.isDirectory()) entries.push(...tree(path));
    }
    return entries;
}

/** A first `up` of `config`, checking every host's system directories after every step. */
async function firstUp(config: Record<string, unknown>, prepare?: (sim: LifecycleSimulation) => void) {
    resetState();
    const dir = tempDir("system-directories");
    const changes: string[] = [];
    const seen = new Set<string>();
    const observe = (step: StepRun, world: World) => {
        for (const host of Object.values(world.hosts)) {
            for (const change of changedDirectories(host).filter((c) => !seen.has(`${host.id} ${c}`))) {
                seen.add(`${host.id} ${change}`);
                changes.push(`after ${step.action} ${step.step} on ${world.hosts[step.host]?.instance}: ${host.instance} ${change}`);
            }
        }
    };
    const sim = new LifecycleSimulation(dir, runProgram, { afterStep: observe });
    prepare?.(sim);
    const result: UpResult = await sim.up(config);
    return { sim, result, changes, dir };
}

function expectUntouched(run: Awaited<ReturnType<typeof firstUp>>): void {
    const { sim, result, changes, dir } = run;
    expect(result.failed && `${result.failed.step}: ${result.failed.output}`).toBeUndefined();
    expect(result.steps.length).toBeGreaterThan(0);
    expect(changes).toEqual([]);
    // Steps do ask chown (restore_pki, a restore's data directory), and never for a system directory.
    const chowns = chownRequests(dir, sim.world());
    expect(chowns.all).toBeGreaterThan(0);
    expect(chowns.ofSystemDirectories).toEqual([]);
    for (const host of Object.values(sim.world().hosts)) {
        // kubeadm-ha's logs (kubeadm's output, which names the bootstrap token) and runtime files: root's alone.
        for (const own of ["var/log/kubeadm-ha", "run/kubeadm-ha"]) {
            expect([host.instance, own, octal(statSync(join(host.root, own)).mode)]).toEqual([host.instance, own, "0700"]);
            const open = tree(join(host.root, own)).filter(([, mode]) => (mode & 0o077) !== 0);
            expect([host.instance, open]).toEqual([host.instance, []]);
        }
    }
}

describe("Ubuntu's system directories on every node", () => {
    it("keep their modes and owners through every step of a first up, stacked etcd", async () => {
        const run = await firstUp({});
        expectUntouched(run);
        // The logs are there to check: kubeadm init's, at least.
        const first = Object.values(run.sim.world().hosts).find((h) => h.instance === "kubeadm-ha-cp-0")!;
        expect(readdirSync(join(first.root, "var/log/kubeadm-ha"))).toContain("init.log");
    });

    it("keep their modes and owners through every step of a first up, external etcd", async () => {
        expectUntouched(await firstUp(EXTERNAL));
    });

    it.each([
        ["stacked etcd", { kubernetesVersion: "1.37.2" }, "3.7.0"],
        ["external etcd", EXTERNAL, "3.5.21"],
    ])("keep their modes and owners through every step of a first up that restores etcd from a snapshot, %s", async (_name, config, etcd) => {
        const run = await firstUp({ ...config, etcdRestoreFrom: SNAPSHOT }, (sim) => sim.putSnapshot(SNAPSHOT, { etcd, revision: 5_000, keys: 100 }));
        expect(run.sim.world().events.filter((e) => e.what === "etcd-restore").length).toBeGreaterThan(0);
        expectUntouched(run);
    });
});
