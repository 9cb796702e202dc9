import * as pulumi from "@pulumi/pulumi";
import { NodePlan } from "../core/plan";
import { launchNodes, NodeLaunchArgs, PlannedInstance } from "./node";

export { PlannedInstance } from "./node";

export interface ControlPlaneArgs {
    nodes: NodePlan[];
    launch: NodeLaunchArgs;
}

/**
 * The control-plane instances, node i in zone i mod Z. They boot prepared but empty: the
 * KubeadmBootstrap component turns them into a cluster.
 */
export class ControlPlane extends pulumi.ComponentResource {
    readonly nodes: PlannedInstance[];

    constructor(name: string, args: ControlPlaneArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-ha:control-plane:ControlPlane", name, {}, opts);
        this.nodes = launchNodes("cp", args.nodes, args.launch, this);
        this.registerOutputs({ instanceIds: this.nodes.map((n) => n.instance.id) });
    }
}
