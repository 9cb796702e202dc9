/**
 * Who may do what with the cluster's etcd snapshots, as plain IAM and S3 documents: the role of the
 * nodes that run etcd members, the bucket policy and the lifecycle rules. Pure, so a test reads the
 * very documents the program attaches and asserts that they grant exactly this much:
 *
 * - put objects under `<cluster>/etcd/` of the one bucket, and list that prefix (never read, delete
 *   or overwrite-protect anything else, never another bucket or another service);
 * - with SSE-KMS, have S3 generate data keys from the one key (only through S3);
 * - while a restore is configured, read that one snapshot object (and decrypt it through S3).
 *
 * Reading snapshots back is otherwise the deployer's business: a compromised node can add snapshots
 * (versioning keeps whatever it overwrites) but cannot read the cluster's history out of the bucket.
 */
import { S3Object } from "./backup-settings";

export interface PolicyStatement {
    Sid: string;
    Effect: "Allow" | "Deny";
    Action: string[];
    /** Absent only in a trust (assume-role) policy. */
    Resource?: string[];
    Principal?: { Service: string } | "*";
    Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
    Version: "2012-10-17";
    Statement: PolicyStatement[];
}

/** The key prefix of a cluster's snapshots in the bucket, without a trailing slash. */
export const snapshotPrefix = (clusterName: string) => `${clusterName}/etcd`;

export const bucketArn = (bucket: string, partition = "aws") => `arn:${partition}:s3:::${bucket}`;
export const objectArn = (bucket: string, key: string, partition = "aws") => `arn:${partition}:s3:::${bucket}/${key}`;

/** EC2 may hand the role to the instances it launches; nothing else may assume it. */
export function ec2AssumeRolePolicy(): PolicyDocument {
    return {
        Version: "2012-10-17",
        Statement: [{ Sid: "Ec2Instances", Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: ["sts:AssumeRole"] }],
    };
}

export interface EtcdNodeAccess {
    bucket: string;
    /** snapshotPrefix(clusterName) */
    prefix: string;
    region: string;
    /** The customer managed key snapshots are encrypted with (SSE-KMS); undefined for SSE-S3. */
    kmsKeyArn?: string;
    /** The one snapshot a new stack restores from, when etcdRestoreFrom is set. */
    restoreFrom?: S3Object;
    partition?: string;
}

/** The identity policy of the etcd members' role. */
export function etcdNodePolicy(access: EtcdNodeAccess): PolicyDocument {
    const partition = access.partition ?? "aws";
    const viaS3 = { StringEquals: { "kms:ViaService": `s3.${access.region}.amazonaws.com` } };
    const statements: PolicyStatement[] = [
        {
            Sid: "PutEtcdSnapshots",
            Effect: "Allow",
            Action: ["s3:PutObject"],
            Resource: [objectArn(access.bucket, `${access.prefix}/*`, partition)],
        },
        {
            Sid: "ListEtcdSnapshots",
            Effect: "Allow",
            Action: ["s3:ListBucket"],
            Resource: [bucketArn(access.bucket, partition)],
            Condition: { StringLike: { "s3:prefix": [`${access.prefix}/`, `${access.prefix}/*`] } },
        },
    ];
    if (access.kmsKeyArn) {
        // A single-part PutObject with SSE-KMS needs GenerateDataKey only (Decrypt is for multipart
        // uploads and reads); the nodes upload in one part.
        statements.push({ Sid: "EncryptEtcdSnapshots", Effect: "Allow", Action: ["kms:GenerateDataKey"], Resource: [access.kmsKeyArn], Condition: viaS3 });
    }
    if (access.restoreFrom) {
        statements.push({
            Sid: "ReadRestoreSnapshot",
            Effect: "Allow",
            Action: ["s3:GetObject"],
            Resource: [objectArn(access.restoreFrom.bucket, access.restoreFrom.key, partition)],
        });
        if (access.kmsKeyArn) {
            statements.push({ Sid: "DecryptRestoreSnapshot", Effect: "Allow", Action: ["kms:Decrypt"], Resource: [access.kmsKeyArn], Condition: viaS3 });
        }
    }
    return { Version: "2012-10-17", Statement: statements };
}

/** The bucket refuses every request that does not come over TLS, whoever makes it. */
export function bucketPolicy(bucket: string, partition = "aws"): PolicyDocument {
    return {
        Version: "2012-10-17",
        Statement: [
            {
                Sid: "DenyInsecureTransport",
                Effect: "Deny",
                Principal: "*",
                Action: ["s3:*"],
                Resource: [bucketArn(bucket, partition), `${bucketArn(bucket, partition)}/*`],
                Condition: { Bool: { "aws:SecureTransport": "false" } },
            },
        ],
    };
}

/** Days a snapshot that was overwritten or deleted (a noncurrent version) is kept before it expires. */
export const NONCURRENT_SNAPSHOT_DAYS = 7;

export interface LifecycleRule {
    id: string;
    status: "Enabled";
    filter: { prefix: string };
    expiration?: { days?: number; expiredObjectDeleteMarker?: boolean };
    noncurrentVersionExpiration?: { noncurrentDays: number };
    abortIncompleteMultipartUpload?: { daysAfterInitiation: number };
}

/**
 * The bucket's lifecycle (a bucket of the cluster's own only; an existing bucket keeps its own
 * rules): snapshots expire after `retentionDays`, versions replaced or deleted within that time are
 * kept NONCURRENT_SNAPSHOT_DAYS more (a node can overwrite but not erase), and leftovers of
 * interrupted uploads go after a day.
 */
export function lifecycleRules(prefix: string, retentionDays: number): LifecycleRule[] {
    const filter = { prefix: `${prefix}/` };
    return [
        {
            id: "expire-etcd-snapshots",
            status: "Enabled",
            filter,
            expiration: { days: retentionDays },
            noncurrentVersionExpiration: { noncurrentDays: NONCURRENT_SNAPSHOT_DAYS },
            abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
        },
        // An expired current version leaves a delete marker; once its old versions are gone, drop it too.
        { id: "remove-expired-delete-markers", status: "Enabled", filter, expiration: { expiredObjectDeleteMarker: true } },
    ];
}
