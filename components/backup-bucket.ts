import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { bucketPolicy, ec2AssumeRolePolicy, etcdNodePolicy, lifecycleRules, snapshotPrefix } from "../core/backup-iam";
import { BackupEncryption, BackupInterval, S3Object } from "../core/backup-settings";
import { OffsiteBackup } from "../core/backup";

export interface BackupBucketArgs {
    clusterName: string;
    /** The stack's region: where the bucket is, and the region the nodes sign their requests for. */
    region: string;
    /** An existing bucket to upload to (etcdBackupBucket); the program then only writes under its prefix. */
    existingBucket?: string;
    /** etcdBackupKmsKey */
    encryption: BackupEncryption;
    /** etcdBackupS3RetentionDays: applies to a bucket of the cluster's own. */
    retentionDays: number;
    /** etcdBackupInterval */
    interval: BackupInterval;
    /** etcdRestoreFrom: the one snapshot the nodes may read, while it is set. */
    restoreFrom?: S3Object;
    tags: Record<string, string>;
}

/**
 * Where etcd snapshots go when the cluster is gone, and the one identity that may put them there.
 *
 * The bucket (unless an existing one is named): versioned, encrypted by default (SSE-S3, or SSE-KMS
 * with a key of its own), every kind of public access blocked, ACLs off, non-TLS requests refused by
 * its policy, snapshots expired after `retentionDays` and replaced versions 7 days later. The bucket,
 * its key and its settings are retained on delete (`retainOnDelete`): a `pulumi destroy` or a
 * replacement drops them from the stack's state without deleting them, so the backups of a cluster
 * outlive it, which is when they are needed. They are not `protect`ed: the engine refuses to delete a
 * protected resource, so a destroy would stop at them (or, with `--exclude-protected`, keep the stack
 * and its `lifecycle` record of a cluster that is gone). The bucket's name is the provider's autoname,
 * `<name>-etcd-backups-<random>`, drawn anew for each new resource: a stack re-created under the same
 * name makes a bucket of its own beside the retained one. The key's alias has a fixed name and is not
 * retained, so a re-created stack can take that name again.
 *
 * The role, for the instances that run etcd members only (external members, or the control-plane
 * nodes with stacked etcd): put and list under `<cluster>/etcd/`, nothing else (core/backup-iam.ts).
 * IMDSv2 with a hop limit of 1 keeps it from pods.
 */
export class BackupBucket extends pulumi.ComponentResource {
    /** The bucket's name. */
    readonly bucketName: pulumi.Output<string>;
    /** "<cluster>/etcd": every snapshot's key starts with it. */
    readonly prefix: string;
    /** The key snapshots are encrypted with, for SSE-KMS. */
    readonly kmsKeyArn?: pulumi.Output<string>;
    readonly role: aws.iam.Role;
    /** For the launch of every node that runs an etcd member. */
    readonly instanceProfileName: pulumi.Output<string>;
    /** What each member's backup install needs (with its member name added). */
    readonly offsite: pulumi.Output<OffsiteBackup>;

    constructor(name: string, args: BackupBucketArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-ha:backup:BackupBucket", name, {}, opts);
        this.prefix = snapshotPrefix(args.clusterName);
        const keep = { parent: this, retainOnDelete: true };

        const key =
            args.encryption.kind === "kms-create"
                ? new aws.kms.Key(
                      `${name}-etcd-backups`,
                      {
                          description: `kubeadm-ha ${args.clusterName}: etcd snapshots in S3`,
                          enableKeyRotation: true,
                          deletionWindowInDays: 30,
                          tags: args.tags,
                      },
                      keep,
                  )
                : undefined;
        if (key) new aws.kms.Alias(`${name}-etcd-backups`, { name: `alias/${args.clusterName}-etcd-backups`, targetKeyId: key.keyId }, { parent: this });
        this.kmsKeyArn = key ? key.arn : args.encryption.kind === "kms-key" ? pulumi.output(args.encryption.arn) : undefined;

        if (args.existingBucket) {
            this.bucketName = pulumi.output(args.existingBucket);
        } else {
            const bucket = new aws.s3.Bucket(`${name}-etcd-backups`, { forceDestroy: false, tags: args.tags }, keep);
            // A bucket's id is its name.
            this.bucketName = bucket.id;
            const on = { bucket: bucket.id };
            const settings = { ...keep, dependsOn: [bucket] };
            new aws.s3.BucketOwnershipControls(`${name}-etcd-backups`, { ...on, rule: { objectOwnership: "BucketOwnerEnforced" } }, settings);
            const publicAccess = new aws.s3.BucketPublicAccessBlock(
                `${name}-etcd-backups`,
                { ...on, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
                settings,
            );
            new aws.s3.BucketVersioning(`${name}-etcd-backups`, { ...on, versioningConfiguration: { status: "Enabled" } }, settings);
            new aws.s3.BucketServerSideEncryptionConfiguration(
                `${name}-etcd-backups`,
                {
                    ...on,
                    rules: [
                        {
                            applyServerSideEncryptionByDefault: this.kmsKeyArn
                                ? { sseAlgorithm: "aws:kms", kmsMasterKeyId: this.kmsKeyArn }
                                : { sseAlgorithm: "AES256" },
                            // No bucket key: every object's KMS use is its own CloudTrail event.
                            bucketKeyEnabled: false,
                        },
                    ],
                },
                settings,
            );
            new aws.s3.BucketPolicy(
                `${name}-etcd-backups`,
                { ...on, policy: bucket.id.apply((b) => JSON.stringify(bucketPolicy(b))) },
                { ...settings, dependsOn: [publicAccess] },
            );
            new aws.s3.BucketLifecycleConfiguration(`${name}-etcd-backups`, { ...on, rules: lifecycleRules(this.prefix, args.retentionDays) }, settings);
        }

        this.role = new aws.iam.Role(
            `${name}-etcd-backup`,
            {
                description: `kubeadm-ha ${args.clusterName}: etcd members upload snapshots to S3`,
                assumeRolePolicy: JSON.stringify(ec2AssumeRolePolicy()),
                tags: args.tags,
            },
            { parent: this },
        );
        new aws.iam.RolePolicy(
            `${name}-etcd-backup`,
            {
                role: this.role.id,
                policy: pulumi
                    .all([this.bucketName, this.kmsKeyArn ?? pulumi.output(undefined)])
                    .apply(([bucket, kmsKeyArn]) =>
                        JSON.stringify(etcdNodePolicy({ bucket, prefix: this.prefix, region: args.region, kmsKeyArn, restoreFrom: args.restoreFrom })),
                    ),
            },
            { parent: this },
        );
        const profile = new aws.iam.InstanceProfile(`${name}-etcd-backup`, { role: this.role.name, tags: args.tags }, { parent: this });
        this.instanceProfileName = profile.name;

        this.offsite = pulumi.all([this.bucketName, this.kmsKeyArn ?? pulumi.output(undefined)]).apply(([bucket, kmsKeyArn]) => ({
            bucket,
            prefix: this.prefix,
            region: args.region,
            ...(kmsKeyArn ? { kmsKeyArn } : {}),
            interval: args.interval,
        }));
        this.registerOutputs({ bucketName: this.bucketName, prefix: this.prefix, instanceProfileName: this.instanceProfileName });
    }
}
