import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { Cni, EtcdTopology } from "../core/config";
import { CNI_PORTS, PORTS, SubnetPlan } from "../core/plan";

export interface NetworkArgs {
    clusterName: string;
    vpcCidr: string;
    /** One public subnet per zone, from the plan. */
    subnets: SubnetPlan[];
    apiAllowedCidrs: string[];
    sshAllowedCidrs: string[];
    etcdTopology: EtcdTopology;
    /** The pod network's overlay ports open between nodes. */
    cni: Cni;
    /** Metrics ports open between nodes for Prometheus. */
    monitoring: boolean;
    tags: Record<string, string>;
}

interface IngressRule {
    name: string;
    description: string;
    protocol?: "tcp" | "udp";
    port: number | [number, number];
    from: { cidr: string } | { securityGroup: pulumi.Input<string> };
}

/**
 * VPC, internet gateway, one public subnet per zone, and the security groups of every tier. Each
 * group opens only what its tier serves: the API to the users and the VPC, SSH to the deployer, and the
 * control-plane and etcd ports only to the nodes that speak them. Egress is open (packages, images).
 */
export class Network extends pulumi.ComponentResource {
    readonly vpc: aws.ec2.Vpc;
    readonly subnets: aws.ec2.Subnet[];
    /** Subnet id per zone name. */
    readonly subnetIdByZone: Record<string, pulumi.Output<string>>;
    readonly controlPlaneSecurityGroup: aws.ec2.SecurityGroup;
    readonly loadBalancerSecurityGroup: aws.ec2.SecurityGroup;
    /** Only with external etcd. */
    readonly etcdSecurityGroup?: aws.ec2.SecurityGroup;

    constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-ha:network:Network", name, {}, opts);
        const parent = { parent: this };
        const tags = (suffix: string) => ({ ...args.tags, Name: `${args.clusterName}-${suffix}` });

        this.vpc = new aws.ec2.Vpc(
            `${name}-vpc`,
            {
                cidrBlock: args.vpcCidr,
                // Instances get resolvable private DNS names; they are the Kubernetes node names.
                enableDnsHostnames: true,
                enableDnsSupport: true,
                tags: tags("vpc"),
            },
            parent,
        );
        const gateway = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: this.vpc.id, tags: tags("igw") }, { parent: this.vpc });
        const routes = new aws.ec2.RouteTable(
            `${name}-public`,
            {
                vpcId: this.vpc.id,
                routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: gateway.id }],
                tags: tags("public"),
            },
            { parent: this.vpc },
        );

        this.subnets = args.subnets.map((plan, i) => {
            const subnet = new aws.ec2.Subnet(
                `${name}-public-${i}`,
                {
                    vpcId: this.vpc.id,
                    cidrBlock: plan.cidr,
                    availabilityZone: plan.zone,
                    // Nodes take public addresses so the deployer reaches them over SSH; no NAT gateway to pay for.
                    mapPublicIpOnLaunch: true,
                    tags: tags(`public-${plan.zone}`),
                },
                { parent: this.vpc },
            );
            new aws.ec2.RouteTableAssociation(`${name}-public-${i}`, { routeTableId: routes.id, subnetId: subnet.id }, { parent: subnet });
            return subnet;
        });
        this.subnetIdByZone = Object.fromEntries(args.subnets.map((plan, i) => [plan.zone, this.subnets[i].id]));

        const group = (suffix: string, description: string) =>
            new aws.ec2.SecurityGroup(`${name}-${suffix}`, { vpcId: this.vpc.id, description, tags: tags(suffix) }, { parent: this.vpc });
        this.loadBalancerSecurityGroup = group("api-lb", "kubeadm-ha API load balancer");
        this.controlPlaneSecurityGroup = group("control-plane", "kubeadm-ha control-plane nodes");
        const cpId = this.controlPlaneSecurityGroup.id;
        const fromCidrs = (cidrs: string[]) => cidrs.map((cidr) => ({ cidr }));
        const vpcSource = { cidr: args.vpcCidr };

        // The load balancer filters clients by apiAllowedCidrs. The VPC is allowed too: nodes reach the
        // API through it (kubelets, kube-proxy, hairpin).
        this.rules(`${name}-api-lb`, this.loadBalancerSecurityGroup, [
            ...[...fromCidrs(args.apiAllowedCidrs), vpcSource].map((from, i) => ({
                name: `api-${i}`,
                description: "Kubernetes API through the load balancer",
                port: PORTS.apiServer,
                from,
            })),
        ]);
        // The NLB forwards and health-checks from its private addresses (client IP preservation is off),
        // which the VPC rule covers; apiAllowedCidrs also reach a node directly, e.g. in a failover drill.
        const controlPlaneRules: IngressRule[] = [
            ...[...fromCidrs(args.apiAllowedCidrs), vpcSource].map((from, i) => ({
                name: `api-${i}`,
                description: "Kubernetes API from allowed clients, the load balancer and the VPC",
                port: PORTS.apiServer,
                from,
            })),
            ...fromCidrs(args.sshAllowedCidrs).map((from, i) => ({ name: `ssh-${i}`, description: "SSH from the deployer", port: PORTS.ssh, from })),
            { name: "kubelet", description: "kubelet API between control-plane nodes", port: PORTS.kubelet, from: { securityGroup: cpId } },
            {
                name: "controller-manager",
                description: "kube-controller-manager between control-plane nodes",
                port: PORTS.controllerManager,
                from: { securityGroup: cpId },
            },
            { name: "scheduler", description: "kube-scheduler between control-plane nodes", port: PORTS.scheduler, from: { securityGroup: cpId } },
        ];
        if (args.etcdTopology === "stacked") {
            controlPlaneRules.push({
                name: "etcd",
                description: "stacked etcd client and peer between control-plane nodes",
                port: [PORTS.etcdClient, PORTS.etcdPeer],
                from: { securityGroup: cpId },
            });
        }
        for (const { protocol, port, what } of CNI_PORTS[args.cni]) {
            controlPlaneRules.push({ name: `${args.cni}-${port}`, description: `${what} between nodes`, protocol, port, from: { securityGroup: cpId } });
        }
        if (args.monitoring) {
            controlPlaneRules.push({
                name: "node-exporter",
                description: "node-exporter metrics between nodes",
                port: PORTS.nodeExporter,
                from: { securityGroup: cpId },
            });
            if (args.etcdTopology === "stacked") {
                controlPlaneRules.push({
                    name: "etcd-metrics",
                    description: "stacked etcd metrics between nodes",
                    port: PORTS.etcdMetrics,
                    from: { securityGroup: cpId },
                });
            }
        }
        this.rules(`${name}-control-plane`, this.controlPlaneSecurityGroup, controlPlaneRules);

        if (args.etcdTopology === "external") {
            const etcd = group("etcd", "kubeadm-ha external etcd members");
            this.etcdSecurityGroup = etcd;
            this.rules(`${name}-etcd`, etcd, [
                { name: "client-cp", description: "etcd clients: the API servers", port: PORTS.etcdClient, from: { securityGroup: cpId } },
                { name: "client-etcd", description: "etcd clients: members and their health checks", port: PORTS.etcdClient, from: { securityGroup: etcd.id } },
                { name: "peer", description: "etcd peer traffic between members", port: PORTS.etcdPeer, from: { securityGroup: etcd.id } },
                ...fromCidrs(args.sshAllowedCidrs).map((from, i) => ({ name: `ssh-${i}`, description: "SSH from the deployer", port: PORTS.ssh, from })),
            ]);
        }

        this.registerOutputs({ vpcId: this.vpc.id, subnetIds: this.subnets.map((s) => s.id) });
    }

    private rules(groupName: string, group: aws.ec2.SecurityGroup, rules: IngressRule[]): void {
        for (const rule of rules) {
            const [fromPort, toPort] = typeof rule.port === "number" ? [rule.port, rule.port] : rule.port;
            new aws.vpc.SecurityGroupIngressRule(
                `${groupName}-${rule.name}`,
                {
                    securityGroupId: group.id,
                    description: rule.description,
                    ipProtocol: rule.protocol ?? "tcp",
                    fromPort,
                    toPort,
                    ...("cidr" in rule.from ? { cidrIpv4: rule.from.cidr } : { referencedSecurityGroupId: rule.from.securityGroup }),
                },
                { parent: group },
            );
        }
        new aws.vpc.SecurityGroupEgressRule(
            `${groupName}-egress`,
            {
                securityGroupId: group.id,
                description: "all outbound: packages, images, AWS APIs",
                ipProtocol: "-1",
                cidrIpv4: "0.0.0.0/0",
            },
            { parent: group },
        );
    }
}
