/**
 * Benchmark of off-node etcd backups with real parts (tools/backup-lab.ts): for N keys of 1 KiB in a
 * real three-member etcd cluster, the snapshot's size, how long the program's "now" mode takes to
 * snapshot, check and upload it (to s3rver, each request SigV4-verified), and how long the program's
 * restore step takes to bring a fresh three-member cluster back from it (download, SHA-256 check,
 * etcdutl restore on each member in parallel, then until the cluster is healthy and every key reads
 * back).
 *
 *   npm run bench:backup [-- --keys 1000,10000,50000]
 *
 * Figures, not assertions: it prints a table and exits 0 (1 if a step fails). It uses 127.0.5.1-3 and
 * 127.0.6.1-3 (ports 2379/2380), apart from the test suite's addresses.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { backupEnvironment } from "../core/backup";
import { snapshotPrefix } from "../core/backup-iam";
import { parseBackupInterval } from "../core/backup-settings";
import { clientUrl, EtcdMember } from "../core/etcd";
import { renderEtcdBackupProgram, renderStepScript } from "../core/scripts";
import {
    EtcdLabCluster,
    eventually,
    LAB_REGION,
    labPki,
    labRestoreHost,
    labRestoreParams,
    runProcess,
    startImds,
    startS3,
    writeEtcdutlShim,
} from "./backup-lab";

const SOURCE: EtcdMember[] = [1, 2, 3].map((i) => ({ name: `bench-etcd-${i - 1}`, ip: `127.0.5.${i}` }));
const RESTORED: EtcdMember[] = [1, 2, 3].map((i) => ({ name: `bench-restored-${i - 1}`, ip: `127.0.6.${i}` }));
const BUCKET = "kubeadm-ha-bench-backups";
const VALUE_BYTES = 1024;

const seconds = (since: bigint) => (Number(process.hrtime.bigint() - since) / 1e9).toFixed(2);

async function main(): Promise<void> {
    const { values } = parseArgs({ options: { keys: { type: "string", default: "1000,10000,50000" } } });
    const counts = values.keys!.split(",").map(Number);
    const root = mkdtempSync(join(tmpdir(), "kubeadm-ha-bench-backup-"));
    const interval = parseBackupInterval("15m");
    if ("error" in interval) throw new Error(interval.error);
    const { ca, client } = await labPki(join(root, "pki"));
    const source = new EtcdLabCluster(join(root, "source"), SOURCE, ca, client, "bench-etcd");
    source.checkPortsFree();
    await source.issueCertificates();
    source.start();
    const [s3, imds] = await Promise.all([startS3(join(root, "s3"), BUCKET), startImds()]);
    const etcdutl = writeEtcdutlShim(join(root, "bin"));
    const program = join(root, "kubeadm-ha-etcd-backup");
    writeFileSync(program, renderEtcdBackupProgram(), { mode: 0o755 });
    const testEndpoints = { KUBEADM_HA_TEST_IMDS: imds.url, KUBEADM_HA_TEST_S3: s3.url, ETCDUTL_BIN: etcdutl, PATH: process.env.PATH };
    const rows: string[][] = [["keys", "snapshot MiB", "snapshot+check+upload s", "restore (3 members) s", "restored to healthy s", "keys read back"]];
    try {
        await eventually("a healthy source cluster", 60, () => source.healthy());
        let written = 0;
        for (const count of counts) {
            const value = "v".repeat(VALUE_BYTES);
            const batch: [string, string][] = [];
            for (; written < count; written++) batch.push([`/bench/${String(written).padStart(8, "0")}`, value]);
            source.writeAll(batch);

            const leader = source.leader() ?? SOURCE[0];
            const target = { mode: "binary" as const, endpoint: clientUrl(leader), cacert: client.cacert, cert: client.cert, key: client.key };
            const offsite = { bucket: BUCKET, prefix: snapshotPrefix("bench"), region: LAB_REGION, interval: interval.value, memberName: leader.name };
            const started = process.hrtime.bigint();
            const upload = await runProcess("bash", [program, "now"], {
                ...backupEnvironment(target, 1, join(root, "backups"), offsite),
                METRICS_DIR: join(root, "metrics"),
                ETCD_CLIENT_BIN: "etcdctl",
                ...testEndpoints,
            });
            const uploadSeconds = seconds(started);
            if (upload.status !== 0) throw new Error(`upload failed: ${upload.stderr}`);
            const [, key, bytes] = /^uploaded s3:\/\/[^/]+\/(\S+) \((\d+) bytes/.exec(upload.stdout)!;

            const restored = new EtcdLabCluster(join(root, `restored-${count}`), RESTORED, ca, client, "unused");
            restored.checkPortsFree();
            await restored.issueCertificates();
            const object = { bucket: BUCKET, key };
            const restoreStarted = process.hrtime.bigint();
            const results = await Promise.all(
                RESTORED.map((m) => {
                    const dataDir = restored.paths(m).dataDir;
                    const host = labRestoreHost(dataDir);
                    const params = { ...labRestoreParams(m, RESTORED, object, "bench", dataDir), BACKUP_PROGRAM: renderEtcdBackupProgram() };
                    const script = join(host, "etcd-restore.sh");
                    writeFileSync(script, renderStepScript("etcd-restore", params));
                    return runProcess("bash", [script], { ...testEndpoints, KUBEADM_HA_ROOT: host });
                }),
            );
            const restoreSeconds = seconds(restoreStarted);
            const failed = results.find((r) => r.status !== 0);
            if (failed) throw new Error(`restore failed: ${failed.stderr}`);
            restored.start();
            try {
                await eventually("the restored cluster to be healthy", 120, () => restored.healthy());
                const healthySeconds = seconds(restoreStarted);
                const readBack = restored.etcdctl(["get", "/bench/", "--prefix", "--keys-only", "--limit=1", "-w", "fields"]).stdout;
                rows.push([
                    String(count),
                    (Number(bytes) / 1048576).toFixed(1),
                    uploadSeconds,
                    restoreSeconds,
                    healthySeconds,
                    /"Count" : (\d+)/.exec(readBack)?.[1] ?? "?",
                ]);
            } finally {
                await restored.stop();
                rmSync(restored.root, { recursive: true, force: true });
            }
        }
    } finally {
        await source.stop();
        await Promise.all([s3.close(), imds.close()]);
        rmSync(root, { recursive: true, force: true });
    }
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c])).join(" | ")} |`;
    console.log(
        `kubeadm-ha backup benchmark on ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, Node.js ${process.version}; values of ${VALUE_BYTES} bytes`,
    );
    console.log(line(rows[0]));
    console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
    rows.slice(1).forEach((r) => console.log(line(r)));
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
