import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { NodePlan } from "../core/plan";

export interface NodeLaunchArgs {
    clusterName: string;
    ami: string;
    instanceType: string;
    subnetIdByZone: Record<string, pulumi.Input<string>>;
    securityGroupIds: pulumi.Input<string>[];
    keyName: pulumi.Input<string>;
    /** Node preparation; must hold no secret. */
    userData: string;
    rootVolumeSizeGiB: number;
    tags: Record<string, string>;
    protect: boolean;
}

/**
 * One EC2 instance for a planned node: IMDSv2 only, an encrypted gp3 root volume, a public address
 * for SSH from the deployer.
 */
export function launchNode(plan: NodePlan, args: NodeLaunchArgs, parent: pulumi.Resource): aws.ec2.Instance {
    return new aws.ec2.Instance(
        plan.name,
        {
            ami: args.ami,
            instanceType: args.instanceType,
            // Stated as well as implied by the subnet, so `pulumi preview` (and policies) know the zone.
            availabilityZone: plan.zone,
            subnetId: args.subnetIdByZone[plan.zone],
            vpcSecurityGroupIds: args.securityGroupIds,
            keyName: args.keyName,
            associatePublicIpAddress: true,
            userData: args.userData,
            metadataOptions: {
                httpEndpoint: "enabled",
                httpTokens: "required",
                // Containers on the node must not reach the instance role through IMDS.
                httpPutResponseHopLimit: 1,
            },
            rootBlockDevice: {
                volumeType: "gp3",
                volumeSize: args.rootVolumeSizeGiB,
                encrypted: true,
                deleteOnTermination: true,
            },
            tags: {
                ...args.tags,
                Name: plan.name,
                "kubeadm-ha/cluster": args.clusterName,
                "kubeadm-ha/role": plan.role,
                [`kubernetes.io/cluster/${args.clusterName}`]: "owned",
            },
        },
        {
            parent,
            protect: args.protect,
            // A newer Ubuntu image or a changed preparation script must not replace or restart running
            // nodes behind the user's back: they apply to nodes created from now on. Roll nodes one at a
            // time with `pulumi up --replace` (see the README).
            ignoreChanges: ["ami", "userData"],
        },
    );
}
