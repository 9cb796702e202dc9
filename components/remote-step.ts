import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { PkiFile } from "../core/pki";

export interface SshAccess {
    user: string;
    privateKey: pulumi.Output<string>;
}

/** SSH may not answer for a minute or two after launch; keep dialling instead of failing. */
const DIAL = { dialErrorLimit: 40, perDialTimeout: 30 };
const STEP_TIMEOUTS: pulumi.CustomTimeouts = { create: "30m", update: "30m", delete: "15m" };

export function sshConnection(instance: aws.ec2.Instance, ssh: SshAccess): command.types.input.remote.ConnectionArgs {
    return { host: instance.publicIp, user: ssh.user, privateKey: ssh.privateKey, ...DIAL };
}

/**
 * One bootstrap step on a node: a remote command that runs again when the node is replaced (its
 * instance id is the trigger), never sees its previous output, and has generous timeouts.
 */
export function remoteStep(
    name: string,
    target: { instance: aws.ec2.Instance; connection: command.types.input.remote.ConnectionArgs },
    args: Omit<command.remote.CommandArgs, "connection" | "addPreviousOutputInEnv">,
    opts: { parent: pulumi.Resource; dependsOn: pulumi.Resource[] },
): command.remote.Command {
    return new command.remote.Command(
        name,
        {
            connection: target.connection,
            // A replaced instance is a new machine: every step on it runs again.
            triggers: [target.instance.id],
            addPreviousOutputInEnv: false,
            ...args,
        },
        { ...opts, customTimeouts: STEP_TIMEOUTS },
    );
}

/** One file of a place-pki step's stdin. */
export function pkiFile(path: string, content: pulumi.Output<string>, mode: PkiFile["mode"]): pulumi.Output<PkiFile> {
    return content.apply((c) => ({ path, mode, content: c }));
}
