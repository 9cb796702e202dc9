import * as pulumi from "@pulumi/pulumi";
import { LifecycleRecord } from "../core/lifecycle";

export const CLUSTER_LIFECYCLE_TYPE = "kubeadm-ha:lifecycle:ClusterLifecycle";

export interface ClusterLifecycleArgs {
    /** What the stack's last update applied; undefined for a new cluster. */
    running?: LifecycleRecord;
    /** What this update applies, with what each node is built from. */
    requested: pulumi.Input<LifecycleRecord>;
}

/**
 * The running and the requested lifecycle records, side by side in the stack's state. Nothing is
 * created: it is there for the policy pack, which sees the resources a program registers but not its
 * reads (the StackReference the program learns the running record from), so `etcd-quorum-kept`
 * learns the running etcd membership here and compares it with the planned instances.
 *
 * Only `requested` is an input; both are outputs, which is what a stack policy reads. The running
 * record changes on the run after every change, and as an input it would show that run as an update.
 */
export class ClusterLifecycle extends pulumi.ComponentResource {
    constructor(name: string, args: ClusterLifecycleArgs, opts?: pulumi.ComponentResourceOptions) {
        super(CLUSTER_LIFECYCLE_TYPE, `${name}-lifecycle`, { requested: args.requested }, opts);
        this.registerOutputs({ running: args.running, requested: args.requested });
    }
}
