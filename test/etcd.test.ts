/**
 * A real external etcd cluster: three etcd members on 127.0.0.1, 127.0.0.2 and 127.0.0.3, started
 * with the flags the program renders for its members (core/etcd.ts) and certificates issued from the
 * program's own specs (core/pki.ts). etcd and etcdctl come from Debian (3.4: the same flags as the
 * pinned 3.5 release on the nodes). Every process started here is stopped here, even on failure.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, openSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CA_SPECS, APISERVER_ETCD_CLIENT_SPEC, ADMIN_CERT_SPEC, etcdMemberCertSpec, CertSpec } from "../core/pki";
import { clientUrl, etcdFlags, EtcdMember, initialCluster } from "../core/etcd";
import { backupEnvironment } from "../core/backup";
import { renderEtcdBackupProgram } from "../core/scripts";
import { issueFromSpec, IssuedPem } from "../tools/offline/tls";
import { requireTool, tempDir } from "./tools";

jest.setTimeout(120_000);

const MEMBERS: EtcdMember[] = [1, 2, 3].map((i) => ({ name: `kubeadm-ha-etcd-${i - 1}`, ip: `127.0.0.${i}` }));
const TOKEN = "kubeadm-ha-etcd";
const KEYS = 50;

const root = tempDir("etcd");
const processes = new Map<string, ChildProcess>();
/** Every etcd ever started, so that cleanup stops them all whatever a test did. */
const everyProcess: ChildProcess[] = [];
let etcdCa: IssuedPem;
let apiClient: IssuedPem;
const pathsOf = (m: EtcdMember) => ({ dataDir: join(root, m.name, "data"), pkiDir: join(root, m.name, "pki") });

function write(path: string, content: string): string {
    writeFileSync(path, content, { mode: 0o600 });
    return path;
}

async function issueMemberPki(m: EtcdMember): Promise<void> {
    const { pkiDir } = pathsOf(m);
    mkdirSync(pkiDir, { recursive: true });
    write(join(pkiDir, "ca.crt"), etcdCa.certPem);
    for (const kind of ["server", "peer"] as const) {
        const cert = await issueFromSpec(etcdMemberCertSpec(kind, { hostname: `${m.name}.ec2.internal`, ip: m.ip }), etcdCa);
        write(join(pkiDir, `${kind}.crt`), cert.certPem);
        write(join(pkiDir, `${kind}.key`), cert.keyPem);
    }
}

function start(m: EtcdMember, state: "new" | "existing" = "new"): void {
    const child = spawn("etcd", etcdFlags(m, TOKEN, pathsOf(m)), {
        // As the systemd unit does, bootstrap flags come from the environment.
        env: { ...process.env, ETCD_INITIAL_CLUSTER: initialCluster(MEMBERS), ETCD_INITIAL_CLUSTER_STATE: state },
        // Each member logs to a file in the test's directory, for diagnosing a failure.
        stdio: ["ignore", "ignore", openSync(join(root, `${m.name}.log`), "a")],
    });
    processes.set(m.name, child);
    everyProcess.push(child);
}

async function stop(m: EtcdMember): Promise<void> {
    const child = processes.get(m.name);
    processes.delete(m.name);
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((done) => child.once("exit", done));
    child.kill("SIGKILL");
    await exited;
}

function etcdctl(client: { cert: string; key: string }, endpoints: EtcdMember[], args: string[], timeout = "3s") {
    return spawnSync(
        "etcdctl",
        [
            `--endpoints=${endpoints.map(clientUrl).join(",")}`,
            `--cacert=${join(pathsOf(MEMBERS[0]).pkiDir, "ca.crt")}`,
            `--cert=${client.cert}`,
            `--key=${client.key}`,
            `--dial-timeout=2s`,
            `--command-timeout=${timeout}`,
            ...args,
        ],
        { env: { ...process.env, ETCDCTL_API: "3" }, encoding: "utf8", timeout: 30_000 },
    );
}

let api: { cert: string; key: string };

/** Polls until `check` passes, at most `seconds`. */
async function eventually(what: string, seconds: number, check: () => boolean): Promise<number> {
    const started = Date.now();
    while (!check()) {
        if (Date.now() - started > seconds * 1000) throw new Error(`${what} did not happen within ${seconds}s`);
        await new Promise((r) => setTimeout(r, 200));
    }
    return (Date.now() - started) / 1000;
}

const healthy = (members: EtcdMember[]) => etcdctl(api, members, ["endpoint", "health"]).status === 0;

beforeAll(async () => {
    console.log(`etcd test directory: ${root}`);
    requireTool("etcd", "etcd-server");
    requireTool("etcdctl", "etcd-client");
    for (const m of MEMBERS) {
        const busy = spawnSync("sh", ["-c", `ss -ltn | grep -q '${m.ip}:2379 \\|${m.ip}:2380 '`]).status === 0;
        if (busy) throw new Error(`${m.ip}:2379/2380 is in use; stop the process listening there`);
    }
    etcdCa = await issueFromSpec(CA_SPECS.etcd);
    apiClient = await issueFromSpec(APISERVER_ETCD_CLIENT_SPEC, etcdCa);
    api = { cert: write(join(root, "apiserver-etcd-client.crt"), apiClient.certPem), key: write(join(root, "apiserver-etcd-client.key"), apiClient.keyPem) };
    await Promise.all(MEMBERS.map(issueMemberPki));
    MEMBERS.forEach((m) => start(m));
    await eventually("a healthy three-member cluster", 60, () => healthy(MEMBERS));
});

afterAll(async () => {
    await Promise.all(MEMBERS.map(stop));
    for (const child of everyProcess) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

describe("external etcd from the rendered flags", () => {
    const figures: Record<string, number | string> = { members: MEMBERS.length, "failures tolerated": (MEMBERS.length - 1) / 2 };
    afterAll(() => {
        console.log(
            Object.entries(figures)
                .map(([k, v]) => `${k.padEnd(28)} ${v}`)
                .join("\n"),
        );
    });

    it("forms one cluster of every member, reachable with the apiserver-etcd-client certificate", () => {
        const health = etcdctl(api, [MEMBERS[0]], ["endpoint", "health", "--cluster"]);
        expect(health.status).toBe(0);
        // etcdctl reports endpoint health on stderr.
        expect((health.stdout + health.stderr).match(/is healthy/g)).toHaveLength(3);
        const list = etcdctl(api, [MEMBERS[0]], ["member", "list"]).stdout;
        for (const m of MEMBERS) expect(list).toContain(`${m.name}, https://${m.ip}:2380, https://${m.ip}:2379`);
    });

    it("keeps reading and writing with one member down, and loses writes with two down", async () => {
        for (let i = 0; i < KEYS; i++) expect(etcdctl(api, MEMBERS, ["put", `/drill/${i}`, `value-${i}`]).status).toBe(0);
        figures["keys written"] = KEYS;

        // Stop the leader: the worst single failure, since the survivors must elect a new one.
        const leader = MEMBERS.find((m) => /, true,/.test(etcdctl(api, [m], ["endpoint", "status"]).stdout))!;
        await stop(leader);
        const survivors = MEMBERS.filter((m) => m !== leader);
        figures["leader stopped"] = leader.name;
        figures["writes back after (s)"] = (
            await eventually("a write with one member down", 20, () => etcdctl(api, survivors, ["put", "/drill/one-down", "ok"]).status === 0)
        ).toFixed(1);
        expect(etcdctl(api, survivors, ["get", "/drill/one-down", "--print-value-only"]).stdout.trim()).toBe("ok");
        expect(etcdctl(api, survivors, ["get", "/drill/0", "--print-value-only"]).stdout.trim()).toBe("value-0");

        await stop(survivors[1]);
        const started = Date.now();
        const lost = etcdctl(api, [survivors[0]], ["put", "/drill/two-down", "lost"], "3s");
        figures["write failure detected (s)"] = ((Date.now() - started) / 1000).toFixed(1);
        expect(lost.status).not.toBe(0);
        expect(Date.now() - started).toBeLessThan(15_000);
    });

    it("recovers every key once the two members return", async () => {
        MEMBERS.filter((m) => !processes.has(m.name)).forEach((m) => start(m));
        figures["recovery (s)"] = (await eventually("recovery", 60, () => healthy(MEMBERS))).toFixed(1);
        const keys = etcdctl(api, MEMBERS, ["get", "/drill/", "--prefix", "--keys-only"])
            .stdout.split("\n")
            .filter((k) => /^\/drill\/\d+$/.test(k));
        figures["keys recovered"] = keys.length;
        expect(keys).toHaveLength(KEYS);
        expect(etcdctl(api, MEMBERS, ["get", "/drill/one-down", "--print-value-only"]).stdout.trim()).toBe("ok");
    });

    it("backs up with the program the nodes run, keeps the newest snapshots, and restores from one", async () => {
        const backups = join(root, "backups");
        const env = {
            ...process.env,
            ...backupEnvironment(
                { mode: "binary", endpoint: clientUrl(MEMBERS[0]), cacert: join(pathsOf(MEMBERS[0]).pkiDir, "ca.crt"), cert: api.cert, key: api.key },
                2,
                backups,
            ),
            ETCD_CLIENT_BIN: "etcdctl",
        };
        const program = renderEtcdBackupProgram();
        for (let i = 0; i < 3; i++) {
            const result = spawnSync("bash", ["-c", program], { env, encoding: "utf8", timeout: 60_000 });
            expect([result.status, result.stdout]).toEqual([0, expect.stringMatching(/^etcd snapshot .+ \(\d+ bytes\); keeping 2\n$/)]);
            expect(result.stderr).not.toMatch(/unrecognized environment variable/);
            // Snapshot names carry the second they were taken.
            await new Promise((r) => setTimeout(r, 1100));
        }
        const snapshots = readdirSync(backups).sort();
        expect(snapshots).toHaveLength(2);
        const latest = join(backups, snapshots[1]);
        expect(spawnSync("etcdctl", ["snapshot", "status", latest], { env: { ...process.env, ETCDCTL_API: "3" }, encoding: "utf8" }).status).toBe(0);

        // Restore into a lone member on 127.0.0.4, over plain HTTP, and read a key written before.
        const restored: EtcdMember = { name: "restored", ip: "127.0.0.4" };
        const dataDir = join(root, "restored");
        const restore = spawnSync(
            "etcdctl",
            [
                "snapshot",
                "restore",
                latest,
                `--data-dir=${dataDir}`,
                `--name=${restored.name}`,
                `--initial-cluster=${restored.name}=http://127.0.0.4:2380`,
                "--initial-advertise-peer-urls=http://127.0.0.4:2380",
            ],
            { env: { ...process.env, ETCDCTL_API: "3" }, encoding: "utf8" },
        );
        expect(restore.status).toBe(0);
        const child = spawn(
            "etcd",
            [
                `--name=${restored.name}`,
                `--data-dir=${dataDir}`,
                "--listen-client-urls=http://127.0.0.4:2379",
                "--advertise-client-urls=http://127.0.0.4:2379",
                "--listen-peer-urls=http://127.0.0.4:2380",
            ],
            {
                stdio: ["ignore", "ignore", openSync(join(root, "restored.log"), "a")],
            },
        );
        everyProcess.push(child);
        const get = () =>
            spawnSync("etcdctl", ["--endpoints=http://127.0.0.4:2379", "--command-timeout=2s", "get", "/drill/7", "--print-value-only"], {
                env: { ...process.env, ETCDCTL_API: "3" },
                encoding: "utf8",
            });
        await eventually("the restored member to serve", 30, () => get().stdout.trim() === "value-7");
        figures["snapshots kept"] = snapshots.length;
        figures["restored from"] = snapshots[1];
        child.kill("SIGKILL");
    });

    it("refuses a client certificate from another CA", async () => {
        const clusterCa = await issueFromSpec(CA_SPECS.cluster);
        const stranger = await issueFromSpec(ADMIN_CERT_SPEC, clusterCa);
        const client = { cert: write(join(root, "stranger.crt"), stranger.certPem), key: write(join(root, "stranger.key"), stranger.keyPem) };
        const result = etcdctl(client, [MEMBERS[0]], ["get", "/drill/0"]);
        expect(result.status).not.toBe(0);
        expect(etcdctl(api, [MEMBERS[0]], ["get", "/drill/0", "--print-value-only"]).stdout.trim()).toBe("value-0");
    });

    it("refuses a peer certificate without clientAuth on the peer port", async () => {
        const serverOnly: CertSpec = {
            ...etcdMemberCertSpec("peer", { hostname: "intruder", ip: "127.0.0.1" }),
            allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
        };
        const good = join(pathsOf(MEMBERS[0]).pkiDir, "peer");
        const bad = await issueFromSpec(serverOnly, etcdCa);
        const badCert = write(join(root, "server-only.crt"), bad.certPem);
        const badKey = write(join(root, "server-only.key"), bad.keyPem);
        const ca = join(pathsOf(MEMBERS[0]).pkiDir, "ca.crt");
        const peerVersion = (cert: string, key: string) =>
            spawnSync(
                "curl",
                [
                    "--http1.1",
                    "--silent",
                    "--show-error",
                    "--max-time",
                    "5",
                    "--cacert",
                    ca,
                    "--cert",
                    cert,
                    "--key",
                    key,
                    `https://${MEMBERS[0].ip}:2380/version`,
                ],
                { encoding: "utf8" },
            );
        const accepted = peerVersion(`${good}.crt`, `${good}.key`);
        expect([accepted.stdout, accepted.stderr]).toEqual([expect.stringMatching(/etcdserver/), ""]);
        const refused = peerVersion(badCert, badKey);
        expect(refused.status).not.toBe(0);
        expect(refused.stdout).not.toMatch(/etcdserver/);
    });
});

export {};
