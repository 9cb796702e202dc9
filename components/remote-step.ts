import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { PkiFile } from "../core/pki";
import { renderRemoteCommand } from "../core/scripts";

export interface SshAccess {
    user: string;
    privateKey: pulumi.Output<string>;
}

/** Where a step runs: a node, reached at its Elastic IP, which stays when the instance is replaced. */
export interface StepTarget {
    instance: aws.ec2.Instance;
    host: pulumi.Input<string>;
    ssh: SshAccess;
    /**
     * The node's SSH host key, an authorized_keys line learnt by its first step (`prepareNode`). The
     * command provider then accepts that key only, and only its algorithm: a step never talks to
     * another host that holds the address. Unset for that first step alone.
     */
    hostKey?: pulumi.Input<string>;
}

/**
 * How long a step keeps dialling. What pulumi-command 1.2.1 does (provider/pkg/provider/remote/
 * connection.go, `dialWithRetry`, on the Pulumi SDK's `retry.Until`):
 * - it makes up to dialErrorLimit + 1 attempts: every failed attempt counts and is retried, whatever
 *   failed (no route, a refused or timed-out connection, a host key that does not match, a refused
 *   login), and the attempt after the limit is reached ends the step with its error;
 * - perDialTimeout is golang.org/x/crypto/ssh's ClientConfig.Timeout, which bounds the TCP connect
 *   only: a host that accepts the connection and then stalls the SSH handshake or login holds the
 *   attempt until the step's customTimeouts;
 * - between attempts it waits 0.1 s, then 1.5 times longer each time, at most 5 s.
 * So, for a host that never answers:
 * - boot: the first step on a new instance, whose SSH daemon may need minutes: 41 connects of up to
 *   30 s and 40 waits (about 160 s), some 23 minutes;
 * - live: every later step, on a node that answered before: 4 connects of up to 10 s and 3 waits
 *   (0.1 + 0.15 + 0.225 s), about 41 s, so a host that died never holds `pulumi up` for long; a
 *   refused connection or a wrong host key fails the four attempts in under a second.
 */
export const DIAL = {
    boot: { dialErrorLimit: 40, perDialTimeout: 30 },
    live: { dialErrorLimit: 3, perDialTimeout: 10 },
} as const;
const STEP_TIMEOUTS: pulumi.CustomTimeouts = { create: "30m", update: "30m", delete: "5m" };

/**
 * What a step shows of its output. Its stdout and stderr are secret in the state; live, the provider
 * would print them to the console (and to the CI log or update history that keeps it), so nothing is
 * printed while a step runs. A failing step's error still carries its output, as the provider always
 * includes it: the scripts print only progress lines and redacted log tails (run_logged).
 */
const STEP_LOGGING = command.types.enums.remote.Logging.None;
const SECRET_OUTPUTS = ["stdout", "stderr"];

/** Every input a step sets: what a once-only step ignores after its first run. */
const STEP_INPUTS = ["connection", "create", "update", "delete", "stdin", "triggers", "environment", "addPreviousOutputInEnv", "logging"];

/**
 * One bootstrap step on a node: a remote command that runs again when the node is replaced (its
 * instance id is the trigger), never sees its previous output, keeps its output secret and prints
 * none of it live, checks the node's host key once it is known, and has generous timeouts. With
 * `once`, it runs when first created and never again, whatever changes.
 */
export function remoteStep(
    name: string,
    target: StepTarget,
    args: Omit<command.remote.CommandArgs, "connection" | "addPreviousOutputInEnv" | "logging">,
    opts: { parent: pulumi.Resource; dependsOn: pulumi.Resource[]; aliases?: pulumi.Alias[] },
    dial: keyof typeof DIAL = "live",
    behaviour: { once?: boolean } = {},
): command.remote.Command {
    return new command.remote.Command(
        name,
        {
            connection: {
                host: target.host,
                user: target.ssh.user,
                privateKey: target.ssh.privateKey,
                ...(target.hostKey === undefined ? {} : { hostKey: target.hostKey }),
                ...DIAL[dial],
            },
            // A replaced instance is a new machine: every step on it runs again.
            triggers: [target.instance.id],
            addPreviousOutputInEnv: false,
            ...args,
            logging: STEP_LOGGING,
        },
        {
            ...opts,
            customTimeouts: STEP_TIMEOUTS,
            additionalSecretOutputs: SECRET_OUTPUTS,
            ...(behaviour.once ? { ignoreChanges: STEP_INPUTS } : {}),
        },
    );
}

/** The last line of a step's output. */
function lastLine(output: string): string {
    return output.trimEnd().split("\n").pop()!.trim();
}

/**
 * A node's first step: wait until its preparation has finished, and learn its SSH host key. This one
 * connection trusts the key the node shows (trust on first use: no channel outside SSH tells the
 * program the key of an instance it has just launched); the script prints the node's ed25519 host
 * key as its last line, and the returned target pins every later step on the node to it. A replaced
 * instance has a new key: its steps are replaced too (their trigger is the instance id), beginning
 * again with this one.
 */
export function prepareNode(
    name: string,
    node: Omit<StepTarget, "hostKey">,
    opts: { parent: pulumi.Resource },
): { prepared: command.remote.Command; target: StepTarget } {
    const prepared = remoteStep(name, node, { create: renderRemoteCommand("wait-for-prepare") }, { parent: opts.parent, dependsOn: [node.instance] }, "boot");
    return { prepared, target: { ...node, hostKey: prepared.stdout.apply(lastLine) } };
}

/** One file of a place-pki step's stdin. */
export function pkiFile(path: string, content: pulumi.Output<string>, mode: PkiFile["mode"]): pulumi.Output<PkiFile> {
    return content.apply((c) => ({ path, mode, content: c }));
}
