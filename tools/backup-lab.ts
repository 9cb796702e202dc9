/**
 * Real parts to prove etcd backups without AWS, shared by the test suite (test/backup-s3.test.ts) and
 * the benchmark (tools/bench-backup.ts):
 *
 * - etcd clusters from Debian's etcd, started with the flags the program renders for its members
 *   (core/etcd.ts) and certificates issued from the program's own specs (core/pki.ts);
 * - s3rver, an S3-compatible server, behind a front that verifies every request's SigV4 signature
 *   (s3rver checks only that the access key exists), its payload hash, its checksum header and its
 *   session token, and refuses what real S3 would refuse;
 * - a fake EC2 instance metadata service that speaks IMDSv2 only (a token first, then role
 *   credentials), handing out s3rver's credentials.
 *
 * Debian ships etcd 3.4, which has no etcdutl; its etcdctl has the same `snapshot status` and
 * `snapshot restore` commands and flags, so the lab's `etcdutl` is a two-line wrapper around it.
 */
import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { chmodSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { createServer, IncomingMessage, request, Server, ServerResponse } from "node:http";
import { AddressInfo } from "node:net";
import { basename, join } from "node:path";
import { etcdRestoreParams, restoreClusterToken } from "../core/backup";
import { S3Object } from "../core/backup-settings";
import { clientUrl, etcdFlags, EtcdMember, initialCluster } from "../core/etcd";
import { CA_SPECS, CertSpec, ETCD_HEALTHCHECK_CLIENT_SPEC, etcdMemberCertSpec } from "../core/pki";
import { issueFromSpec, IssuedPem } from "./offline/tls";

/** A process run asynchronously: the fake IMDS and S3 front answer from the caller's own event loop. */
export function runProcess(
    command: string,
    args: string[],
    env: Record<string, string | undefined>,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (status) => resolve({ status, stdout, stderr }));
    });
}

/** The release of the lab's etcd (Debian's): "3.4.23" of `etcd --version`. */
export function labEtcdVersion(): string {
    const version = /etcd Version: (\S+)/.exec(spawnSync("etcd", ["--version"], { encoding: "utf8" }).stdout ?? "")?.[1];
    if (!version) throw new Error("etcd --version names no release");
    return version;
}

/**
 * The host a restore step runs on for a member whose data directory is `dataDir`: `dataDir`'s parent,
 * the step's KUBEADM_HA_ROOT, with the lab's etcdutl where an external member's is
 * (usr/local/bin/etcdutl). Returns the root.
 */
export function labRestoreHost(dataDir: string): string {
    const root = join(dataDir, "..");
    writeEtcdutlShim(join(root, "usr/local/bin"));
    return root;
}

/**
 * The restore step's parameters for `member` of a restored external cluster of `members`, with the
 * node's paths under the host root labRestoreHost(dataDir) makes, the cluster's etcd the lab's, and
 * the etcd user the lab's own.
 */
export function labRestoreParams(member: EtcdMember, members: EtcdMember[], object: S3Object, clusterName: string, dataDir: string): Record<string, string> {
    return {
        ...etcdRestoreParams({
            source: object,
            region: LAB_REGION,
            member,
            members,
            clusterToken: restoreClusterToken(clusterName, object),
            topology: "external",
        }),
        // Paths on the host, which the step puts under its root.
        DATA_DIR: `/${basename(dataDir)}`,
        DATA_OWNER: "",
        CLUSTER_ENV_FILE: "/cluster.env",
        CLUSTER_ETCD: labEtcdVersion(),
    };
}

/** s3rver's built-in account: the only credentials it accepts. */
export const LAB_CREDENTIALS = {
    role: "kubeadm-ha-etcd-backup",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    sessionToken: "IQoJb3JpZ2luX2VjEXAMPLE+session/token==",
};
export const LAB_REGION = "us-east-1";

/** Polls `check` every 100 ms until it passes; returns the seconds it took. */
export async function eventually(what: string, seconds: number, check: () => boolean | Promise<boolean>): Promise<number> {
    const started = Date.now();
    while (!(await check())) {
        if (Date.now() - started > seconds * 1000) throw new Error(`${what} did not happen within ${seconds}s`);
        await new Promise((r) => setTimeout(r, 100));
    }
    return (Date.now() - started) / 1000;
}

function write(path: string, content: string, mode = 0o600): string {
    writeFileSync(path, content, { mode });
    return path;
}

/**
 * `etcdutl` for Debian's etcd 3.4, which has none: its etcdctl takes the same snapshot commands and
 * flags, and `version` reports the release as etcdutl would. Debian's 3.4.23 predates
 * --bump-revision and --mark-compacted (etcdctl has them from 3.4.27): the shim checks them as etcdutl
 * does (both or neither, the bump positive) and drops them. Each call's arguments are appended to
 * `<shim>.log`, so a test can read what a restore asked for.
 */
export function writeEtcdutlShim(dir: string): string {
    mkdirSync(dir, { recursive: true });
    const shim = [
        "#!/usr/bin/env bash",
        "set -euo pipefail",
        'printf \'%s\\n\' "$*" >>"$0.log"',
        'if [ "${1:-}" = version ]; then',
        "  v=$(ETCDCTL_API=3 etcdctl version | sed -n 's/^etcdctl version: //p')",
        '  printf \'etcdutl version: %s\\nAPI version: %s\\n\' "$v" "${v%.*}"',
        "  exit 0",
        "fi",
        'args=() bump="" compacted=""',
        "while [ $# -gt 0 ]; do",
        "  case $1 in",
        "    --bump-revision) bump=$2; shift 2 ;;",
        "    --bump-revision=*) bump=${1#*=}; shift ;;",
        "    --mark-compacted) compacted=yes; shift ;;",
        '    *) args+=("$1"); shift ;;',
        "  esac",
        "done",
        'if [ -n "$bump$compacted" ] && ! [[ "$bump" =~ ^[1-9][0-9]*$ && -n "$compacted" ]]; then',
        "  echo 'Error: --mark-compacted required if --revision-bump > 0' >&2",
        "  exit 128",
        "fi",
        'ETCDCTL_API=3 exec etcdctl "${args[@]}"',
        "",
    ].join("\n");
    const path = write(join(dir, "etcdutl"), shim, 0o755);
    chmodSync(path, 0o755);
    return path;
}

export interface ClientIdentity {
    cacert: string;
    cert: string;
    key: string;
}

/** One etcd CA and the client identity the backups use (kubeadm's healthcheck-client). */
export async function labPki(dir: string): Promise<{ ca: IssuedPem; client: ClientIdentity }> {
    mkdirSync(dir, { recursive: true });
    const ca = await issueFromSpec(CA_SPECS.etcd);
    const client = await issueFromSpec(ETCD_HEALTHCHECK_CLIENT_SPEC as CertSpec, ca);
    return {
        ca,
        client: {
            cacert: write(join(dir, "ca.crt"), ca.certPem),
            cert: write(join(dir, "healthcheck-client.crt"), client.certPem),
            key: write(join(dir, "healthcheck-client.key"), client.keyPem),
        },
    };
}

/** A real etcd cluster of `members`, with mutual TLS on both ports, as the program configures members. */
export class EtcdLabCluster {
    private readonly processes = new Map<string, ChildProcess>();

    constructor(
        readonly root: string,
        readonly members: EtcdMember[],
        private readonly ca: IssuedPem,
        readonly client: ClientIdentity,
        readonly token: string,
    ) {}

    paths(m: EtcdMember) {
        return { dataDir: join(this.root, m.name, "data"), pkiDir: join(this.root, m.name, "pki") };
    }

    /** Fails when another process listens on a member's ports. */
    checkPortsFree(): void {
        for (const m of this.members) {
            if (spawnSync("sh", ["-c", `ss -ltn | grep -q '${m.ip}:2379 \\|${m.ip}:2380 '`]).status === 0) {
                throw new Error(`${m.ip}:2379/2380 is in use; stop the process listening there`);
            }
        }
    }

    async issueCertificates(): Promise<void> {
        for (const m of this.members) {
            const { pkiDir } = this.paths(m);
            mkdirSync(pkiDir, { recursive: true });
            write(join(pkiDir, "ca.crt"), this.ca.certPem);
            for (const kind of ["server", "peer"] as const) {
                const cert = await issueFromSpec(etcdMemberCertSpec(kind, { hostname: `${m.name}.ec2.internal`, ip: m.ip }), this.ca);
                write(join(pkiDir, `${kind}.crt`), cert.certPem);
                write(join(pkiDir, `${kind}.key`), cert.keyPem);
            }
        }
    }

    /** Starts every member, as the systemd unit does: static flags, bootstrap settings from the environment. */
    start(): void {
        for (const m of this.members) {
            const child = spawn("etcd", etcdFlags(m, this.token, this.paths(m)), {
                env: { ...process.env, ETCD_INITIAL_CLUSTER: initialCluster(this.members), ETCD_INITIAL_CLUSTER_STATE: "new" },
                stdio: ["ignore", "ignore", openSync(join(this.root, `${m.name}.log`), "a")],
            });
            this.processes.set(m.name, child);
        }
    }

    async stop(): Promise<void> {
        await Promise.all(
            [...this.processes.values()].map((child) => {
                if (child.exitCode !== null || child.signalCode !== null) return undefined;
                const exited = new Promise((done) => child.once("exit", done));
                child.kill("SIGKILL");
                return exited;
            }),
        );
        this.processes.clear();
    }

    etcdctl(args: string[], endpoints: EtcdMember[] = this.members): SpawnSyncReturns<string> {
        return spawnSync(
            "etcdctl",
            [
                `--endpoints=${endpoints.map(clientUrl).join(",")}`,
                `--cacert=${this.client.cacert}`,
                `--cert=${this.client.cert}`,
                `--key=${this.client.key}`,
                "--dial-timeout=2s",
                "--command-timeout=10s",
                ...args,
            ],
            { env: { ...process.env, ETCDCTL_API: "3" }, encoding: "utf8", timeout: 30_000, maxBuffer: 256 * 1024 * 1024 },
        );
    }

    healthy(): boolean {
        return this.etcdctl(["endpoint", "health"]).status === 0;
    }

    /** The member that leads the raft group, from each member's own status. */
    leader(): EtcdMember | undefined {
        return this.members.find((m) => {
            const fields = this.etcdctl(["endpoint", "status", "-w", "fields"], [m]).stdout;
            const id = /"MemberID" : (\d+)/.exec(fields)?.[1];
            return id !== undefined && id === /"Leader" : (\d+)/.exec(fields)?.[1];
        });
    }

    clusterId(): string | undefined {
        return /"ClusterID" : (\d+)/.exec(this.etcdctl(["endpoint", "status", "-w", "fields"], [this.members[0]]).stdout)?.[1];
    }

    /** Every key under `prefix` with its value. */
    read(prefix: string): Map<string, string> {
        const result = this.etcdctl(["get", prefix, "--prefix", "-w", "json"]);
        if (result.status !== 0) throw new Error(`etcdctl get failed: ${result.stderr}`);
        const kvs: { key: string; value: string }[] = JSON.parse(result.stdout).kvs ?? [];
        return new Map(kvs.map((kv) => [Buffer.from(kv.key, "base64").toString(), Buffer.from(kv.value, "base64").toString()]));
    }

    /** Writes `entries` in transactions of at most 100 puts (etcd's default limit of operations per txn). */
    writeAll(entries: [string, string][]): void {
        for (let i = 0; i < entries.length; i += 100) {
            // No comparisons (an empty line), the puts, an empty line, no failure requests.
            const txn =
                "\n" +
                entries
                    .slice(i, i + 100)
                    .map(([k, v]) => `put ${k} "${v}"`)
                    .join("\n") +
                "\n\n\n";
            const result = spawnSync(
                "etcdctl",
                [
                    `--endpoints=${this.members.map(clientUrl).join(",")}`,
                    `--cacert=${this.client.cacert}`,
                    `--cert=${this.client.cert}`,
                    `--key=${this.client.key}`,
                    "txn",
                ],
                { input: txn, env: { ...process.env, ETCDCTL_API: "3" }, encoding: "utf8" },
            );
            if (result.status !== 0 || !/SUCCESS/.test(result.stdout)) throw new Error(`etcdctl txn failed: ${result.stdout}${result.stderr}`);
        }
    }
}

// --- the fake instance metadata service (IMDSv2 only) -----------------------------------------------

export interface Imds {
    url: string;
    /** What the role's credentials document says; a test may swap it for a bad one. */
    credentials: { AccessKeyId: string; SecretAccessKey: string; Token: string };
    /** Every request: method, path and whether it carried a valid session token. */
    requests: { method: string; path: string; token: boolean }[];
    close(): Promise<void>;
}

function listen(server: Server): Promise<string> {
    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
    });
}

const close = (server: Server) => new Promise<void>((done) => server.close(() => done()));

export async function startImds(): Promise<Imds> {
    const tokens = new Set<string>();
    const imds: Imds = {
        url: "",
        credentials: { AccessKeyId: LAB_CREDENTIALS.accessKeyId, SecretAccessKey: LAB_CREDENTIALS.secretAccessKey, Token: LAB_CREDENTIALS.sessionToken },
        requests: [],
        close: async () => close(server),
    };
    const server = createServer((req, res) => {
        const token = req.headers["x-aws-ec2-metadata-token"];
        const valid = typeof token === "string" && tokens.has(token);
        imds.requests.push({ method: req.method ?? "", path: req.url ?? "", token: valid });
        if (req.method === "PUT" && req.url === "/latest/api/token") {
            const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
            if (!(ttl >= 1 && ttl <= 21600)) return res.writeHead(400).end();
            const issued = `imds-token-${tokens.size + 1}`;
            tokens.add(issued);
            return res.writeHead(200, { "content-type": "text/plain" }).end(issued);
        }
        // IMDSv2 only (httpTokens: required): no token, no answer.
        if (!valid) return res.writeHead(401).end();
        if (req.method === "GET" && req.url === "/latest/meta-data/iam/security-credentials/") {
            return res.writeHead(200, { "content-type": "text/plain" }).end(LAB_CREDENTIALS.role);
        }
        if (req.method === "GET" && req.url === `/latest/meta-data/iam/security-credentials/${LAB_CREDENTIALS.role}`) {
            const document = {
                Code: "Success",
                LastUpdated: new Date().toISOString(),
                Type: "AWS-HMAC",
                ...imds.credentials,
                Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
            };
            return res.writeHead(200, { "content-type": "text/plain" }).end(JSON.stringify(document, null, 2));
        }
        return res.writeHead(404).end();
    });
    imds.url = await listen(server);
    return imds;
}

// --- S3: s3rver behind a SigV4-verifying front -----------------------------------------------------

const sha256hex = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

/** RFC 3986 encoding of a query component, as SigV4 canonicalises it. */
function encode(value: string): string {
    return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export interface SignedRequest {
    method: string;
    /** The path and query exactly as sent (S3 does not normalise or re-encode the path). */
    url: string;
    /** Lower-case header names. */
    headers: Record<string, string | string[] | undefined>;
}

/**
 * Verifies an AWS Signature Version 4 Authorization header (header-based, AWS4-HMAC-SHA256) against
 * the secret of its access key: the canonical request, string to sign, signing key and signature
 * as the SigV4 reference describes them. Returns the problem, or undefined when the signature holds.
 */
export function sigV4Problem(req: SignedRequest, secretOf: (accessKeyId: string) => string | undefined, now?: Date): string | undefined {
    const header = (name: string) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v.join(",") : v;
    };
    const auth = header("authorization");
    const match =
        auth &&
        /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!match) return `no AWS4-HMAC-SHA256 Authorization header (${auth ?? "none"})`;
    const [, accessKeyId, date, region, service, signedHeaders, signature] = match;
    const secret = secretOf(accessKeyId);
    if (secret === undefined) return `unknown access key ${accessKeyId}`;
    const amzDate = header("x-amz-date");
    if (!amzDate || !amzDate.startsWith(date)) return "x-amz-date is missing or does not match the credential scope";
    if (now) {
        const at = Date.parse(
            `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
        );
        if (Math.abs(now.getTime() - at) > 15 * 60_000) return "the request time is more than 15 minutes off (RequestTimeTooSkewed)";
    }
    const names = signedHeaders.split(";");
    if (!names.includes("host")) return "the host header is not signed";
    for (const name of names) if (header(name) === undefined) return `signed header ${name} is missing`;
    const [path, query = ""] = req.url.split("?", 2);
    const canonicalQuery = query
        .split("&")
        .filter((p) => p !== "")
        .map((p) => {
            const [k, v = ""] = p.split("=", 2).map((s) => decodeURIComponent(s.replace(/\+/g, " ")));
            return [encode(k), encode(v)];
        })
        .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join("&");
    const canonicalHeaders = names.map((name) => `${name}:${header(name)!.trim().replace(/\s+/g, " ")}\n`).join("");
    const payloadHash = header("x-amz-content-sha256") ?? sha256hex("");
    const canonicalRequest = [req.method, path, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join("\n");
    const scope = `${date}/${region}/${service}/aws4_request`;
    const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256hex(canonicalRequest)].join("\n");
    const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), "aws4_request");
    const expected = createHmac("sha256", key).update(stringToSign).digest("hex");
    return expected === signature ? undefined : "SignatureDoesNotMatch";
}

export interface S3Record {
    method: string;
    path: string;
    status: number;
    signedHeaders: string[];
    problem?: string;
}

export interface LabS3 {
    /** The verifying front: what the nodes' program talks to (path-style: <url>/<bucket>/<key>). */
    url: string;
    /** s3rver itself, for the test's own unsigned reads and writes. */
    direct: string;
    bucket: string;
    directory: string;
    log: S3Record[];
    close(): Promise<void>;
}

function s3Error(res: ServerResponse, status: number, code: string, message: string): void {
    res.writeHead(status, { "content-type": "application/xml" }).end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`,
    );
}

function readBody(req: IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => resolve(Buffer.concat(chunks)));
        req.on("error", reject);
    });
}

/**
 * s3rver with one bucket, behind a front that refuses, as S3 does: an unsigned request, a bad
 * signature, a session token that is missing or unsigned, a body that does not match its signed
 * x-amz-content-sha256 (XAmzContentSHA256Mismatch) or its x-amz-checksum-sha256 (BadDigest).
 */
export async function startS3(directory: string, bucket: string, region = LAB_REGION): Promise<LabS3> {
    const S3rver = require("s3rver");
    const s3rver = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
    const address: AddressInfo = await s3rver.run();
    const direct = `http://127.0.0.1:${address.port}`;
    const log: S3Record[] = [];
    const front = createServer(async (req, res) => {
        const body = await readBody(req);
        const record: S3Record = { method: req.method ?? "", path: req.url ?? "", status: 0, signedHeaders: [] };
        log.push(record);
        const refuse = (status: number, code: string, message: string) => {
            record.status = status;
            record.problem = `${code}: ${message}`;
            s3Error(res, status, code, message);
        };
        const signed = { method: req.method ?? "", url: req.url ?? "", headers: req.headers };
        const problem = sigV4Problem(signed, (id) => (id === LAB_CREDENTIALS.accessKeyId ? LAB_CREDENTIALS.secretAccessKey : undefined), new Date());
        record.signedHeaders = /SignedHeaders=([a-z0-9;-]+)/.exec(String(req.headers.authorization))?.[1].split(";") ?? [];
        if (problem) return refuse(403, problem === "SignatureDoesNotMatch" ? problem : "AccessDenied", problem);
        if (!String(req.headers.authorization).includes(`/${region}/s3/aws4_request`))
            return refuse(400, "AuthorizationHeaderMalformed", `the region must be ${region}`);
        if (req.headers["x-amz-security-token"] !== LAB_CREDENTIALS.sessionToken || !record.signedHeaders.includes("x-amz-security-token")) {
            return refuse(403, "InvalidToken", "the session token is missing, wrong or unsigned");
        }
        const payloadHash = String(req.headers["x-amz-content-sha256"]);
        if (payloadHash !== "UNSIGNED-PAYLOAD" && payloadHash !== sha256hex(body))
            return refuse(400, "XAmzContentSHA256Mismatch", "the body does not match x-amz-content-sha256");
        const checksum = req.headers["x-amz-checksum-sha256"];
        if (checksum !== undefined && checksum !== createHash("sha256").update(body).digest("base64"))
            return refuse(400, "BadDigest", "the body does not match x-amz-checksum-sha256");
        const upstream = request(`${direct}${req.url}`, { method: req.method, headers: { ...req.headers, host: `127.0.0.1:${address.port}` } }, (answer) => {
            record.status = answer.statusCode ?? 0;
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
        });
        upstream.on("error", (e) => refuse(502, "BadGateway", e.message));
        upstream.end(body);
    });
    const url = await listen(front);
    return {
        url,
        direct,
        bucket,
        directory,
        log,
        close: async () => {
            await close(front);
            await s3rver.close();
        },
    };
}

/** An unsigned request straight to s3rver (the test's own reads and writes, not the nodes'). */
export function direct(
    s3: LabS3,
    method: string,
    key: string,
    body?: Buffer,
    headers: Record<string, string> = {},
): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
        const req = request(`${s3.direct}/${s3.bucket}/${key}`, { method, headers }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
        });
        req.on("error", reject);
        req.end(body);
    });
}
