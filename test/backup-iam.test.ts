/**
 * Least privilege for etcd backups, read from the very documents the program attaches: the nodes may
 * put and list snapshots under their cluster's prefix and nothing else; the bucket refuses plain
 * HTTP; snapshots expire. Then the configuration keys of backups and restores, and the bucket
 * component under Pulumi's mocks (what is kept when the stack goes, and that nothing stops a destroy).
 */
import type * as pulumiType from "@pulumi/pulumi";
import {
    bucketPolicy,
    ec2AssumeRolePolicy,
    etcdNodePolicy,
    lifecycleRules,
    NONCURRENT_SNAPSHOT_DAYS,
    PolicyDocument,
    snapshotPrefix,
} from "../core/backup-iam";
import { BACKUP_INTERVALS, parseBackupInterval, parseS3Url } from "../core/backup-settings";
import { ConfigError, parseConfig } from "../core/config";

const BUCKET = "kubeadm-ha-etcd-backups-1a2b3c4";
const PREFIX = snapshotPrefix("kubeadm-ha");
const KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/** Every action the document allows, with the resources it allows them on. */
function grants(doc: PolicyDocument): [string, string][] {
    return doc.Statement.filter((s) => s.Effect === "Allow").flatMap((s) => s.Action.flatMap((a) => (s.Resource ?? []).map((r): [string, string] => [a, r])));
}

describe("the etcd members' role", () => {
    it("may put snapshots under the cluster's prefix and list that prefix, nothing more", () => {
        expect(etcdNodePolicy({ bucket: BUCKET, prefix: PREFIX, region: "us-east-1" })).toEqual({
            Version: "2012-10-17",
            Statement: [
                { Sid: "PutEtcdSnapshots", Effect: "Allow", Action: ["s3:PutObject"], Resource: [`arn:aws:s3:::${BUCKET}/kubeadm-ha/etcd/*`] },
                {
                    Sid: "ListEtcdSnapshots",
                    Effect: "Allow",
                    Action: ["s3:ListBucket"],
                    Resource: [`arn:aws:s3:::${BUCKET}`],
                    Condition: { StringLike: { "s3:prefix": ["kubeadm-ha/etcd/", "kubeadm-ha/etcd/*"] } },
                },
            ],
        });
    });

    it.each([
        ["SSE-S3", {}],
        ["SSE-KMS", { kmsKeyArn: KEY }],
        ["SSE-KMS while restoring", { kmsKeyArn: KEY, restoreFrom: { bucket: "old-cluster-backups", key: "old/etcd/20250101T000000Z-cp-0.db" } }],
        ["SSE-S3 while restoring", { restoreFrom: { bucket: BUCKET, key: "kubeadm-ha/etcd/20250101T000000Z-cp-0.db" } }],
    ] as [string, { kmsKeyArn?: string; restoreFrom?: { bucket: string; key: string } }][])(
        "with %s: no wildcard action, no delete, no other bucket, no other service",
        (_label, extra) => {
            const doc = etcdNodePolicy({ bucket: BUCKET, prefix: PREFIX, region: "us-east-1", ...extra });
            for (const statement of doc.Statement) {
                expect(statement.Effect).toBe("Allow");
                expect(statement.Principal).toBeUndefined();
                for (const action of statement.Action) expect(action).toMatch(/^(s3|kms):[A-Za-z]+$/);
                for (const resource of statement.Resource ?? []) expect(resource).not.toBe("*");
            }
            const allowed = new Set(grants(doc).map(([a]) => a));
            const restoring = "restoreFrom" in extra;
            const kms = "kmsKeyArn" in extra;
            expect([...allowed].sort()).toEqual(
                [
                    "s3:ListBucket",
                    "s3:PutObject",
                    ...(kms ? ["kms:GenerateDataKey"] : []),
                    ...(restoring ? ["s3:GetObject"] : []),
                    ...(kms && restoring ? ["kms:Decrypt"] : []),
                ].sort(),
            );
            for (const [action, resource] of grants(doc)) {
                if (action === "s3:PutObject") expect(resource).toBe(`arn:aws:s3:::${BUCKET}/${PREFIX}/*`);
                if (action === "s3:ListBucket") expect(resource).toBe(`arn:aws:s3:::${BUCKET}`);
                // Reading: exactly the one object being restored, never a prefix.
                if (action === "s3:GetObject") expect(resource).toBe(`arn:aws:s3:::${extra.restoreFrom!.bucket}/${extra.restoreFrom!.key}`);
                if (action.startsWith("kms:")) expect(resource).toBe(KEY);
            }
            // KMS only through S3 in the bucket's region.
            for (const statement of doc.Statement.filter((s) => s.Action.some((a) => a.startsWith("kms:")))) {
                expect(statement.Condition).toEqual({ StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } });
            }
        },
    );

    it("is assumed by EC2 instances only", () => {
        expect(ec2AssumeRolePolicy()).toEqual({
            Version: "2012-10-17",
            Statement: [{ Sid: "Ec2Instances", Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: ["sts:AssumeRole"] }],
        });
    });
});

describe("the backup bucket", () => {
    it("refuses every request that is not over TLS", () => {
        expect(bucketPolicy(BUCKET)).toEqual({
            Version: "2012-10-17",
            Statement: [
                {
                    Sid: "DenyInsecureTransport",
                    Effect: "Deny",
                    Principal: "*",
                    Action: ["s3:*"],
                    Resource: [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`],
                    Condition: { Bool: { "aws:SecureTransport": "false" } },
                },
            ],
        });
    });

    it("expires snapshots after the retention, replaced versions a week later, and cleans up", () => {
        const rules = lifecycleRules(PREFIX, 14);
        expect(rules[0]).toEqual({
            id: "expire-etcd-snapshots",
            status: "Enabled",
            filter: { prefix: "kubeadm-ha/etcd/" },
            expiration: { days: 14 },
            noncurrentVersionExpiration: { noncurrentDays: NONCURRENT_SNAPSHOT_DAYS },
            abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
        });
        expect(rules[1]).toEqual({
            id: "remove-expired-delete-markers",
            status: "Enabled",
            filter: { prefix: "kubeadm-ha/etcd/" },
            expiration: { expiredObjectDeleteMarker: true },
        });
    });
});

/** Parses a config given as the strings Pulumi hands a program. */
function problemsOf(values: Record<string, string>): string[] {
    try {
        parseConfig((k) => values[k]);
    } catch (err) {
        if (err instanceof ConfigError) return err.problems;
        throw err;
    }
    throw new Error(`expected ${JSON.stringify(values)} to be rejected`);
}

describe("backup and restore configuration", () => {
    it("reads every form it allows", () => {
        const { config } = parseConfig(
            (k) =>
                ({
                    etcdBackupInterval: "1h",
                    etcdBackupBucket: "my-org-etcd-backups",
                    etcdBackupKmsKey: KEY,
                    etcdBackupS3RetentionDays: "30",
                    etcdRestoreFrom: "s3://my-org-etcd-backups/kubeadm-ha/etcd/20250101T000000Z-ip-10-0-0-10.ec2.internal.db",
                })[k],
        );
        expect([config.etcdBackupInterval, config.etcdBackupBucket, config.etcdBackupKmsKey, config.etcdBackupS3RetentionDays, config.etcdRestoreFrom]).toEqual(
            [
                { text: "1h", seconds: 3600, onCalendar: "*-*-* 00/1:00:00" },
                "my-org-etcd-backups",
                { kind: "kms-key", arn: KEY },
                30,
                { bucket: "my-org-etcd-backups", key: "kubeadm-ha/etcd/20250101T000000Z-ip-10-0-0-10.ec2.internal.db" },
            ],
        );
        expect(parseConfig((k) => (k === "etcdBackupKmsKey" ? "create" : undefined)).config.etcdBackupKmsKey).toEqual({ kind: "kms-create" });
        for (const text of BACKUP_INTERVALS) expect(parseBackupInterval(text)).toEqual({ value: expect.objectContaining({ text }) });
    });

    const allowedIntervals =
        "allowed: 5m, 10m, 15m, 20m, 30m, 1h, 2h, 3h, 4h, 6h, 8h, 12h, 24h (minutes that divide an hour or hours that divide a day, so every member's timer fires in the same slot)";
    const cases: [string, Record<string, string>, string][] = [
        ["an interval in another unit", { etcdBackupInterval: "15min" }, `kubeadm-ha:etcdBackupInterval = "15min" is not allowed; ${allowedIntervals}`],
        ["an interval that does not divide the hour", { etcdBackupInterval: "7m" }, `kubeadm-ha:etcdBackupInterval = "7m" is not allowed; ${allowedIntervals}`],
        ["a bare number", { etcdBackupInterval: "15" }, `kubeadm-ha:etcdBackupInterval = "15" is not allowed; ${allowedIntervals}`],
        [
            "a bucket name with capitals",
            { etcdBackupBucket: "My_Backups" },
            "kubeadm-ha:etcdBackupBucket = \"My_Backups\" must be lowercase letters, digits and '-', starting and ending with a letter or digit",
        ],
        [
            "a dotted bucket name",
            { etcdBackupBucket: "backups.example.com" },
            "kubeadm-ha:etcdBackupBucket = \"backups.example.com\" must not contain '.' (the nodes reach the bucket over TLS at <bucket>.s3.<region>.amazonaws.com, which a dotted name breaks)",
        ],
        ["a bucket name too short", { etcdBackupBucket: "ab" }, 'kubeadm-ha:etcdBackupBucket = "ab" must be 3-63 characters'],
        [
            "a KMS alias instead of a key",
            { etcdBackupKmsKey: "alias/etcd" },
            'kubeadm-ha:etcdBackupKmsKey = "alias/etcd" is not allowed; allowed: "" (SSE-S3), "create" (SSE-KMS with a key of the cluster\'s own) or a KMS key ARN such as arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        ],
        ["no retention", { etcdBackupS3RetentionDays: "0" }, 'kubeadm-ha:etcdBackupS3RetentionDays = "0" is out of range; allowed: 1 to 3650'],
        [
            "a restore source that is not an S3 URL",
            { etcdRestoreFrom: "https://my-bucket.s3.amazonaws.com/snap.db" },
            'kubeadm-ha:etcdRestoreFrom = "https://my-bucket.s3.amazonaws.com/snap.db" must be an S3 object URL such as s3://my-bucket/kubeadm-ha/etcd/20250101T000000Z-cp-0.db',
        ],
        [
            "a restore source naming a prefix",
            { etcdRestoreFrom: "s3://my-bucket/kubeadm-ha/etcd/" },
            'kubeadm-ha:etcdRestoreFrom = "s3://my-bucket/kubeadm-ha/etcd/" names a bucket or a prefix, not an object; allowed: s3://<bucket>/<key of one snapshot>',
        ],
        [
            "a restore source in a badly named bucket",
            { etcdRestoreFrom: "s3://My_Bucket/snap.db" },
            'kubeadm-ha:etcdRestoreFrom = "s3://My_Bucket/snap.db" names bucket "My_Bucket", which must be lowercase letters, digits and \'-\', starting and ending with a letter or digit',
        ],
        [
            "a restore key with a relative segment",
            { etcdRestoreFrom: "s3://my-bucket/a/../b.db" },
            "kubeadm-ha:etcdRestoreFrom = \"s3://my-bucket/a/../b.db\" has an object key with characters other than letters, digits, '/', '.', '_' and '-', or an empty or relative path segment",
        ],
        [
            "a restore key with shell characters",
            { etcdRestoreFrom: "s3://my-bucket/$(reboot).db" },
            "kubeadm-ha:etcdRestoreFrom = \"s3://my-bucket/$(reboot).db\" has an object key with characters other than letters, digits, '/', '.', '_' and '-', or an empty or relative path segment",
        ],
    ];

    it.each(cases)("rejects %s with one message naming the key, value and what is allowed", (_label, values, message) => {
        expect(problemsOf(values)).toEqual([message]);
    });

    it("parses S3 URLs exactly", () => {
        expect(parseS3Url("s3://b-1/k")).toEqual({ value: { bucket: "b-1", key: "k" } });
        expect(parseS3Url("s3:///k")).toEqual({ error: 'names bucket "", which must be 3-63 characters' });
        expect("error" in parseS3Url(`s3://bucket/${"k".repeat(1025)}`)).toBe(true);
    });
});

describe("the bucket component under Pulumi's mocks", () => {
    interface Declared {
        type: string;
        name: string;
        inputs: Record<string, any>;
        protect?: boolean;
        retainOnDelete?: boolean;
    }

    async function declare(args: Record<string, unknown>): Promise<Declared[]> {
        const declared: Declared[] = [];
        const options = new Map<string, { protect?: boolean; retainOnDelete?: boolean }>();
        let pulumi!: typeof pulumiType;
        let BackupBucket!: typeof import("../components/backup-bucket").BackupBucket;
        jest.isolateModules(() => {
            pulumi = require("@pulumi/pulumi");
            pulumi.runtime.setMocks(
                {
                    newResource: async (a) => {
                        declared.push({ type: a.type, name: a.name, inputs: a.inputs, ...options.get(`${a.type}::${a.name}`) });
                        return { id: `${a.name}-id`, state: { ...a.inputs, arn: `arn:aws:test:::${a.name}`, name: a.inputs.name ?? a.name } };
                    },
                    call: () => {
                        throw new Error("no invoke expected");
                    },
                },
                "kubeadm-ha",
                "test",
                false,
            );
            const monitor = pulumi.runtime.getMonitor() as any;
            const register = monitor.registerResource.bind(monitor);
            monitor.registerResource = (req: any, callback: any) => {
                options.set(`${req.getType()}::${req.getName()}`, { protect: req.getProtect(), retainOnDelete: req.getRetainondelete() });
                return register(req, callback);
            };
            BackupBucket = require("../components/backup-bucket").BackupBucket;
        });
        const interval = parseBackupInterval("15m");
        if ("error" in interval) throw new Error(interval.error);
        const component = new BackupBucket("kubeadm-ha", {
            clusterName: "kubeadm-ha",
            region: "us-east-1",
            encryption: { kind: "sse-s3" },
            retentionDays: 14,
            interval: interval.value,
            tags: {},
            ...args,
        } as any);
        await new Promise<void>((resolve) => pulumi.all([component.offsite, component.instanceProfileName]).apply(() => resolve()));
        // Let the last registrations (policies built from outputs) reach the mocks.
        let seen = -1;
        while (seen !== declared.length) {
            seen = declared.length;
            await new Promise((r) => setTimeout(r, 50));
        }
        return declared;
    }

    it("declares a retained, unprotected bucket with every setting, and a role with the least-privilege policy", async () => {
        const declared = await declare({});
        const byType = (t: string) => declared.filter((d) => d.type === t);
        for (const t of [
            "aws:s3/bucket:Bucket",
            "aws:s3/bucketVersioning:BucketVersioning",
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            "aws:s3/bucketPolicy:BucketPolicy",
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        ]) {
            expect([t, byType(t).length, byType(t)[0]?.protect, byType(t)[0]?.retainOnDelete]).toEqual([t, 1, false, true]);
        }
        expect(byType("aws:s3/bucketVersioning:BucketVersioning")[0].inputs.versioningConfiguration).toEqual({ status: "Enabled" });
        expect(byType("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")[0].inputs).toMatchObject({
            blockPublicAcls: true,
            blockPublicPolicy: true,
            ignorePublicAcls: true,
            restrictPublicBuckets: true,
        });
        expect(
            byType("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")[0].inputs.rules[0]
                .applyServerSideEncryptionByDefault,
        ).toEqual({
            sseAlgorithm: "AES256",
        });
        const bucketName = "kubeadm-ha-etcd-backups-id";
        expect(JSON.parse(byType("aws:s3/bucketPolicy:BucketPolicy")[0].inputs.policy)).toEqual(bucketPolicy(bucketName));
        expect(JSON.parse(byType("aws:iam/rolePolicy:RolePolicy")[0].inputs.policy)).toEqual(
            etcdNodePolicy({ bucket: bucketName, prefix: PREFIX, region: "us-east-1" }),
        );
        expect(JSON.parse(byType("aws:iam/role:Role")[0].inputs.assumeRolePolicy)).toEqual(ec2AssumeRolePolicy());
        expect(byType("aws:iam/instanceProfile:InstanceProfile")).toHaveLength(1);
        // The role has no other policy: no managed policy attachment, no second inline policy.
        expect(declared.filter((d) => /^aws:iam\/(rolePolicy|rolePolicyAttachment|policy)/.test(d.type))).toHaveLength(1);
    });

    it("with a key of its own: a retained, rotated key the bucket encrypts with and the role may use", async () => {
        const declared = await declare({ encryption: { kind: "kms-create" } });
        const key = declared.find((d) => d.type === "aws:kms/key:Key")!;
        expect([key.protect, key.retainOnDelete, key.inputs.enableKeyRotation, key.inputs.deletionWindowInDays]).toEqual([false, true, true, 30]);
        const keyArn = "arn:aws:test:::kubeadm-ha-etcd-backups";
        expect(
            declared.find((d) => d.type === "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")!.inputs.rules[0]
                .applyServerSideEncryptionByDefault,
        ).toEqual({ sseAlgorithm: "aws:kms", kmsMasterKeyId: keyArn });
        expect(JSON.parse(declared.find((d) => d.type === "aws:iam/rolePolicy:RolePolicy")!.inputs.policy)).toEqual(
            etcdNodePolicy({ bucket: "kubeadm-ha-etcd-backups-id", prefix: PREFIX, region: "us-east-1", kmsKeyArn: keyArn }),
        );
    });

    /**
     * What `pulumi destroy` does with each resource in the stack's state, as the engine's DeleteStep.Apply
     * decides it (pkg/resource/deploy/step.go): a protected resource fails the destroy before anything
     * is deleted (deleteProtectedError, in preview too); a retained one is dropped from the state without
     * a Delete call; the rest are deleted (a component has nothing to delete, but its protect counts).
     */
    function destroy(declared: Declared[]): { refused: string[]; kept: string[]; deleted: string[] } {
        const custom = declared.filter((d) => !d.type.startsWith("kubeadm-ha:"));
        return {
            refused: declared.filter((d) => d.protect).map((d) => d.type),
            kept: custom.filter((d) => !d.protect && d.retainOnDelete).map((d) => d.type),
            deleted: custom.filter((d) => !d.protect && !d.retainOnDelete).map((d) => d.type),
        };
    }

    it.each([
        ["SSE-S3", { encryption: { kind: "sse-s3" } }],
        ["a key of its own", { encryption: { kind: "kms-create" } }],
    ])("with %s: a destroy stops at nothing and leaves the bucket, its settings and its key in the account", async (_label, args) => {
        const declared = await declare(args);
        const { refused, kept, deleted } = destroy(declared);
        expect(refused).toEqual([]);
        expect(kept.every((t) => t.startsWith("aws:s3/") || t === "aws:kms/key:Key")).toBe(true);
        expect(kept).toContain("aws:s3/bucket:Bucket");
        expect(kept).toContain("aws:s3/bucketPolicy:BucketPolicy");
        expect(kept).toContain("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock");
        if (args.encryption.kind === "kms-create") expect(kept).toContain("aws:kms/key:Key");
        // The alias and the role go: a stack re-created under the same name declares them again.
        expect(deleted.sort()).toEqual(
            [
                "aws:iam/instanceProfile:InstanceProfile",
                "aws:iam/role:Role",
                "aws:iam/rolePolicy:RolePolicy",
                ...(args.encryption.kind === "kms-create" ? ["aws:kms/alias:Alias"] : []),
            ].sort(),
        );
    });

    it("leaves the bucket's name to the provider's autoname, so a re-created stack does not collide with the retained bucket", async () => {
        const declared = await declare({ encryption: { kind: "kms-create" } });
        const bucket = declared.find((d) => d.type === "aws:s3/bucket:Bucket")!;
        // Without `bucket` or `bucketPrefix`, the provider names it <resource name>-<random suffix>,
        // drawn from the engine's random seed for each new resource.
        expect([bucket.inputs.bucket, bucket.inputs.bucketPrefix]).toEqual([undefined, undefined]);
        // The key's alias does have a fixed name: it must not outlive the stack, or the next one could not take it.
        const alias = declared.find((d) => d.type === "aws:kms/alias:Alias")!;
        expect([alias.inputs.name, alias.retainOnDelete, alias.protect]).toEqual(["alias/kubeadm-ha-etcd-backups", false, false]);
    });

    it("with an existing bucket: declares no bucket, only the role scoped to the prefix", async () => {
        const declared = await declare({ existingBucket: "my-org-etcd-backups" });
        expect(declared.filter((d) => d.type.startsWith("aws:s3/"))).toEqual([]);
        expect(JSON.parse(declared.find((d) => d.type === "aws:iam/rolePolicy:RolePolicy")!.inputs.policy)).toEqual(
            etcdNodePolicy({ bucket: "my-org-etcd-backups", prefix: PREFIX, region: "us-east-1" }),
        );
    });
});
