import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

/**
 * The key the program uses to reach its nodes over SSH. The private half stays in the stack's
 * encrypted state and is exported only as a secret output, for debugging a node.
 */
export class SshKey extends pulumi.ComponentResource {
    readonly keyName: pulumi.Output<string>;
    readonly privateKeyOpenssh: pulumi.Output<string>;

    constructor(name: string, args: { tags: Record<string, string> }, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-ha:access:SshKey", name, {}, opts);
        const key = new tls.PrivateKey(`${name}-ssh`, { algorithm: "ED25519" }, { parent: this });
        const pair = new aws.ec2.KeyPair(`${name}-ssh`, { publicKey: key.publicKeyOpenssh, tags: args.tags }, { parent: this });
        this.keyName = pair.keyName;
        this.privateKeyOpenssh = pulumi.secret(key.privateKeyOpenssh);
        this.registerOutputs({ keyName: this.keyName });
    }
}
