import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { NodePlan } from "../core/plan";
import { CpuCredits } from "../core/config";
import { NodeBuild, NodeLaunch, UNPINNED_VERSION, userDataSha256 } from "../core/node-image";

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
    /** Whether each node keeps what it was built from or is built now (core/node-image.ts planNodeLaunches), by name. */
    launches: Record<string, NodeLaunch>;
}

/** A launched node: its instance and its Elastic IP, the address every step connects to. */
export interface PlannedInstance {
    plan: NodePlan;
    instance: aws.ec2.Instance;
    /** The Elastic IP's address: it survives stop/start and moves to a replacement instance. */
    address: pulumi.Output<string>;
    /** What the node is built from after this run, for the lifecycle record. */
    build: pulumi.Output<NodeBuild>;
}

/**
 * The instances of one tier (control plane or external etcd), each with an Elastic IP.
 *
 * The image and the preparation script live in one launch template per tier. Each instance is declared
 * with the version number it was built from, which the lifecycle record keeps, never `$Latest`: the
 * provider replaces an instance whose declared version differs from the one it was launched from, so
 * with `$Latest` a `pulumi refresh` after any new version (a new Ubuntu image from the lookup, an
 * edited script) planned every node of the tier for replacement at once. A new version now changes
 * only what nodes built from then on get (a scale-up, a roll); a node is rebuilt from it only when
 * planNodeLaunches says so, one node per run. `pulumi up --replace` rebuilds a node from its own
 * version: the image and preparation it was built from.
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
    const newest = template.latestVersion.apply((v) => String(v));
    return plans.map((plan) => {
        const launch = args.launches[plan.name] ?? { name: plan.name, kind: "new" };
        const version: pulumi.Input<string> =
            launch.kind === "kept" ? launch.build.launchTemplateVersion : launch.kind === "unpinned" ? UNPINNED_VERSION : newest;
        const instance = new aws.ec2.Instance(
            plan.name,
            {
                launchTemplate: { id: template.id, version },
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
                    // Pods on the pod network cannot reach IMDS: the token response would need a second hop.
                    // Host-network pods send from the node itself; the metadata guard in the user data
                    // (scripts/imds-guard.sh) refuses every user but root.
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
        const build: pulumi.Output<NodeBuild> =
            launch.kind === "kept"
                ? pulumi.output(launch.build)
                : launch.kind === "unpinned"
                  ? // Its image is what the provider read from the instance; its version stays unpinned until a roll.
                    instance.ami.apply((image) => ({ ...launch.build, image: image ?? launch.build.image }))
                  : newest.apply((launchTemplateVersion) => ({
                        name: plan.name,
                        image: args.ami,
                        launchTemplateVersion,
                        userDataSha256: userDataSha256(args.userData),
                    }));
        return { plan, instance, address: eip.publicIp, build };
    });
}
