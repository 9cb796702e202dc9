import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { HealthCheckPath } from "../core/config";
import { PORTS } from "../core/plan";

export interface ApiLoadBalancerArgs {
    vpcId: pulumi.Input<string>;
    /** Every public subnet: the NLB has a node in each zone. */
    subnetIds: pulumi.Input<string>[];
    securityGroupId: pulumi.Input<string>;
    healthCheckPath: HealthCheckPath;
    /** Instance ids of the control-plane nodes. */
    targets: pulumi.Input<string>[];
    tags: Record<string, string>;
}

/**
 * Health check timing, at the floor AWS allows for a Network Load Balancer target group (ELBv2
 * CreateTargetGroup: interval 5-300 s, timeout 2-120 s, healthy and unhealthy thresholds 2-10).
 *
 *   detection = unhealthyThreshold x interval = 2 x 5 s = 10 s   a dead API server leaves rotation
 *   recovery  = healthyThreshold   x interval = 2 x 5 s = 10 s   a recovered one returns as fast
 *
 * A server that refuses or resets the check fails it at once; one that hangs fails it when the 3 s
 * timeout runs out, so a hung server leaves rotation at most 3 s later than a dead one. The timeout
 * stays below the interval so checks never overlap. Both times are well inside the 40 s node-monitor
 * grace period, so kubelets behind the NLB barely notice a failover. `/readyz` (healthCheckPath)
 * still drains faster: an API server that is shutting down fails it before it stops serving.
 * The policy pack's `api-health-check-https` rule holds detection to at most 10 s.
 */
export const HEALTH_CHECK = {
    intervalSeconds: 5,
    timeoutSeconds: 3,
    healthyThreshold: 2,
    unhealthyThreshold: 2,
} as const;

/**
 * The Network Load Balancer in front of the API servers: TCP passthrough on 6443 (TLS ends at the
 * API servers, so client certificates keep working), cross-zone, with an HTTPS health check of the
 * API's health path. Client IP preservation is off: with it on, a node whose connection through the
 * NLB lands on itself times out (the NLB "hairpin"), and every kubelet talks to the API this way.
 */
export class ApiLoadBalancer extends pulumi.ComponentResource {
    readonly dnsName: pulumi.Output<string>;
    /** "<dns>:6443", kubeadm's controlPlaneEndpoint. */
    readonly endpoint: pulumi.Output<string>;
    readonly url: pulumi.Output<string>;
    readonly targetGroup: aws.lb.TargetGroup;

    constructor(name: string, args: ApiLoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-ha:load-balancer:ApiLoadBalancer", name, {}, opts);

        const nlb = new aws.lb.LoadBalancer(
            name,
            {
                loadBalancerType: "network",
                internal: false,
                subnets: args.subnetIds,
                securityGroups: [args.securityGroupId],
                enableCrossZoneLoadBalancing: true,
                tags: args.tags,
            },
            { parent: this },
        );

        this.targetGroup = new aws.lb.TargetGroup(
            name,
            {
                vpcId: args.vpcId,
                port: PORTS.apiServer,
                protocol: "TCP",
                targetType: "instance",
                preserveClientIp: "false",
                // Close connections to a deregistered API server instead of leaving watches hanging.
                connectionTermination: true,
                deregistrationDelay: 30,
                healthCheck: {
                    enabled: true,
                    protocol: "HTTPS",
                    port: String(PORTS.apiServer),
                    path: args.healthCheckPath,
                    matcher: "200",
                    interval: HEALTH_CHECK.intervalSeconds,
                    timeout: HEALTH_CHECK.timeoutSeconds,
                    healthyThreshold: HEALTH_CHECK.healthyThreshold,
                    unhealthyThreshold: HEALTH_CHECK.unhealthyThreshold,
                },
                tags: args.tags,
            },
            { parent: this },
        );

        new aws.lb.Listener(
            name,
            {
                loadBalancerArn: nlb.arn,
                port: PORTS.apiServer,
                protocol: "TCP",
                defaultActions: [{ type: "forward", targetGroupArn: this.targetGroup.arn }],
                tags: args.tags,
            },
            { parent: nlb },
        );

        args.targets.forEach((targetId, i) => {
            new aws.lb.TargetGroupAttachment(
                `${name}-target-${i}`,
                {
                    targetGroupArn: this.targetGroup.arn,
                    targetId,
                    port: PORTS.apiServer,
                },
                { parent: this.targetGroup },
            );
        });

        this.dnsName = nlb.dnsName;
        this.endpoint = pulumi.interpolate`${nlb.dnsName}:${PORTS.apiServer}`;
        this.url = pulumi.interpolate`https://${this.endpoint}`;
        this.registerOutputs({ dnsName: this.dnsName, url: this.url });
    }
}
