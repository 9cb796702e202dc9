import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { cidrNamePart, uniqueCidrs } from "../core/cidr";
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
    /** What the rule allows, e.g. api-from-203-0-113-7-32: editing a list touches only its own rules. */
    name: string;
    /** The rule's name when rules were named by list position (api-0, ssh-1): the state it takes over. */
    formerName?: string;
    description: string;
    protocol?: "tcp" | "udp";
    port: number | [number, number];
    from: { cidr: pulumi.Input<string> } | { securityGroup: pulumi.Input<string> };
}

/** A node whose public address reaches the API through the load balancer. */
export interface ApiClientNode {
    plan: { name: string };
    /** Its Elastic IP. */
    address: pulumi.Input<string>;
}

/**
 * One rule per distinct block (AWS refuses a rule that repeats another), named by the block. Earlier
 * releases named these rules <kind>-<position in the list>; each rule takes over the state of the one
 * that held its block, so the first run after the renaming changes nothing on AWS.
 */
function fromBlocks(kind: string, blocks: string[], description: string, port: number): IngressRule[] {
    const listed = blocks.map((block) => uniqueCidrs([block])[0]);
    return uniqueCidrs(blocks).map((cidr) => ({
        name: `${kind}-from-${cidrNamePart(cidr)}`,
        formerName: `${kind}-${listed.indexOf(cidr)}`,
        description,
        port,
        from: { cidr },
    }));
}

/**
 * VPC, internet gateway, one public subnet per zone, and the security groups of every tier. Each
 * group opens only what its tier serves: the load balancer's API to the users, the VPC and the
 * control-plane nodes' Elastic IPs (`allowApiFromNodes`); the nodes' API only to the load balancer
 * and the VPC; SSH to the deployer; the control-plane and etcd ports only to the nodes that speak
 * them. Egress is open (packages, images).
 */
export class Network extends pulumi.ComponentResource {
    readonly vpc: aws.ec2.Vpc;
    readonly subnets: aws.ec2.Subnet[];
    /** Elastic IPs can be associated only once the VPC has its gateway. */
    readonly internetGateway: aws.ec2.InternetGateway;
    /** Subnet id per zone name. */
    readonly subnetIdByZone: Record<string, pulumi.Output<string>>;
    readonly controlPlaneSecurityGroup: aws.ec2.SecurityGroup;
    readonly loadBalancerSecurityGroup: aws.ec2.SecurityGroup;
    /** Only with external etcd. */
    readonly etcdSecurityGroup?: aws.ec2.SecurityGroup;
    private readonly loadBalancerGroupName: string;

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
        this.internetGateway = gateway;
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

        /** A security group of one tier, with its ingress rules (named <name>-<suffix>-<rule>) and open egress. */
        const group = (suffix: string, description: string, rules: (self: pulumi.Output<string>) => IngressRule[]) => {
            const sg = new aws.ec2.SecurityGroup(`${name}-${suffix}`, { vpcId: this.vpc.id, description, tags: tags(suffix) }, { parent: this.vpc });
            this.rules(`${name}-${suffix}`, sg, rules(sg.id));
            return sg;
        };
        const between = (from: pulumi.Output<string>) => ({ securityGroup: from });
        const sshRules = fromBlocks("ssh", args.sshAllowedCidrs, "SSH from the deployer", PORTS.ssh);

        // The load balancer filters clients by apiAllowedCidrs. The VPC range covers clients that use
        // its private addresses; the nodes themselves arrive from their Elastic IPs (allowApiFromNodes).
        this.loadBalancerGroupName = `${name}-api-lb`;
        this.loadBalancerSecurityGroup = group("api-lb", "kubeadm-ha API load balancer", () =>
            fromBlocks("api", [...args.apiAllowedCidrs, args.vpcCidr], "Kubernetes API through the load balancer", PORTS.apiServer),
        );
        // A node's API server answers the load balancer (forwarded traffic and health checks come from
        // its private addresses, client IP preservation being off) and the other nodes, never the
        // internet: clients go through the load balancer, where apiAllowedCidrs applies.
        const lb = this.loadBalancerSecurityGroup.id;
        this.controlPlaneSecurityGroup = group("control-plane", "kubeadm-ha control-plane nodes", (cp) => [
            { name: "api-from-lb", description: "Kubernetes API from the load balancer", port: PORTS.apiServer, from: between(lb) },
            {
                ...fromBlocks("api", [args.vpcCidr], "Kubernetes API from inside the VPC: the other nodes, the load balancer", PORTS.apiServer)[0],
                // Formerly the last of api-<i> over apiAllowedCidrs and the VPC range.
                formerName: `api-${[...args.apiAllowedCidrs, args.vpcCidr].indexOf(args.vpcCidr)}`,
            },
            ...sshRules,
            { name: "kubelet", description: "kubelet API between control-plane nodes", port: PORTS.kubelet, from: between(cp) },
            {
                name: "controller-manager",
                description: "kube-controller-manager between control-plane nodes",
                port: PORTS.controllerManager,
                from: between(cp),
            },
            { name: "scheduler", description: "kube-scheduler between control-plane nodes", port: PORTS.scheduler, from: between(cp) },
            ...(args.etcdTopology === "stacked"
                ? [
                      {
                          name: "etcd",
                          description: "stacked etcd client and peer between control-plane nodes",
                          port: [PORTS.etcdClient, PORTS.etcdPeer] as [number, number],
                          from: between(cp),
                      },
                  ]
                : []),
            ...CNI_PORTS[args.cni].map(({ protocol, port, what }) => ({
                name: `${args.cni}-${port}`,
                description: `${what} between nodes`,
                protocol,
                port,
                from: between(cp),
            })),
            ...(args.monitoring
                ? [{ name: "node-exporter", description: "node-exporter metrics between nodes", port: PORTS.nodeExporter, from: between(cp) }]
                : []),
            ...(args.monitoring && args.etcdTopology === "stacked"
                ? [{ name: "etcd-metrics", description: "stacked etcd metrics between nodes", port: PORTS.etcdMetrics, from: between(cp) }]
                : []),
        ]);
        const cpId = this.controlPlaneSecurityGroup.id;
        if (args.etcdTopology === "external") {
            this.etcdSecurityGroup = group("etcd", "kubeadm-ha external etcd members", (etcd) => [
                { name: "client-cp", description: "etcd clients: the API servers", port: PORTS.etcdClient, from: between(cpId) },
                { name: "client-etcd", description: "etcd clients: members and their health checks", port: PORTS.etcdClient, from: between(etcd) },
                { name: "peer", description: "etcd peer traffic between members", port: PORTS.etcdPeer, from: between(etcd) },
                ...sshRules,
            ]);
        }

        this.registerOutputs({ vpcId: this.vpc.id, subnetIds: this.subnets.map((s) => s.id) });
    }

    /**
     * Lets control-plane nodes reach the API through the load balancer: an internet-facing NLB's name
     * resolves to public addresses from inside the VPC too, so a node's kubelet, kube-proxy and
     * bootstrap steps arrive through the internet gateway from its Elastic IP, which no VPC rule
     * matches. One rule per node, named after it; declared once the addresses exist. Every step that
     * talks to the API through the load balancer waits for these rules.
     */
    allowApiFromNodes(nodes: ApiClientNode[]): aws.vpc.SecurityGroupIngressRule[] {
        return nodes.map((node) =>
            this.ingress(this.loadBalancerGroupName, this.loadBalancerSecurityGroup, {
                name: `api-from-${node.plan.name}`,
                description: `Kubernetes API through the load balancer from ${node.plan.name}'s Elastic IP`,
                port: PORTS.apiServer,
                from: { cidr: pulumi.interpolate`${node.address}/32` },
            }),
        );
    }

    private ingress(groupName: string, group: aws.ec2.SecurityGroup, rule: IngressRule): aws.vpc.SecurityGroupIngressRule {
        const [fromPort, toPort] = typeof rule.port === "number" ? [rule.port, rule.port] : rule.port;
        return new aws.vpc.SecurityGroupIngressRule(
            `${groupName}-${rule.name}`,
            {
                securityGroupId: group.id,
                description: rule.description,
                ipProtocol: rule.protocol ?? "tcp",
                fromPort,
                toPort,
                ...("cidr" in rule.from ? { cidrIpv4: rule.from.cidr } : { referencedSecurityGroupId: rule.from.securityGroup }),
            },
            { parent: group, aliases: rule.formerName ? [{ name: `${groupName}-${rule.formerName}` }] : [] },
        );
    }

    private rules(groupName: string, group: aws.ec2.SecurityGroup, rules: IngressRule[]): void {
        for (const rule of rules) this.ingress(groupName, group, rule);
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
