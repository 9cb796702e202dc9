/**
 * Lab hosts: each node a network namespace, a PID namespace, a UTS namespace and a mount namespace of
 * its own, on one switch (a bridge in a namespace of its own), so that the program's steps run as root
 * on the real paths (`/etc`, `/etc/kubernetes`, `/var/lib`, `/run`, `/var/log`, with
 * `KUBEADM_HA_ROOT` empty), exactly as on EC2, and nothing of the lab is reachable from, or routed
 * through, the machine's own namespace.
 *
 * A host's file system is the machine's, with copy-on-write layers (overlayfs) of its own over `/etc`,
 * `/usr`, `/var` and `/root`, and fresh `/run` and `/tmp`: what a step changes stays on that host. Its
 * PID 1 is the node agent's `init` (lab/node-agent), so killing it ends every process of the host:
 * that is how a host is lost, and how the lab cleans up. Every namespace the lab makes carries its
 * lab's name, and a lab that was interrupted is swept by the next one (`sweepStaleLabs`).
 */
import { spawnSync, SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
/** Where labs record themselves, so an interrupted one is swept. */
const LABS_DIR = join(tmpdir(), "kubeadm-ha-labs");

export interface LabHostSpec {
    /** The lab's name for it (also its namespace's suffix): a short id. */
    id: string;
    /** Its hostname: the EC2 private DNS name the program planned, which is its Node name. */
    hostname: string;
    /** The private address the program planned for it. */
    ip: string;
}

export interface LabHost extends LabHostSpec {
    netns: string;
    /** PID 1 of the host's PID namespace, in the machine's view. */
    initPid: number;
    dir: string;
}

export interface RunResult {
    status: number;
    stdout: string;
    stderr: string;
}

function sh(command: string, args: string[], options: { input?: string; allowFailure?: boolean } = {}): SpawnSyncReturns<string> {
    const result = spawnSync(command, args, { encoding: "utf8", input: options.input });
    if (!options.allowFailure && result.status !== 0) {
        throw new Error(`${command} ${args.join(" ")}: exit ${result.status}: ${result.stderr || result.error?.message}`);
    }
    return result;
}

/** Why the lab cannot run on this machine, or undefined when it can. */
export function labUnavailable(): string | undefined {
    if (process.platform !== "linux") return `the lab needs Linux namespaces; this is ${process.platform}`;
    if (process.getuid?.() !== 0) return "the lab needs root (it makes network, PID and mount namespaces)";
    for (const tool of ["ip", "unshare", "nsenter", "mount"]) {
        if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `the lab needs ${tool} (iproute2, util-linux)`;
    }
    const probe = spawnSync("unshare", ["--net", "--pid", "--fork", "--mount", "--uts", "true"]);
    if (probe.status !== 0) return `this machine refuses new namespaces: ${probe.stderr?.toString().trim()}`;
    return undefined;
}

function processAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

/** Removes what labs whose process is gone left behind (an interrupted test, a killed run). */
export function sweepStaleLabs(): void {
    if (!existsSync(LABS_DIR)) return;
    for (const file of readdirSync(LABS_DIR)) {
        const record = JSON.parse(readFileSync(join(LABS_DIR, file), "utf8")) as { owner: number; name: string; dir: string };
        if (processAlive(record.owner)) continue;
        destroyLab(record.name, record.dir);
        rmSync(join(LABS_DIR, file), { force: true });
    }
}

/** Kills every process in the lab's namespaces and deletes them (their links go with them). */
function destroyLab(name: string, dir: string): void {
    const namespaces = sh("ip", ["netns", "list"], { allowFailure: true })
        .stdout.split("\n")
        .map((l) => l.split(" ")[0])
        .filter((n) => n.startsWith(`${name}-`));
    for (const ns of namespaces) {
        for (const pid of sh("ip", ["netns", "pids", ns], { allowFailure: true }).stdout.split("\n").filter(Boolean)) {
            try {
                process.kill(Number(pid), "SIGKILL");
            } catch {
                // already gone
            }
        }
    }
    for (const ns of namespaces) {
        for (let i = 0; i < 50 && sh("ip", ["netns", "pids", ns], { allowFailure: true }).stdout.trim() !== ""; i++) sh("sleep", ["0.1"]);
        sh("ip", ["netns", "delete", ns], { allowFailure: true });
    }
    rmSync(dir, { recursive: true, force: true });
}

/**
 * The mounts a host makes in its own mount namespace before anything runs there, and its identity.
 * `ip netns exec` gave it a /sys of its network namespace.
 */
function hostSetup(host: LabHostSpec, dir: string, hosts: string, nodeAgent: string): string {
    const layers = ["etc", "usr", "var", "root"]
        .map(
            (d) =>
                `mkdir -p ${dir}/${d}.upper ${dir}/${d}.work && mount -t overlay overlay -o lowerdir=/${d},upperdir=${dir}/${d}.upper,workdir=${dir}/${d}.work /${d}`,
        )
        .join("\n");
    return [
        "set -eu",
        // Nothing this host mounts is seen by the machine or the other hosts.
        "mount --make-rprivate /",
        layers,
        "mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run",
        "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp",
        "mkdir -p /run/lock && chmod 1777 /run/lock",
        // cgroup v2, as a node's systemd mounts it: kubeadm's system verification requires it (1.35 and
        // later refuse v1) with the cpu, cpuset, memory and pids controllers. This machine's kernel has
        // them bound to v1 hierarchies outside the lab, so the root's list of controllers is the one a
        // node's kernel shows, laid over the real file. Nothing uses them: the stand-ins make no cgroups.
        "mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup",
        "mkdir -p /run/lab && printf 'cpuset cpu io memory hugetlb pids rdma misc\\n' >/run/lab/cgroup.controllers",
        "mount --bind /run/lab/cgroup.controllers /sys/fs/cgroup/cgroup.controllers",
        `hostname ${host.hostname}`,
        `printf '%s\\n' ${JSON.stringify(host.hostname)} >/etc/hostname`,
        `cat >/etc/hosts <<'HOSTS'\n${hosts}HOSTS`,
        "ip link set lo up",
        "sysctl -qw net.ipv4.ip_forward=1",
        "sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true",
        `exec ${nodeAgent} init`,
    ].join("\n");
}

export class Lab {
    readonly name: string;
    readonly dir: string;
    private readonly hosts = new Map<string, LabHost>();
    private readonly switchNs: string;
    private stopped = false;
    private readonly onExit = () => this.stop();
    /** Interrupted: clean up, then end as the signal would have. */
    private readonly onSignal = (signal: NodeJS.Signals) => {
        this.stop();
        process.kill(process.pid, signal);
    };

    /**
     * @param nodeAgent the node agent binary (lab/node-agent), run as each host's init.
     * @param prefixLength the length of the network's prefix, so every planned address is on one link.
     */
    constructor(
        private readonly nodeAgent: string,
        private readonly prefixLength = 16,
    ) {
        sweepStaleLabs();
        this.name = `khl${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 2).toString(36)}`;
        this.dir = join(tmpdir(), `kubeadm-ha-lab-${this.name}`);
        mkdirSync(this.dir, { recursive: true });
        mkdirSync(LABS_DIR, { recursive: true });
        writeFileSync(join(LABS_DIR, `${this.name}.json`), JSON.stringify({ owner: process.pid, name: this.name, dir: this.dir }));
        process.once("exit", this.onExit);
        for (const signal of SIGNALS) process.once(signal, this.onSignal);
        this.switchNs = `${this.name}-sw`;
        sh("ip", ["netns", "add", this.switchNs]);
        sh("ip", ["-n", this.switchNs, "link", "add", "br0", "type", "bridge"]);
        sh("ip", ["-n", this.switchNs, "link", "set", "br0", "up"]);
    }

    /** The lines every host's /etc/hosts holds: each host's name, and the names given (the load balancer's). */
    private hostsFile(extra: Record<string, string>, self: LabHostSpec): string {
        const lines = ["127.0.0.1 localhost", `${self.ip} ${self.hostname}`];
        for (const [name, ip] of Object.entries(extra)) lines.push(`${ip} ${name}`);
        return `${lines.join("\n")}\n`;
    }

    /** Starts a host with its address on the lab's switch; `names` go in its /etc/hosts. */
    addHost(spec: LabHostSpec, names: Record<string, string> = {}): LabHost {
        const netns = `${this.name}-${spec.id}`;
        const dir = join(this.dir, spec.id);
        mkdirSync(dir, { recursive: true });
        sh("ip", ["netns", "add", netns]);
        const link = `${this.name.slice(-8)}${spec.id}`.slice(0, 15);
        sh("ip", ["-n", this.switchNs, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns]);
        sh("ip", ["-n", this.switchNs, "link", "set", link, "master", "br0", "up"]);
        sh("ip", ["-n", netns, "addr", "add", `${spec.ip}/${this.prefixLength}`, "dev", "eth0"]);
        sh("ip", ["-n", netns, "link", "set", "eth0", "up"]);
        const setup = hostSetup(spec, dir, this.hostsFile(names, spec), this.nodeAgent);
        const launcher = spawnSync(
            "sh",
            [
                "-c",
                `setsid ip netns exec ${netns} unshare --pid --fork --mount-proc --uts --propagation private bash -c "$0" >${dir}/init.log 2>&1 & echo $!`,
                setup,
            ],
            { encoding: "utf8" },
        );
        const unsharePid = Number(launcher.stdout.trim());
        let initPid = 0;
        for (let i = 0; i < 100 && !initPid; i++) {
            const children = `/proc/${unsharePid}/task/${unsharePid}/children`;
            const child = existsSync(children) ? readFileSync(children, "utf8").trim().split(" ")[0] : "";
            // Ready once PID 1 is the agent: the mounts are made.
            if (child && this.agentRuns(Number(child))) initPid = Number(child);
            else sh("sleep", ["0.05"]);
        }
        if (!initPid)
            throw new Error(`lab host ${spec.id} did not start: ${existsSync(join(dir, "init.log")) ? readFileSync(join(dir, "init.log"), "utf8") : ""}`);
        const host = { ...spec, netns, initPid, dir };
        this.hosts.set(spec.id, host);
        return host;
    }

    private agentRuns(pid: number): boolean {
        try {
            return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] === this.nodeAgent;
        } catch {
            return false;
        }
    }

    host(id: string): LabHost {
        const host = this.hosts.get(id);
        if (!host) throw new Error(`no lab host ${id}`);
        return host;
    }

    /** Whether a host of that id was ever added (it may be gone since). */
    has(id: string): boolean {
        return this.hosts.has(id);
    }

    /** Whether the host still runs (its init lives). */
    alive(id: string): boolean {
        const host = this.hosts.get(id);
        return host !== undefined && this.agentRuns(host.initPid);
    }

    /** Runs a command line on a host, as root in a login-like environment, as the command provider's SSH session would. */
    run(id: string, line: string, options: { stdin?: string; env?: Record<string, string>; timeoutSeconds?: number } = {}): RunResult {
        const host = this.host(id);
        const result = spawnSync(
            "nsenter",
            ["--target", String(host.initPid), "--net", "--pid", "--mount", "--uts", "--ipc", "--wd=/", "--", "bash", "-c", line],
            {
                encoding: "utf8",
                input: options.stdin ?? "",
                timeout: (options.timeoutSeconds ?? 900) * 1000,
                env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root", LANG: "C.UTF-8", USER: "root", ...options.env },
            },
        );
        return { status: result.status ?? 128, stdout: result.stdout ?? "", stderr: (result.stderr ?? "") + (result.error ? `${result.error.message}\n` : "") };
    }

    /** The host is lost at once: every process of it killed, its address gone from the switch. */
    kill(id: string): void {
        const host = this.host(id);
        try {
            process.kill(host.initPid, "SIGKILL");
        } catch {
            // already gone
        }
        sh("ip", ["netns", "delete", host.netns], { allowFailure: true });
    }

    /** Ends every process and removes every namespace, link, mount and file of the lab. */
    stop(): void {
        if (this.stopped) return;
        this.stopped = true;
        process.off("exit", this.onExit);
        for (const signal of SIGNALS) process.off(signal, this.onSignal);
        destroyLab(this.name, this.dir);
        rmSync(join(LABS_DIR, `${this.name}.json`), { force: true });
    }
}
