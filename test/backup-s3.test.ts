/**
 * Off-node etcd backups, proven with real parts: a real three-member etcd cluster (127.0.2.1-3) holds
 * known keys; the program's own backup program, as rendered, uploads a snapshot of it through curl's
 * SigV4 signing with IMDSv2 credentials to s3rver (behind a front that verifies every signature, as
 * S3 does); the program's own restore step, as rendered, restores that snapshot into a fresh
 * three-member cluster (127.0.3.1-3), where every key is read back with its value; a corrupted copy
 * is refused by its checksum. Other loopback addresses than test/etcd.test.ts's, so both can run at
 * once. Figures (sizes, times) come from `npm run bench:backup`, not from here.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { monitoringChart } from "../core/addons";
import { backupEnvironment, etcdRestoreParams, METRICS_DIR, OffsiteMember, SNAPSHOT_NOW_SERVICE, UPLOAD_SERVICE, uploadTimer } from "../core/backup";
import { snapshotPrefix } from "../core/backup-iam";
import { parseBackupInterval, S3Object } from "../core/backup-settings";
import { clientUrl, EtcdMember, RESTORE_REVISION_BUMP } from "../core/etcd";
import { ETCD_SNAPSHOT_NOW, renderEtcdBackupInstall, renderEtcdBackupProgram, renderEtcdRestore, renderStepScript, shellQuote } from "../core/scripts";
import { externalBackupTarget, STACKED_BACKUP_TARGET } from "../core/backup";
import {
    ClientIdentity,
    direct,
    EtcdLabCluster,
    eventually,
    Imds,
    LAB_CREDENTIALS,
    LAB_REGION,
    labPki,
    labEtcdVersion,
    labRestoreHost,
    labRestoreParams,
    LabS3,
    sigV4Problem,
    startImds,
    runProcess,
    startS3,
    writeEtcdutlShim,
} from "../tools/backup-lab";
import { requireTool, shellcheck, tempDir, writeTemp } from "./tools";

jest.setTimeout(180_000);

const CLUSTER = "kubeadm-ha";
const BUCKET = "kubeadm-ha-etcd-backups";
const SOURCE: EtcdMember[] = [1, 2, 3].map((i) => ({ name: `kubeadm-ha-etcd-${i - 1}`, ip: `127.0.2.${i}` }));
const RESTORED: EtcdMember[] = [1, 2, 3].map((i) => ({ name: `restored-etcd-${i - 1}`, ip: `127.0.3.${i}` }));
const KEYS = 300;
const interval = parseBackupInterval("15m");
if ("error" in interval) throw new Error(interval.error);
const OFFSITE = { bucket: BUCKET, prefix: snapshotPrefix(CLUSTER), region: LAB_REGION, interval: interval.value };

const root = tempDir("backup-s3");
const written = new Map<string, string>();
let source: EtcdLabCluster;
let restored: EtcdLabCluster;
let client: ClientIdentity;
let s3: LabS3;
let imds: Imds;
let etcdutl: string;
let program: string;
let uploaded: S3Object;

const memberDir = (m: EtcdMember, what: string) => join(root, "nodes", m.name, what);

/** The backup program as a node runs it: its settings file's variables, plus the test's endpoints. */
function backup(m: EtcdMember, mode: "upload" | "now") {
    const offsite: OffsiteMember = { ...OFFSITE, memberName: m.name };
    const target = { mode: "binary" as const, endpoint: clientUrl(m), cacert: client.cacert, cert: client.cert, key: client.key };
    return runProcess("bash", [program, mode], {
        PATH: process.env.PATH,
        ...backupEnvironment(target, 2, memberDir(m, "backups"), offsite),
        METRICS_DIR: memberDir(m, "textfile_collector"),
        ETCD_CLIENT_BIN: "etcdctl",
        ETCDUTL_BIN: etcdutl,
        KUBEADM_HA_TEST_IMDS: imds.url,
        KUBEADM_HA_TEST_S3: s3.url,
    });
}

/** The script inside the restore step's remote command line, exactly as rendered. */
function restoreScript(params: Record<string, string>): string {
    const command = renderEtcdRestore(params);
    const match = /<<'KUBEADM_HA_STEP_EOF'\n([\s\S]*)KUBEADM_HA_STEP_EOF\nsudo bash "\$step_script"\n$/.exec(command);
    if (!match) throw new Error("the restore command line does not carry a script");
    return match[1];
}

/**
 * Runs the rendered restore step for `m`, a member of RESTORED, from `object`, with its data in
 * `dataDir`, on a host whose root is `dataDir`'s parent (the lab's etcdutl where a member's is).
 */
function restore(m: EtcdMember, object: S3Object, dataDir: string) {
    const host = labRestoreHost(dataDir);
    const params = labRestoreParams(m, RESTORED, object, CLUSTER, dataDir);
    const script = writeTemp(host, "etcd-restore.sh", restoreScript(params));
    return runProcess("bash", [script], {
        PATH: process.env.PATH,
        KUBEADM_HA_TEST_IMDS: imds.url,
        KUBEADM_HA_TEST_S3: s3.url,
        KUBEADM_HA_ROOT: host,
    });
}

beforeAll(async () => {
    console.log(`backup test directory: ${root}`);
    for (const [tool, pkg] of [
        ["etcd", "etcd-server"],
        ["etcdctl", "etcd-client"],
        ["curl", "curl"],
        ["openssl", "openssl"],
        ["promtool", "prometheus"],
        ["flock", "util-linux"],
    ]) {
        requireTool(tool, pkg);
    }
    const pki = await labPki(join(root, "pki"));
    client = pki.client;
    source = new EtcdLabCluster(join(root, "source"), SOURCE, pki.ca, client, `${CLUSTER}-etcd`);
    restored = new EtcdLabCluster(join(root, "restored"), RESTORED, pki.ca, client, "unused");
    source.checkPortsFree();
    restored.checkPortsFree();
    await source.issueCertificates();
    await restored.issueCertificates();
    source.start();
    await eventually("a healthy source cluster", 60, () => source.healthy());
    for (let i = 0; i < KEYS; i++) written.set(`/lab/${String(i).padStart(4, "0")}`, createHash("sha256").update(`value ${i}`).digest("hex"));
    source.writeAll([...written]);
    [s3, imds] = await Promise.all([startS3(join(root, "s3"), BUCKET), startImds()]);
    etcdutl = writeEtcdutlShim(join(root, "bin"));
    program = writeTemp(root, "kubeadm-ha-etcd-backup", renderEtcdBackupProgram());
});

afterAll(async () => {
    await Promise.all([source?.stop(), restored?.stop()]);
    await Promise.all([s3?.close(), imds?.close()]);
});

describe("etcd snapshots uploaded to S3", () => {
    it("are taken by the etcd leader alone when every member's timer fires", async () => {
        const leader = source.leader()!;
        expect(leader).toBeDefined();
        const runs = await Promise.all(SOURCE.map((m) => backup(m, "upload")));
        for (const [i, m] of SOURCE.entries()) {
            expect([m.name, runs[i].status, runs[i].stderr]).toEqual([m.name, 0, ""]);
            expect(runs[i].stdout).toMatch(
                m === leader
                    ? /^uploaded s3:\/\/\S+ \(\d+ bytes, sha256 [0-9a-f]{64}, etcd \d+\.\d+\.\d+, revision \d+, \d+ keys\) in [\d.]+s\n$/
                    : /is not the leader; the leader uploads\n$/,
            );
        }
        const key = /^uploaded s3:\/\/[^/]+\/(\S+) /.exec(runs[SOURCE.indexOf(leader)].stdout)![1];
        expect(key).toMatch(new RegExp(`^kubeadm-ha/etcd/\\d{8}T\\d{6}Z-${leader.name}\\.db$`));
        uploaded = { bucket: BUCKET, key };

        // What S3 holds: the snapshot, with its SHA-256 and the release of the etcd that wrote it as metadata.
        const object = await direct(s3, "GET", key);
        expect(object.status).toBe(200);
        expect(object.headers["x-amz-meta-sha256"]).toBe(createHash("sha256").update(object.body).digest("hex"));
        expect(object.headers["x-amz-meta-etcd-version"]).toBe(labEtcdVersion());
        expect(runs[SOURCE.indexOf(leader)].stdout).toContain(`sha256 ${object.headers["x-amz-meta-sha256"]}`);
    });

    it("sign every request with the instance role's IMDSv2 credentials, and send the checksum S3 verifies", () => {
        const puts = s3.log.filter((r) => r.method === "PUT");
        expect(puts).toHaveLength(1);
        expect(puts[0]).toEqual({
            method: "PUT",
            path: `/${BUCKET}/${uploaded.key}`,
            status: 200,
            signedHeaders: expect.arrayContaining([
                "host",
                "x-amz-date",
                "x-amz-content-sha256",
                "x-amz-checksum-sha256",
                "x-amz-meta-sha256",
                "x-amz-meta-etcd-version",
                "x-amz-security-token",
                "x-amz-server-side-encryption",
            ]),
        });
        // IMDSv2 only: a token first, never a metadata read without one.
        expect(imds.requests.filter((r) => r.path.startsWith("/latest/meta-data/") && !r.token)).toEqual([]);
        expect(imds.requests[0]).toEqual({ method: "PUT", path: "/latest/api/token", token: false });
    });

    it("export the last success for the node exporter's textfile collector, in a format promtool accepts", () => {
        const leader = SOURCE.find((m) => existsSync(join(memberDir(m, "backups"), ".last-upload")))!;
        const metrics = readFileSync(join(memberDir(leader, "textfile_collector"), "kubeadm_ha_etcd_backup.prom"), "utf8");
        const lint = spawnSync("promtool", ["check", "metrics"], { input: metrics, encoding: "utf8" });
        expect([lint.status, lint.stdout + lint.stderr]).toEqual([0, ""]);
        const at = Number(/^kubeadm_ha_etcd_backup_last_success_timestamp_seconds (\d+)$/m.exec(metrics)![1]);
        expect(Math.abs(at - Date.now() / 1000)).toBeLessThan(120);
        expect(metrics).toMatch(/^kubeadm_ha_etcd_backup_interval_seconds 900$/m);
        // A follower exports the interval, and no success of its own.
        const follower = SOURCE.find((m) => m !== leader)!;
        expect(readFileSync(join(memberDir(follower, "textfile_collector"), "kubeadm_ha_etcd_backup.prom"), "utf8")).not.toContain("last_success");
        // On the nodes, the file goes where the monitoring stack's node exporter reads (the host's root at /host/root).
        expect(backupEnvironment(STACKED_BACKUP_TARGET, 48, undefined, { ...OFFSITE, memberName: "cp-0" }).METRICS_DIR).toBe(METRICS_DIR);
        expect((monitoringChart("stacked").values["prometheus-node-exporter"] as { extraArgs: string[] }).extraArgs).toContain(
            `--collector.textfile.directory=/host/root${METRICS_DIR}`,
        );
    });

    it("leave the hourly local snapshots as they were: the newest RETENTION kept, nothing else beside them", async () => {
        const m = SOURCE[0];
        const dir = memberDir(m, "local");
        const target = { mode: "binary" as const, endpoint: clientUrl(m), cacert: client.cacert, cert: client.cert, key: client.key };
        for (let i = 0; i < 3; i++) {
            const second = Math.floor(Date.now() / 1000);
            const result = await runProcess("bash", [program], { PATH: process.env.PATH, ...backupEnvironment(target, 2, dir), ETCD_CLIENT_BIN: "etcdctl" });
            expect([result.status, result.stdout, result.stderr]).toEqual([0, expect.stringMatching(/^etcd snapshot .+ \(\d+ bytes\); keeping 2\n$/), ""]);
            // Snapshot names carry the second they were taken.
            await eventually("the next second", 2, () => Math.floor(Date.now() / 1000) > second);
        }
        const files = readdirSync(dir);
        expect([files.length, files.every((f) => /^etcd-.+-\d{8}T\d{6}Z\.db$/.test(f))]).toEqual([2, true]);
    });

    it("snapshot now: uploads from a follower, and fails when the upload is refused", async () => {
        const leader = source.leader()!;
        const follower = SOURCE.find((m) => m !== leader)!;
        const now = await backup(follower, "now");
        expect([now.status, now.stderr]).toEqual([0, ""]);
        expect(now.stdout).toMatch(new RegExp(`^uploaded s3://${BUCKET}/kubeadm-ha/etcd/\\d{8}T\\d{6}Z-${follower.name}\\.db `));

        const lastUpload = join(memberDir(follower, "backups"), ".last-upload");
        const before = readFileSync(lastUpload, "utf8");
        const good = imds.credentials;
        imds.credentials = { ...good, AccessKeyId: "AKIAIOSFODNN7EXAMPLE" };
        try {
            const refused = await backup(follower, "now");
            expect(refused.status).toBe(1);
            expect(refused.stderr).toMatch(/S3 answered HTTP 403/);
            expect(refused.stderr).toMatch(/the upload of s3:\/\/kubeadm-ha-etcd-backups\/kubeadm-ha\/etcd\/\S+ failed/);
            expect(readFileSync(lastUpload, "utf8")).toBe(before);
        } finally {
            imds.credentials = good;
        }
        // No temporary snapshot is left behind, whatever happened.
        expect(readdirSync(memberDir(follower, "backups")).filter((f) => f.startsWith(".upload."))).toEqual([]);
    });
});

describe("a new cluster restored from the uploaded snapshot", () => {
    it("holds every key with its value, as a new cluster of new members on other addresses", async () => {
        // Written after the snapshot: a restore is the snapshot's point in time.
        expect(source.etcdctl(["put", "/lab/after-backup", "not in the snapshot"]).status).toBe(0);
        const sourceCluster = source.clusterId();
        await source.stop();

        const results = await Promise.all(RESTORED.map((m) => restore(m, uploaded, restored.paths(m).dataDir)));
        for (const [i, m] of RESTORED.entries()) {
            expect([m.name, results[i].status, results[i].stderr]).toEqual([m.name, 0, ""]);
            expect(results[i].stdout).toMatch(
                new RegExp(
                    `restored ${m.name} from s3://${BUCKET}/${uploaded.key} \\(sha256 [0-9a-f]{64}, revision \\d+, \\d+ keys, written by etcd ${labEtcdVersion()}\\) ` +
                        `into \\S+ with etcdutl ${labEtcdVersion()} for etcd ${labEtcdVersion()}; revisions moved on by ${RESTORE_REVISION_BUMP} and compacted`,
                ),
            );
            // The revision bump and the compaction, as etcdutl was asked (the lab's etcd 3.4 takes neither: its shim checks and drops them).
            const asked = readFileSync(join(restored.paths(m).dataDir, "..", "usr/local/bin/etcdutl.log"), "utf8");
            expect(asked).toMatch(new RegExp(`^snapshot restore .* --bump-revision ${RESTORE_REVISION_BUMP} --mark-compacted$`, "m"));
        }
        restored.start();
        await eventually("the restored cluster to be healthy", 60, () => restored.healthy());

        const read = restored.read("/lab/");
        expect(read.size).toBe(written.size);
        expect([...read].filter(([k, v]) => written.get(k) !== v)).toEqual([]);
        expect(read.has("/lab/after-backup")).toBe(false);
        expect(restored.clusterId()).not.toBe(sourceCluster);
        const members = restored.etcdctl(["member", "list"]).stdout;
        for (const m of RESTORED) expect(members).toContain(`${m.name}, https://${m.ip}:2380, https://${m.ip}:2379`);
        expect(members).not.toMatch(/127\.0\.2\./);
        // It takes writes: a cluster, not a read-only copy.
        expect(restored.etcdctl(["put", "/lab/after-restore", "ok"]).status).toBe(0);
    });

    it("is not restored again over live data when the step runs again", async () => {
        const again = await restore(RESTORED[0], uploaded, restored.paths(RESTORED[0]).dataDir);
        expect([again.status, again.stdout]).toEqual([0, expect.stringContaining("already holds etcd data; not restoring")]);
        expect(restored.read("/lab/after-restore").get("/lab/after-restore")).toBe("ok");
    });

    it("refuses a corrupted snapshot by its checksum, and one without a checksum", async () => {
        const original = await direct(s3, "GET", uploaded.key);
        const corrupted = Buffer.from(original.body);
        corrupted[Math.floor(corrupted.length / 2)] ^= 0xff;
        const stored = String(original.headers["x-amz-meta-sha256"]);
        const corruptKey = `${OFFSITE.prefix}/corrupted.db`;
        expect((await direct(s3, "PUT", corruptKey, corrupted, { "x-amz-meta-sha256": stored })).status).toBe(200);
        const target = join(root, "refused", "corrupted", "data");
        mkdirSync(join(target, ".."), { recursive: true });
        const refused = await restore(RESTORED[0], { bucket: BUCKET, key: corruptKey }, target);
        expect(refused.status).not.toBe(0);
        expect(refused.stderr).toContain(
            `s3://${BUCKET}/${corruptKey} does not match its SHA-256 (stored ${stored}, downloaded ${createHash("sha256").update(corrupted).digest("hex")}); refusing to restore it`,
        );
        expect(existsSync(join(target, "member"))).toBe(false);

        const bareKey = `${OFFSITE.prefix}/no-checksum.db`;
        expect((await direct(s3, "PUT", bareKey, original.body)).status).toBe(200);
        const bare = join(root, "refused", "bare", "data");
        mkdirSync(join(bare, ".."), { recursive: true });
        const unverifiable = await restore(RESTORED[0], { bucket: BUCKET, key: bareKey }, bare);
        expect(unverifiable.status).not.toBe(0);
        expect(unverifiable.stderr).toContain("carries no SHA-256 (x-amz-meta-sha256); refusing to restore an unverifiable snapshot");
        expect(existsSync(join(bare, "member"))).toBe(false);
    });

    it("refuses a snapshot another etcd minor than the cluster's wrote, before etcdutl restores anything", async () => {
        const original = await direct(s3, "GET", uploaded.key);
        const [major, minor] = labEtcdVersion().split(".").map(Number);
        const other = `${major}.${minor + 1}.0`;
        const otherKey = `${OFFSITE.prefix}/other-minor.db`;
        const metadata = { "x-amz-meta-sha256": String(original.headers["x-amz-meta-sha256"]), "x-amz-meta-etcd-version": other };
        expect((await direct(s3, "PUT", otherKey, original.body, metadata)).status).toBe(200);
        const target = join(root, "refused", "other-minor", "data");
        mkdirSync(join(target, ".."), { recursive: true });
        const refused = await restore(RESTORED[0], { bucket: BUCKET, key: otherKey }, target);
        expect(refused.status).not.toBe(0);
        expect(refused.stderr).toContain(
            `s3://${BUCKET}/${otherKey} was written by etcd ${other}, and this cluster runs etcd ${labEtcdVersion()}: etcd restores a snapshot only with the etcdutl of the major.minor that wrote it`,
        );
        expect(existsSync(join(target, "member"))).toBe(false);
        expect(readFileSync(join(target, "..", "usr/local/bin/etcdutl.log"), "utf8")).not.toMatch(/^snapshot restore/m);
    });
});

describe("the test's S3 front", () => {
    // AWS's published SigV4 example for S3 (GET /test.txt from examplebucket, Range bytes=0-9).
    const example = {
        method: "GET",
        url: "/test.txt",
        headers: {
            host: "examplebucket.s3.amazonaws.com",
            range: "bytes=0-9",
            "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "x-amz-date": "20130524T000000Z",
            authorization:
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        },
    };
    const secret = (id: string) => (id === "AKIAIOSFODNN7EXAMPLE" ? "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" : undefined);

    it("verifies signatures as AWS's published example computes them, and refuses a tampered request", () => {
        expect(sigV4Problem(example, secret)).toBeUndefined();
        expect(sigV4Problem({ ...example, headers: { ...example.headers, range: "bytes=0-99" } }, secret)).toBe("SignatureDoesNotMatch");
        expect(sigV4Problem({ ...example, url: "/other.txt" }, secret)).toBe("SignatureDoesNotMatch");
        expect(sigV4Problem(example, () => "another secret")).toBe("SignatureDoesNotMatch");
    });

    it("refuses an unsigned request and one signed with another secret", async () => {
        const unsigned = await runProcess("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `${s3.url}/${BUCKET}/${uploaded.key}`], {
            PATH: process.env.PATH,
        });
        expect(unsigned.stdout).toBe("403");
        const forged = await runProcess(
            "curl",
            [
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--aws-sigv4",
                `aws:amz:${LAB_REGION}:s3`,
                "--user",
                `${LAB_CREDENTIALS.accessKeyId}:not-the-secret`,
                "-H",
                `x-amz-security-token: ${LAB_CREDENTIALS.sessionToken}`,
                "-H",
                "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                `${s3.url}/${BUCKET}/${uploaded.key}`,
            ],
            { PATH: process.env.PATH },
        );
        expect(forged.stdout).toBe("403");
    });
});

describe("rendered backup artefacts", () => {
    it("pass shellcheck: the install with uploads, the restore step, snapshot now", () => {
        const offsite: OffsiteMember = {
            ...OFFSITE,
            kmsKeyArn: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            memberName: "cp-0",
        };
        for (const target of [STACKED_BACKUP_TARGET, externalBackupTarget("10.0.0.110")]) {
            expect(shellcheck(`#!/bin/bash\n${renderEtcdBackupInstall(target, 48, offsite)}`)).toBe("");
        }
        const params = etcdRestoreParams({
            source: { bucket: BUCKET, key: "kubeadm-ha/etcd/x.db" },
            region: "us-east-1",
            member: RESTORED[0],
            members: RESTORED,
            clusterToken: "t",
            topology: "external",
        });
        // The program the step carries is a parameter, checked on its own (shellcheck would read its
        // quoted text as one string); the step's own code is checked here.
        expect(shellcheck(renderEtcdBackupProgram())).toBe("");
        expect(restoreScript(params)).toContain(`BACKUP_PROGRAM=${shellQuote(renderEtcdBackupProgram())}`);
        expect(shellcheck(renderStepScript("etcd-restore", { ...params, BACKUP_PROGRAM: "the program" }))).toBe("");
        expect(shellcheck(`#!/bin/bash\n${renderEtcdRestore(params)}`)).toBe("");
        expect(shellcheck(`#!/bin/bash\n${ETCD_SNAPSHOT_NOW}`)).toBe("");
    });

    it("the upload timer fires on wall-clock slots one interval apart, and its units verify", () => {
        requireTool("systemd-analyze", "systemd");
        for (const text of ["5m", "15m", "1h", "6h", "24h"]) {
            const parsed = parseBackupInterval(text);
            if ("error" in parsed) throw new Error(parsed.error);
            const calendar = spawnSync("systemd-analyze", ["calendar", "--iterations=3", parsed.value.onCalendar], {
                encoding: "utf8",
                env: { ...process.env, TZ: "UTC" },
            });
            const times = [...calendar.stdout.matchAll(/(?:Next elapse|Iter\. #\d): \w{3} (\S+ \S+) UTC/g)].map((m) =>
                Date.parse(`${m[1].replace(" ", "T")}Z`),
            );
            expect([text, times.length, times[1] - times[0], times[2] - times[1]]).toEqual([text, 3, parsed.value.seconds * 1000, parsed.value.seconds * 1000]);
        }
        const dir = tempDir("upload-units");
        const paths = [
            writeTemp(dir, "kubeadm-ha-etcd-upload.service", UPLOAD_SERVICE),
            writeTemp(dir, "kubeadm-ha-etcd-upload.timer", uploadTimer(OFFSITE.interval)),
            writeTemp(dir, "kubeadm-ha-etcd-snapshot-now.service", SNAPSHOT_NOW_SERVICE),
        ];
        const verify = spawnSync("systemd-analyze", ["verify", "--man=no", ...paths], { encoding: "utf8" });
        const findings = (verify.stdout + verify.stderr)
            .split("\n")
            .filter((l) => l.trim() !== "" && !/Command \/usr\/local\/s?bin\/\S+ is not executable/.test(l));
        expect(findings).toEqual([]);
    });
});
