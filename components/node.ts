import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { NodePlan } from "../core/plan";
import { CpuCredits } from "../core/config";

export interface NodeLaunchArgs {
    clusterName: string;
    ami: string;
    instanceType: string;
    cpuCredits: CpuCredits;
    subnetIdByZone: Record<string, pulumi.Input<string>>;
    securityGroupIds: pulumi.Input<string>[];
    keyName: pulumi.Input<string>;
    /** Node preparation; must hold no secret. */
    userData: string;
    rootVolumeSizeGiB: number;
    /** An instance profile for the nodes of this tier (etcd members' backup uploads), if any. */
    instanceProfile?: pulumi.Input<string>;
    /** The VPC's internet gateway: Elastic IPs are associated only once it is attached. */
    internetGateway: pulumi.Resource;
    tags: Record<string, string>;
    protect: boolean;
}

/** A launched node: its instance and its Elastic IP, the address every step connects to. */
export interface PlannedInstance {
    plan: NodePlan;
    instance: aws.ec2.Instance;
    /** The Elastic IP's address: it survives stop/start and moves to a replacement instance. */
    address: pulumi.Output<string>;
}

/**
 * The instances of one tier (control plane or external etcd), each with an Elastic IP.
 *
 * The image and the preparation script live in one launch template per tier, which instances use at
 * its latest version. A newer image or an edited script makes a new template version and touches no
 * running node (their `$Latest` input is unchanged), while every node created from then on (a
 * replacement, a scale-up) is built from the current image and script: never from the values an old
 * state holds, which is what `ignoreChanges` on the instance would give a replacement. After `pulumi
 * refresh`, the provider records the version a node was built from, and the next `pulumi up` replaces
 * the nodes built from an older one: one at a time, through the bootstrap chain.
 *
 * A change of instance type replaces nodes instead of stopping and starting them in place, which the
 * provider would do to every node at once; replacements are rolled one node at a time by the
 * bootstrap chain, each gated on the cluster's health.
 */
export function launchNodes(tier: string, plans: NodePlan[], args: NodeLaunchArgs, parent: pulumi.Resource): PlannedInstance[] {
    const template = new aws.ec2.LaunchTemplate(
        `${args.clusterName}-${tier}`,
        {
            imageId: args.ami,
            userData: Buffer.from(args.userData, "utf8").toString("base64"),
            updateDefaultVersion: true,
            tags: { ...args.tags, "kubeadm-ha/cluster": args.clusterName },
        },
        { parent },
    );
    return plans.map((plan) => {
        const instance = new aws.ec2.Instance(
            plan.name,
            {
                launchTemplate: { id: template.id, version: "$Latest" },
                instanceType: args.instanceType,
                // Burstable types only: "standard" caps the bill at the hourly price.
                creditSpecification: { cpuCredits: args.cpuCredits },
                // Stated as well as implied by the subnet, so `pulumi preview` (and policies) know the zone.
                availabilityZone: plan.zone,
                subnetId: args.subnetIdByZone[plan.zone],
                vpcSecurityGroupIds: args.securityGroupIds,
                keyName: args.keyName,
                iamInstanceProfile: args.instanceProfile,
                // Outbound access while the node boots and prepares, until its Elastic IP replaces it.
                associatePublicIpAddress: true,
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
            { parent, protect: args.protect, replaceOnChanges: ["instanceType"] },
        );
        const eip = new aws.ec2.Eip(
            `${plan.name}-address`,
            { domain: "vpc", instance: instance.id, tags: { ...args.tags, Name: plan.name, "kubeadm-ha/cluster": args.clusterName } },
            { parent, protect: args.protect, dependsOn: [args.internetGateway] },
        );
        return { plan, instance, address: eip.publicIp };
    });
}
