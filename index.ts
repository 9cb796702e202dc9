/**
 * kubeadm-ha: a highly-available kubeadm control plane on AWS.
 *
 * Composition only: configuration and planning are validated before the first resource, then each
 * component adds one concept. See README.md for the picture and components/ for each piece.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { renderKubeconfig } from "./core/kubeconfig";
import { MIN_CONTROL_PLANE } from "./core/node-image";
import { planCluster } from "./core/plan";
import { renderUserData } from "./core/scripts";
import { KubeadmBootstrap } from "./components/bootstrap";
import { ControlPlane } from "./components/control-plane";
import { ApiLoadBalancer } from "./components/load-balancer";
import { Network } from "./components/network";
import { resolveNodeImage } from "./components/node-image";
import { ClusterPki } from "./components/pki";
import { SshKey } from "./components/ssh-key";
import { beforeAnyResource, loadStackConfig } from "./components/stack-config";

export = async () => {
    const { config, plan, controlPlaneImage } = await beforeAnyResource(async () => {
        const { config } = loadStackConfig();
        const zones = await aws.getAvailabilityZones({ state: "available" });
        const plan = planCluster(config, zones.names);
        const controlPlaneImage = await resolveNodeImage("instanceType", config.instanceType, MIN_CONTROL_PLANE, config.ami);
        return { config, plan, controlPlaneImage };
    });
    const name = config.clusterName;
    const tags = { ...config.tags, "kubeadm-ha/cluster": name };

    const network = new Network(name, {
        clusterName: name,
        vpcCidr: config.vpcCidr,
        subnets: plan.subnets,
        apiAllowedCidrs: config.apiAllowedCidrs,
        sshAllowedCidrs: config.sshAllowedCidrs,
        etcdTopology: config.etcdTopology,
        tags,
    });
    const pki = new ClusterPki(name);
    const ssh = new SshKey(name, { tags });
    const userData = renderUserData(config.kubernetesVersion);

    const controlPlane = new ControlPlane(name, {
        nodes: plan.controlPlane,
        launch: {
            clusterName: name,
            ami: controlPlaneImage.ami,
            instanceType: config.instanceType,
            subnetIdByZone: network.subnetIdByZone,
            securityGroupIds: [network.controlPlaneSecurityGroup.id],
            keyName: ssh.keyName,
            userData,
            rootVolumeSizeGiB: config.rootVolumeSizeGiB,
            tags,
            protect: config.protect,
        },
    });

    const api = new ApiLoadBalancer(name, {
        vpcId: network.vpc.id,
        subnetIds: network.subnets.map((s) => s.id),
        securityGroupId: network.loadBalancerSecurityGroup.id,
        healthCheckPath: config.healthCheckPath,
        targets: controlPlane.nodes.map((n) => n.instance.id),
        tags,
    });

    new KubeadmBootstrap(name, {
        cluster: {
            clusterName: name,
            kubernetesVersion: config.kubernetesVersion,
            podCidr: config.podCidr,
            serviceCidr: config.serviceCidr,
        },
        kubernetesServiceIp: plan.kubernetesServiceIp,
        endpointHost: api.dnsName,
        endpoint: api.endpoint,
        nodes: controlPlane.nodes,
        order: plan.bootstrap,
        pki,
        ssh: { user: config.sshUser, privateKey: ssh.privateKeyOpenssh },
    });

    const kubeconfig = pulumi
        .all([api.url, pki.cas.cluster.certPem, pki.admin.certPem, pki.admin.keyPem])
        .apply(([server, caCertPem, clientCertPem, clientKeyPem]) => renderKubeconfig({ clusterName: name, server, caCertPem, clientCertPem, clientKeyPem }));

    return {
        apiEndpoint: api.url,
        kubeconfig: pulumi.secret(kubeconfig),
        etcdTopology: config.etcdTopology,
        controlPlaneNodes: controlPlane.nodes.map(({ plan: node, instance }) => ({
            name: instance.privateDns,
            zone: node.zone,
            privateIp: instance.privateIp,
            publicIp: instance.publicIp,
            instanceId: instance.id,
        })),
        sshUser: config.sshUser,
        sshPrivateKey: ssh.privateKeyOpenssh,
    };
};
