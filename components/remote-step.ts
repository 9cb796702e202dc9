import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { PkiFile } from "../core/pki";

export interface SshAccess {
    user: string;
    privateKey: pulumi.Output<string>;
}

/** Where a step runs: a node, reached at its Elastic IP, which stays when the instance is replaced. */
export interface StepTarget {
    instance: aws.ec2.Instance;
    host: pulumi.Input<string>;
    ssh: SshAccess;
}

/**
 * How long a step keeps dialling. The command provider makes dialErrorLimit + 1 attempts, each
 * bounded by perDialTimeout seconds, with a backoff of 0.1 s growing 1.5x between them.
 * - boot: the first step on a new instance, whose SSH daemon may need minutes: 41 x 30 s.
 * - live: every later step, on a node that answered before: 4 x 10 s + 0.5 s backoff, under a
 *   minute, so a host that died never holds `pulumi up` for long.
 */
export const DIAL = {
    boot: { dialErrorLimit: 40, perDialTimeout: 30 },
    live: { dialErrorLimit: 3, perDialTimeout: 10 },
} as const;
const STEP_TIMEOUTS: pulumi.CustomTimeouts = { create: "30m", update: "30m", delete: "5m" };

/** Every input a step sets: what a once-only step ignores after its first run. */
const STEP_INPUTS = ["connection", "create", "update", "delete", "stdin", "triggers", "environment", "addPreviousOutputInEnv", "logging"];

/**
 * One bootstrap step on a node: a remote command that runs again when the node is replaced (its
 * instance id is the trigger), never sees its previous output, and has generous timeouts. With
 * `once`, it runs when first created and never again, whatever changes.
 */
export function remoteStep(
    name: string,
    target: StepTarget,
    args: Omit<command.remote.CommandArgs, "connection" | "addPreviousOutputInEnv">,
    opts: { parent: pulumi.Resource; dependsOn: pulumi.Resource[]; aliases?: pulumi.Alias[] },
    dial: keyof typeof DIAL = "live",
    behaviour: { once?: boolean } = {},
): command.remote.Command {
    return new command.remote.Command(
        name,
        {
            connection: { host: target.host, user: target.ssh.user, privateKey: target.ssh.privateKey, ...DIAL[dial] },
            // A replaced instance is a new machine: every step on it runs again.
            triggers: [target.instance.id],
            addPreviousOutputInEnv: false,
            ...args,
        },
        { ...opts, customTimeouts: STEP_TIMEOUTS, ...(behaviour.once ? { ignoreChanges: STEP_INPUTS } : {}) },
    );
}

/** One file of a place-pki step's stdin. */
export function pkiFile(path: string, content: pulumi.Output<string>, mode: PkiFile["mode"]): pulumi.Output<PkiFile> {
    return content.apply((c) => ({ path, mode, content: c }));
}
