/**
 * The lifecycle simulation: `pulumi up` after `pulumi up` on simulated hosts.
 *
 * Each `up` runs the program under the offline engine, diffs what it declares against the previous
 * run as the Pulumi engine would, and applies the documented lifecycle to the remote commands:
 * create for a new command; for changed inputs `update`, else `create` again, in place (the command
 * provider); replacement when `triggers` change, create-before-delete; ignored inputs
 * (`ignoreChanges`) keep their old values; deletes last, in reverse order (and a command's delete
 * runs its old `delete` command, if it has one, on its old host). Commands run one at a time in an
 * order their dependencies allow, as the real command lines the program renders, under bash, on
 * hosts that are directories (KUBEADM_HA_ROOT) with stand-ins for kubeadm, kubectl, etcdctl, curl and
 * systemctl sharing one model of the cluster (hosts/model.cjs). Control-plane nodes and external etcd
 * members are both hosts; an etcd host has the etcdctl its preparation installs. A host that is gone
 * is never reached: the step's dial limit is what it costs.
 *
 * The tests of later runs (lifecycle, upgrades, backups) share this engine.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { launchTemplateVersionOf, ProgramRun, RunOptions } from "./engine";
import { ETCD_RELEASE, ETCDUTL_RELEASES } from "../../core/etcd";
import { COMMAND_TYPE } from "./graph";
import { modelServerPort } from "./model-server";
import { applyUp, instanceIdOf, instanceOf, PlannedStep, plannedInstances, StepRun, unreachable } from "./apply";

export type { Action, StepRun } from "./apply";

const HOSTS_DIR = join(__dirname, "hosts");
/** The pause and etcd image tags of each minor's kubeadm, shared with the hosts' model. */
const KUBEADM_IMAGES = JSON.parse(readFileSync(join(HOSTS_DIR, "kubeadm-images.json"), "utf8")) as Record<string, { pause: string; etcd: string }>;
const INSTANCE_TYPE = "aws:ec2/instance:Instance";

/**
 * The directories every host has before any step runs, with the modes Ubuntu 24.04 (the nodes' image)
 * gives them: base-files' tree, systemd's /run and resolver directory (/etc/resolv.conf points into
 * /run/systemd/resolve, read by every user), apt's directories, and /var/log at 0775 (group syslog,
 * from rsyslog's tmpfiles.d entry; groups are not simulated). Steps add to them and never change their
 * mode or owner (test/system-directories.test.ts).
 */
export const SYSTEM_DIRECTORIES: Readonly<Record<string, number>> = {
    "": 0o755,
    etc: 0o755,
    "etc/apt": 0o755,
    "etc/apt/keyrings": 0o755,
    "etc/apt/sources.list.d": 0o755,
    "etc/ssh": 0o755,
    "etc/systemd": 0o755,
    "etc/systemd/system": 0o755,
    root: 0o700,
    run: 0o755,
    "run/systemd": 0o755,
    "run/systemd/resolve": 0o755,
    tmp: 0o1777,
    usr: 0o755,
    "usr/local": 0o755,
    "usr/local/bin": 0o755,
    "usr/local/sbin": 0o755,
    var: 0o755,
    "var/backups": 0o755,
    "var/cache": 0o755,
    "var/lib": 0o755,
    "var/local": 0o2775,
    "var/log": 0o775,
    "var/tmp": 0o1777,
};

/** What control-plane nodes have besides, from their packages: the kubelet's /etc/kubernetes/manifests, containerd's /etc/containerd. */
export const CONTROL_PLANE_DIRECTORIES: Readonly<Record<string, number>> = {
    "etc/kubernetes": 0o755,
    "etc/kubernetes/manifests": 0o755,
    "etc/containerd": 0o755,
};

/** The directories a host of `role` has before any step runs, relative to its root, with their modes. */
export function systemDirectories(role: SimHost["role"]): Record<string, number> {
    return role === "control-plane" ? { ...SYSTEM_DIRECTORIES, ...CONTROL_PLANE_DIRECTORIES } : { ...SYSTEM_DIRECTORIES };
}

/** An etcdutl of `release` on a simulated host: the model's (hosts/model.cjs), as that release. */
export function etcdutlStandIn(release: string): string {
    return `#!/bin/sh\n# etcdutl ${release}, the simulation's (hosts/model.cjs)\nSIM_TOOL=etcdutl SIM_ETCD_RELEASE=${release} exec "${join(HOSTS_DIR, "model-call")}" "$@"\n`;
}

/** What the model takes for an etcd snapshot: the release of the etcd that wrote it, its revision and its keys. */
export interface SimSnapshot {
    etcd: string;
    revision: number;
    keys: number;
}

export interface SimulationOptions {
    /** Called after each command the simulation runs on a host (create, update, replace, delete), with its result. */
    afterStep?: (step: StepRun, world: World) => void;
}

export interface SimHost {
    /** The instance id. */
    id: string;
    instance: string;
    /** The node name (private DNS) and private address. */
    name: string;
    ip: string;
    /** The instance's tier (its kubeadm-ha/role tag). */
    role: "control-plane" | "etcd";
    alive: boolean;
    /** kubeadm set up a control plane here (whether its API server is ready depends on etcd too). */
    api: boolean;
    /** A stacked etcd member runs here. */
    member: boolean;
    /** An external member's etcd process: running, as which member, or why it stopped. */
    etcd?: { active: boolean; memberId?: string; error?: string };
    root: string;
    /** Control-plane hosts: the Kubernetes packages installed, and which apt holds. */
    packages?: { kubeadm: string; kubelet: string; kubectl: string };
    held?: string[];
    /** The kubelet release running, and the release of the control-plane pods. */
    kubelet?: string;
    controlPlane?: string;
    /** The earliest expiry of the certificates kubeadm issued here (ISO 8601). */
    certExpiry?: string;
}

/** What each minor's pkgs.k8s.io repository holds in the simulation. */
export const RELEASES: Record<string, string[]> = {
    "1.31": ["1.31.0", "1.31.14"],
    "1.32": ["1.32.0", "1.32.10"],
    "1.33": ["1.33.0", "1.33.5", "1.33.6"],
    "1.34": ["1.34.0", "1.34.1", "1.34.2"],
    "1.35": ["1.35.0", "1.35.8"],
    "1.36": ["1.36.0", "1.36.5"],
    "1.37": ["1.37.0", "1.37.1", "1.37.2"],
};

/** A member of the external etcd cluster: name and client URL are empty until it first starts. */
export interface ExternalMember {
    id: string;
    name: string;
    peerUrl: string;
    clientUrl: string;
    learner: boolean;
    /** The host that runs it, once started. */
    host?: string;
    /** A learner that runs: the promotions etcd refuses before it has caught up with the leader. */
    behind?: number;
}

export interface ClusterEvent {
    step: string;
    host: string;
    what:
        | "init"
        | "second-init"
        | "join"
        | "reset"
        | "member-remove"
        | "delete-node"
        | "move-leader"
        | "restart-kube-proxy"
        | "apiserver-manifest"
        // Releases, configuration and certificates of control-plane nodes.
        | "upgrade-apply"
        | "upgrade-node"
        | "apt-install"
        | "drain"
        | "uncordon"
        | "kubelet-restart"
        | "containerd-restart"
        | "snapshot-now"
        | "ready-check"
        | "upload-config"
        | "etcd-manifest"
        | "certs-renew"
        // Bootstrap tokens made and deleted through kubeadm (never their value).
        | "token-create"
        | "token-delete"
        // External etcd: a cluster formed from an initial cluster, members added, removed, promoted,
        // each start of an etcd unit (with its error), a quorum gained, and one lost by a change.
        | "etcd-form"
        | "etcd-add"
        | "etcd-remove"
        | "etcd-promote"
        | "etcd-start"
        | "etcd-quorum"
        | "etcd-quorum-lost"
        // A data directory etcdutl restored from a snapshot (its release, the snapshot's etcd, the revision bump).
        | "etcd-restore";
    wasMember?: boolean;
    member?: string;
    node?: string;
    error?: string;
    /** "external" on the events of the external etcd cluster. */
    etcd?: string;
    from?: string;
    to?: string;
    version?: string;
    kind?: string;
    /** External etcd: an added member is a learner; a removed member's peer URL. */
    learner?: boolean;
    peerUrl?: string;
    /** A join: the seconds its bootstrap token had left when it started; a token made: its TTL. */
    tokenSecondsLeft?: number;
    ttlSeconds?: number;
}

export interface World {
    hosts: Record<string, SimHost>;
    cluster: {
        inits: number;
        /** Stacked etcd members. */
        members: { id: string; name: string; learner: boolean }[];
        nodes: string[];
        /** The bootstrap tokens kubeadm made, with their expiry (ISO 8601); expired ones are gone on the next read. */
        tokens: { token: string; expires: string }[];
        nextId: number;
        leader?: string;
        /** The release the cluster runs (kubeadm-config's kubernetesVersion). */
        version?: string;
        /** The ClusterConfiguration kubeadm init stored in the cluster, which every join reads. */
        configuration?: { etcd?: { external?: { endpoints: string[] } } };
    };
    /** The external etcd cluster (empty with stacked etcd). */
    etcd: {
        formed: number;
        members: ExternalMember[];
        leader?: string;
        nextId: number;
        /** The promotions etcd refuses to a learner that has just started (2 unless a test sets it). */
        learnerCatchUp?: number;
    };
    releases: Record<string, string[]>;
    events: ClusterEvent[];
    /** Objects in S3 the hosts read (a restore's snapshot): "<bucket>/<key>" → body (base64) and user metadata. */
    s3?: Record<string, { body: string; metadata: Record<string, string> }>;
    /**
     * The etcd releases on GitHub: the SHA-256 etcd published for each architecture's tarball. The
     * simulation cannot make bytes with etcd's digests: a tarball its curl serves checks as the digest
     * published for it, which the simulation takes from the pins the program carries (core/etcd.ts), so
     * a step that checks a download against another release's or architecture's pin fails as on a node.
     */
    etcdReleases?: Record<string, { amd64: string; arm64: string }>;
    /** The release tarballs a host's curl wrote: path → release, architecture, and the SHA-256 of those bytes. */
    downloads?: Record<string, { version: string; arch: string; sha256: string }>;
}

export interface UpResult {
    run: ProgramRun;
    steps: StepRun[];
    /** The step that failed, which ends the `up` as Pulumi would. */
    failed?: StepRun;
    /** Pairs of commands that changed etcd membership and could have run at the same time. */
    overlapping: [string, string][];
}

export type RunProgram = (config: Record<string, unknown>, options: Omit<RunOptions, "isolate">) => Promise<ProgramRun>;

export class LifecycleSimulation {
    private readonly worldFile: string;
    private previous?: ProgramRun;
    /** The hosts' model server (model-server.ts), started by the first up. */
    private modelPort?: number;

    /** The directory tree of a simulated host: what its steps see as `/`. */
    hostRoot(id: string): string {
        return join(this.dir, "hosts", id);
    }

    constructor(
        private readonly dir: string,
        private readonly runProgram: RunProgram,
        private readonly options: SimulationOptions = {},
    ) {
        mkdirSync(dir, { recursive: true });
        this.worldFile = join(dir, "world.json");
        this.save({
            hosts: {},
            cluster: { inits: 0, members: [], nodes: [], tokens: [], nextId: 0 },
            etcd: { formed: 0, members: [], nextId: 0 },
            releases: RELEASES,
            events: [],
            etcdReleases: Object.fromEntries(ETCDUTL_RELEASES.map((r) => [r.version, { ...r.sha256 }])),
        });
    }

    world(): World {
        return JSON.parse(readFileSync(this.worldFile, "utf8"));
    }

    private save(world: World): void {
        writeFileSync(this.worldFile, JSON.stringify(world, null, 1));
    }

    /** Changes the world between runs, as a test's setting (a token near its expiry, a learner slow to catch up). */
    changeWorld(change: (world: World) => void): void {
        const world = this.world();
        change(world);
        this.save(world);
    }

    /**
     * An etcd snapshot in S3 (`url`, s3://bucket/key) as kubeadm-ha's upload leaves it
     * (scripts/etcd-backup.sh): the model's stand-in for one, with its SHA-256 and, unless `recorded`
     * is false (an upload by an earlier kubeadm-ha), the release of the etcd that wrote it.
     */
    putSnapshot(url: string, snapshot: SimSnapshot, recorded = true): void {
        const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(url)!;
        const body = Buffer.from(JSON.stringify({ kind: "simulated etcd snapshot", ...snapshot }));
        const metadata: Record<string, string> = { sha256: createHash("sha256").update(body).digest("hex") };
        if (recorded) metadata["etcd-version"] = snapshot.etcd;
        const world = this.world();
        world.s3 = { ...world.s3, [`${bucket}/${key}`]: { body: body.toString("base64"), metadata } };
        this.save(world);
    }

    /** The instance (by name) stops answering, as a dead or terminated machine does. */
    kill(instance: string): void {
        const world = this.world();
        for (const host of Object.values(world.hosts)) if (host.instance === instance) host.alive = false;
        this.save(world);
    }

    /**
     * Makes the last run's record of the matching commands differ from what the program renders now,
     * as a new release of the program with edited scripts does: the next `up` updates them.
     */
    editScripts(stepName: RegExp): void {
        for (const command of this.previous?.ofType(COMMAND_TYPE) ?? []) {
            if (stepName.test(command.name)) command.inputs = { ...command.inputs, create: `${command.inputs.create}# an earlier release\n` };
        }
    }

    /**
     * The etcd servers each control-plane node's API server is configured with (its static pod
     * manifest's --etcd-servers), by instance name; only live hosts.
     */
    apiServerEtcdServers(): Record<string, string[]> {
        const servers: Record<string, string[]> = {};
        for (const host of Object.values(this.world().hosts)) {
            const manifest = join(host.root, "etc/kubernetes/manifests/kube-apiserver.yaml");
            if (!host.alive || host.role !== "control-plane" || !existsSync(manifest)) continue;
            servers[host.instance] = /--etcd-servers=(\S+)/.exec(readFileSync(manifest, "utf8"))?.[1].split(",") ?? [];
        }
        return servers;
    }

    /** Whether the API server of the live host of `instance` answers /readyz (asked of the model, as a step would). */
    apiReady(instance: string): boolean {
        const host = Object.values(this.world().hosts).find((h) => h.instance === instance && h.alive);
        if (!host) return false;
        return this.shell("probe", host.id, "curl --silent --fail https://127.0.0.1:6443/readyz").status === 0;
    }

    /** Time passes: every certificate kubeadm issued on the hosts is `days` closer to its expiry. */
    age(days: number): void {
        const world = this.world();
        for (const host of Object.values(world.hosts)) {
            if (host.certExpiry) host.certExpiry = new Date(Date.parse(host.certExpiry) - days * 86_400_000).toISOString().replace(/\.\d{3}Z$/, "Z");
        }
        this.save(world);
    }

    /** Boots new instances: a prepared machine with an empty tree, and for an etcd member its etcd release. */
    private boot(run: ProgramRun): void {
        const world = this.world();
        for (const instance of run.ofType(INSTANCE_TYPE)) {
            const id = instanceIdOf(run, instance.name);
            if (world.hosts[id]) continue;
            const role = instance.inputs.tags?.["kubeadm-ha/role"] === "etcd" ? "etcd" : "control-plane";
            const root = this.hostRoot(id);
            for (const [dir, mode] of Object.entries(systemDirectories(role))) {
                mkdirSync(join(root, dir), { recursive: true });
                chmodSync(join(root, dir), mode);
            }
            mkdirSync(join(root, "var/lib/kubeadm-ha"), { recursive: true });
            mkdirSync(join(root, "etc"), { recursive: true });
            if (role === "etcd") {
                // What prepare-etcd-node.sh leaves: the etcd binaries, the data and configuration directories.
                for (const dir of ["usr/local/bin", "var/lib/etcd", "etc/etcd", "etc/systemd/system"]) mkdirSync(join(root, dir), { recursive: true });
                symlinkSync(join(HOSTS_DIR, "model-call"), join(root, "usr/local/bin/etcdctl"));
                // prepare-etcd-node.sh installs etcdutl with etcd, of the release its user data names.
                writeFileSync(join(root, "usr/local/bin/etcdutl"), etcdutlStandIn(ETCD_RELEASE.version), { mode: 0o755 });
            }
            writeFileSync(join(root, "var/lib/kubeadm-ha/prepared"), "prepared by the simulation\n");
            // What prepare-node.sh installs: the release its launch template's user data names, from that minor's repository.
            const release = role === "control-plane" ? preparedRelease(instance.name, world.releases) : undefined;
            if (release) {
                // containerd's sandbox image as prepare-node.sh leaves it: the pause image of the release's kubeadm.
                mkdirSync(join(root, "etc/containerd"), { recursive: true });
                writeFileSync(
                    join(root, "etc/containerd/config.toml"),
                    `version = 2\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n    sandbox_image = "registry.k8s.io/pause:${KUBEADM_IMAGES[release.minor].pause}"\n`,
                );
                mkdirSync(join(root, "etc/apt/sources.list.d"), { recursive: true });
                writeFileSync(
                    join(root, "etc/apt/sources.list.d/kubernetes.list"),
                    `deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v${release.minor}/deb/ /\n`,
                );
            }
            writeFileSync(join(root, "etc/hosts"), "127.0.0.1 localhost\n");
            mkdirSync(join(root, "etc/ssh"), { recursive: true });
            const key = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, id)]);
            writeFileSync(join(root, "etc/ssh/ssh_host_ed25519_key.pub"), `ssh-ed25519 ${key.toString("base64")} root@${id}\n`);
            world.hosts[id] = {
                id,
                instance: instance.name,
                name: instance.state.privateDns,
                ip: instance.state.privateIp,
                role,
                alive: true,
                api: false,
                member: false,
                root,
                ...(release
                    ? {
                          packages: { kubeadm: release.version, kubelet: release.version, kubectl: release.version },
                          held: ["kubelet", "kubeadm", "kubectl"],
                          kubelet: release.version,
                      }
                    : {}),
            };
        }
        this.save(world);
    }

    /** Runs a planned step on the host its connection reaches, as the command provider would over SSH. */
    private execute(step: PlannedStep): StepRun {
        const hostId = instanceOf(step.run, step.command);
        const host = this.world().hosts[hostId];
        const run: StepRun =
            !host || !host.alive
                ? unreachable(step, hostId)
                : {
                      step: step.command.name,
                      action: step.action,
                      host: hostId,
                      dialSeconds: 0,
                      ...this.shell(step.command.name, hostId, step.line, step.inputs.stdin),
                  };
        this.options.afterStep?.(run, this.world());
        return run;
    }

    /** Runs one command line on a live host under bash, with the stand-ins first on its PATH. */
    private shell(step: string, hostId: string, line: string, stdin = ""): { status: number; output: string } {
        const host = this.world().hosts[hostId];
        const result = spawnSync("bash", ["-c", line], {
            input: stdin,
            encoding: "utf8",
            env: {
                PATH: `${HOSTS_DIR}:${process.env.PATH}`,
                HOME: host.root,
                BASH_ENV: join(HOSTS_DIR, "bash-env.sh"),
                KUBEADM_HA_ROOT: host.root,
                PKI_OWNER: `${process.getuid!()}:${process.getgid!()}`,
                SIM_WORLD: this.worldFile,
                SIM_HOST: hostId,
                SIM_HOSTNAME: host.name,
                SIM_STEP: step,
                SIM_MODEL_PORT: String(this.modelPort ?? ""),
                // What the steps asked chown for (hosts/chown), since ownership is not simulated.
                SIM_CHOWN_LOG: join(this.dir, "chown.log"),
            },
        });
        return { status: result.status ?? 1, output: `${result.stdout}${result.stderr}` };
    }

    /**
     * One `pulumi up`: the program's new declaration applied to the hosts. The program reads the last
     * successful run's outputs (its StackReference to itself); `outputs` overrides some of them, as the
     * real outputs the simulation does not produce (what the steps printed) would be.
     */
    async up(
        config: Record<string, unknown>,
        options: { replace?: string[]; outputs?: Record<string, unknown> } & Pick<RunOptions, "images" | "refresh"> = {},
    ): Promise<UpResult> {
        this.modelPort ??= await modelServerPort();
        const run = await this.runProgram(config, {
            replacements: { replace: options.replace ?? [] },
            images: options.images,
            refresh: options.refresh,
            previousOutputs: { ...this.previous?.outputs, ...options.outputs },
        });
        this.boot(run);
        const { steps, failed } = applyUp(this.previous, run, (step) => this.execute(step));
        if (!failed) {
            // Replaced and removed instances are terminated.
            const world = this.world();
            const current = plannedInstances(run);
            for (const host of Object.values(world.hosts)) if (!current.has(host.id)) host.alive = false;
            this.save(world);
            this.previous = run;
        }
        return { run, steps, failed, overlapping: overlappingMembershipChanges(run, this.world().events) };
    }
}

/**
 * The release prepare-node.sh installs from the user data of the launch template version the instance
 * was launched from: the pinned patch, else the newest of the minor.
 */
function preparedRelease(instance: string, releases: Record<string, string[]>): { minor: string; version: string } {
    const script = Buffer.from(launchTemplateVersionOf(instance)!.userData, "base64").toString("utf8");
    const minor = /^KUBERNETES_MINOR='([^']*)'$/m.exec(script)![1];
    const patch = /^KUBERNETES_PATCH='([^']*)'$/m.exec(script)![1];
    return { minor, version: patch || releases[minor].at(-1)! };
}

/**
 * Steps that changed the members of one etcd cluster without one waiting for the other: the stacked
 * cluster (init, joins, resets, removals) and the external one (adds and removals).
 */
function overlappingMembershipChanges(run: ProgramRun, events: ClusterEvent[]): [string, string][] {
    return [
        ...overlapping(
            run,
            events.filter((e) => ["init", "join", "member-remove", "reset"].includes(e.what)),
        ),
        ...overlapping(
            run,
            events.filter((e) => ["etcd-add", "etcd-remove", "etcd-promote"].includes(e.what)),
        ),
    ];
}

function overlapping(run: ProgramRun, events: ClusterEvent[]): [string, string][] {
    const changing = [...new Set(events.map((e) => e.step))];
    const pairs: [string, string][] = [];
    for (const a of changing) {
        for (const b of changing) {
            if (a < b && run.resources.some((r) => r.name === a) && run.resources.some((r) => r.name === b)) {
                if (!run.waitsFor(a, b) && !run.waitsFor(b, a)) pairs.push([a, b]);
            }
        }
    }
    return pairs;
}
