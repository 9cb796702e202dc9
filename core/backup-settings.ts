/**
 * The settings of off-node etcd backups, parsed from stack config: how often, which bucket, which
 * encryption, and which snapshot a new stack restores from. Pure and import-free, so config
 * validation, the renderers and the tests share one reading of each value.
 */

/**
 * How often one member uploads a snapshot. A restricted set of systemd calendar slots rather than any
 * time span: every member's timer fires at the same wall-clock slot (so the leader that acts is the
 * leader at that moment, and the recovery point is exactly one interval), and the program knows the
 * interval in seconds for the alert that fires when backups are two intervals old.
 */
export interface BackupInterval {
    /** As configured: "15m", "1h". */
    text: string;
    seconds: number;
    /** systemd OnCalendar= expression with slots aligned to the hour or the day. */
    onCalendar: string;
}

const MINUTES = [5, 10, 15, 20, 30];
const HOURS = [1, 2, 3, 4, 6, 8, 12, 24];
export const BACKUP_INTERVALS: readonly string[] = [...MINUTES.map((m) => `${m}m`), ...HOURS.map((h) => `${h}h`)];

export function parseBackupInterval(v: string): { value: BackupInterval } | { error: string } {
    const match = /^(\d{1,2})(m|h)$/.exec(v);
    const n = match ? Number(match[1]) : NaN;
    if (match && match[2] === "m" && MINUTES.includes(n)) {
        return { value: { text: v, seconds: n * 60, onCalendar: `*-*-* *:00/${n}:00` } };
    }
    if (match && match[2] === "h" && HOURS.includes(n)) {
        return { value: { text: v, seconds: n * 3600, onCalendar: n === 24 ? "*-*-* 00:00:00" : `*-*-* 00/${n}:00:00` } };
    }
    return {
        error: `is not allowed; allowed: ${BACKUP_INTERVALS.join(", ")} (minutes that divide an hour or hours that divide a day, so every member's timer fires in the same slot)`,
    };
}

/**
 * S3 general-purpose bucket names (the S3 naming rules): 3-63 characters of lowercase letters,
 * digits and '-', starting and ending with a letter or digit, not shaped like an IP address, without
 * the reserved prefixes and suffixes. Dots are allowed by S3 but refused here: a dotted name breaks
 * TLS certificate matching on the virtual-hosted endpoint the nodes use.
 */
export function bucketNameProblem(name: string): string | undefined {
    if (name.length < 3 || name.length > 63) return "must be 3-63 characters";
    if (name.includes("."))
        return "must not contain '.' (the nodes reach the bucket over TLS at <bucket>.s3.<region>.amazonaws.com, which a dotted name breaks)";
    if (!/^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(name)) return "must be lowercase letters, digits and '-', starting and ending with a letter or digit";
    if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name) || /(-s3alias|--ol-s3|--x-s3|--table-s3)$/.test(name)) return "uses a prefix or suffix S3 reserves";
    return undefined;
}

export interface S3Object {
    bucket: string;
    key: string;
}

export const s3Url = (o: S3Object) => `s3://${o.bucket}/${o.key}`;

/**
 * `s3://<bucket>/<key>`: a bucket by the naming rules above and an object key of 1-1024 bytes. Keys are
 * limited to the characters snapshot names use (letters, digits, '/', '.', '_', '-'), which need no
 * escaping in a signed request and cannot smuggle anything into a shell.
 */
export function parseS3Url(v: string): { value: S3Object } | { error: string } {
    const match = /^s3:\/\/([^/]*)\/(.*)$/.exec(v);
    if (!match) return { error: "must be an S3 object URL such as s3://my-bucket/kubeadm-ha/etcd/20250101T000000Z-cp-0.db" };
    const [, bucket, key] = match;
    const why = bucketNameProblem(bucket);
    if (why) return { error: `names bucket ${JSON.stringify(bucket)}, which ${why}` };
    if (key === "" || key.endsWith("/")) return { error: "names a bucket or a prefix, not an object; allowed: s3://<bucket>/<key of one snapshot>" };
    if (Buffer.byteLength(key) > 1024) return { error: "has an object key longer than 1024 bytes (the S3 limit)" };
    if (!/^[A-Za-z0-9._\-/]+$/.test(key) || key.startsWith("/") || key.includes("//") || key.split("/").some((p) => p === "." || p === "..")) {
        return { error: "has an object key with characters other than letters, digits, '/', '.', '_' and '-', or an empty or relative path segment" };
    }
    return { value: { bucket, key } };
}

/** How snapshots are encrypted at rest. S3 encrypts every object; this picks whose key. */
export type BackupEncryption =
    /** SSE-S3 (AES256), S3's own keys. */
    | { kind: "sse-s3" }
    /** SSE-KMS with a customer managed key the program creates for the cluster. */
    | { kind: "kms-create" }
    /** SSE-KMS with an existing customer managed key, e.g. the one an earlier stack created. */
    | { kind: "kms-key"; arn: string };

export function parseBackupEncryption(v: string): { value: BackupEncryption } | { error: string } {
    if (v === "") return { value: { kind: "sse-s3" } };
    if (v === "create") return { value: { kind: "kms-create" } };
    if (
        /^arn:aws(-cn|-us-gov)?:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key\/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/.test(v) ||
        /^arn:aws(-cn|-us-gov)?:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key\/mrk-[0-9a-f]{32}$/.test(v)
    ) {
        return { value: { kind: "kms-key", arn: v } };
    }
    return {
        error: 'is not allowed; allowed: "" (SSE-S3), "create" (SSE-KMS with a key of the cluster\'s own) or a KMS key ARN such as arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    };
}
