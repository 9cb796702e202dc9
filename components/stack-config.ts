import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { CertificateReport } from "../core/cert-renewal";
import { ClusterConfig, ConfigError, InstanceTypeNeed, offeringProblems, parseConfig, ParsedConfig, PROJECT } from "../core/config";
import { ADDONS_OUTPUT, checkLifecycle, LIFECYCLE_OUTPUT, LifecycleError, LifecycleRecord, readLifecycleRecord } from "../core/lifecycle";
import { ClusterPlan } from "../core/plan";
import { selfReferenceName } from "../core/stack-reference";

/**
 * Runs the part of the program that may still reject the configuration (parsing, zone and instance
 * type lookups, planning) and turns a ConfigError into a RunError: Pulumi prints its message alone,
 * without a stack trace, and no resource has been declared yet.
 */
export async function beforeAnyResource<T>(work: () => T | Promise<T>): Promise<T> {
    try {
        return await work();
    } catch (err) {
        if (err instanceof ConfigError) {
            throw new pulumi.RunError(err.message);
        }
        throw err;
    }
}

/** The keys the stack sets in the project's namespace, without the prefix (declared or not). */
function keysSetInProject(): string[] {
    const prefix = `${PROJECT}:`;
    return Object.keys(pulumi.runtime.allConfig())
        .filter((k) => k.startsWith(prefix))
        .map((k) => k.slice(prefix.length));
}

/** The stack's configuration, validated; warnings are reported through the engine. */
export function loadStackConfig(): ParsedConfig {
    const config = new pulumi.Config();
    const parsed = parseConfig((key) => config.get(key), keysSetInProject());
    for (const warning of parsed.warnings) {
        pulumi.log.warn(warning);
    }
    return parsed;
}

/**
 * Asks EC2 which of the stack's instance types each chosen zone offers (one DescribeInstanceTypeOfferings
 * call) and fails, naming the type and the zones that lack it, before any resource is declared.
 */
export async function checkInstanceTypeOfferings(config: ClusterConfig, plan: ClusterPlan): Promise<void> {
    const needs: InstanceTypeNeed[] = [
        { configKey: "instanceType", instanceType: config.instanceType, zones: plan.controlPlane.map((n) => n.zone) },
        ...(plan.etcd.length > 0
            ? [{ configKey: "etcdInstanceType" as const, instanceType: config.etcdInstanceType, zones: plan.etcd.map((n) => n.zone) }]
            : []),
    ];
    const offerings = await aws.ec2.getInstanceTypeOfferings({
        locationType: "availability-zone",
        filters: [
            { name: "instance-type", values: [...new Set(needs.map((n) => n.instanceType))] },
            { name: "location", values: [...new Set(needs.flatMap((n) => n.zones))] },
        ],
    });
    const offered = offerings.instanceTypes.map((instanceType, i) => ({ instanceType, zone: offerings.locations[i] }));
    const problems = offeringProblems(needs, offered);
    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
}

/** Name of the read of the stack's own last update. */
export const PREVIOUS_RUN = "previous-run";

/**
 * The `lifecycle` record and the `certificates` report of the stack's last persisted update, read
 * through a StackReference to the stack itself: a read (nothing is created), declared before any
 * other resource. Both undefined on a stack's first run and after `pulumi destroy`.
 */
export async function readPreviousRun(): Promise<{ lifecycle?: LifecycleRecord; certificates?: CertificateReport }> {
    const self = new pulumi.StackReference(PREVIOUS_RUN, {
        // Self-managed state in either layout, or Pulumi Cloud: each takes another form (core/stack-reference.ts).
        name: selfReferenceName({ organization: pulumi.getOrganization(), project: pulumi.getProject(), stack: pulumi.getStack() }),
    });
    // The add-ons of the same update tell the pod network of a record written before it held one.
    const read = readLifecycleRecord(await self.getOutputValue(LIFECYCLE_OUTPUT), await self.getOutputValue(ADDONS_OUTPUT));
    if ("error" in read) throw new LifecycleError([read.error]);
    const certificates = await self.getOutputValue(CERTIFICATES_OUTPUT);
    return {
        lifecycle: read.record,
        certificates: typeof certificates === "object" && certificates !== null ? (certificates as CertificateReport) : undefined,
    };
}

/** The stack output that reports the nodes' certificates (core/cert-renewal.ts). */
export const CERTIFICATES_OUTPUT = "certificates";

/** Refuses, with every reason at once, a configuration the running cluster cannot take. */
export function refuseWhatTheClusterCannotTake(previous: LifecycleRecord | undefined, next: LifecycleRecord): void {
    const problems = checkLifecycle(previous, next);
    if (problems.length > 0) throw new LifecycleError(problems);
}
