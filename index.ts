/**
 * kubeadm-ha: a highly-available kubeadm control plane on AWS.
 *
 * Composition only: configuration and planning are validated before the first resource, then each
 * component adds one concept. See README.md for the picture and components/ for each piece.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { renewalRequest } from "./core/cert-renewal";
import { ConfigError } from "./core/config";
import { estimateCost } from "./core/cost";
import { renderKubeconfig } from "./core/kubeconfig";
import { ADDONS_OUTPUT, LifecycleRecord, lifecycleRecord } from "./core/lifecycle";
import { withMetadataGuard } from "./core/metadata-guard";
import { MIN_CONTROL_PLANE, MIN_ETCD, planNodeLaunches, recordedBuilds, userDataSha256 } from "./core/node-image";
import { planCluster } from "./core/plan";
import { renderEtcdUserData, renderUserData } from "./core/scripts";
import { ClusterAddons } from "./components/addons";
import { BackupBucket } from "./components/backup-bucket";
import { KubeadmBootstrap } from "./components/bootstrap";
import { ControlPlane } from "./components/control-plane";
import { EtcdCluster } from "./components/etcd-cluster";
import { ClusterLifecycle } from "./components/lifecycle";
import { ApiLoadBalancer } from "./components/load-balancer";
import { Network } from "./components/network";
import { resolveNodeImage } from "./components/node-image";
import { ClusterPki } from "./components/pki";
import { SshKey } from "./components/ssh-key";
import {
    beforeAnyResource,
    CERTIFICATES_OUTPUT,
    checkInstanceTypeOfferings,
    loadStackConfig,
    readPreviousRun,
    refuseWhatTheClusterCannotTake,
} from "./components/stack-config";

export = async () => {
    const { config, plan, controlPlaneImage, etcdImage, costEstimate, running, lifecycle, region, renewalRequestedFor, userData, launchPlan } =
        await beforeAnyResource(async () => {
            const { config } = loadStackConfig();
            // What the stack's last update applied: a live cluster cannot take every change (core/lifecycle.ts).
            const previous = await readPreviousRun();
            const running = previous.lifecycle;
            const zones = await aws.getAvailabilityZones({ state: "available" });
            const plan = planCluster(config, zones.names);
            const lifecycle = lifecycleRecord(config, plan);
            refuseWhatTheClusterCannotTake(running, lifecycle);
            const controlPlaneImage = await resolveNodeImage("instanceType", config.instanceType, MIN_CONTROL_PLANE, config.ami);
            const etcdImage =
                config.etcdTopology === "external" ? await resolveNodeImage("etcdInstanceType", config.etcdInstanceType, MIN_ETCD, config.ami) : undefined;
            await checkInstanceTypeOfferings(config, plan);
            const region = zones.region ?? aws.config.region;
            if (!region) throw new ConfigError(["aws:region is not set; allowed: an AWS region such as us-east-1 (pulumi config set aws:region us-east-1)"]);
            const costEstimate = estimateCost(config, region, plan.zones.length);
            // The clock is read here only: a renewal request changes only when the last update's earliest expiry enters the window.
            const renewalRequestedFor = renewalRequest(previous.certificates, new Date(), config.certificateRenewalDays);
            // Each node keeps the image and preparation it was built from, or is rebuilt now, one per run (core/node-image.ts).
            // Every tier's preparation starts with the metadata guard (core/metadata-guard.ts).
            const userData = { controlPlane: withMetadataGuard(renderUserData(config.kubernetesVersion)), etcd: withMetadataGuard(renderEtcdUserData()) };
            const source = (nodes: { name: string }[], image: string, script: string) =>
                nodes.map((n) => ({ name: n.name, image, userDataSha256: userDataSha256(script) }));
            const launchPlan = planNodeLaunches(
                [
                    ...source(plan.controlPlane, controlPlaneImage.ami, userData.controlPlane),
                    ...(etcdImage ? source(plan.etcd, etcdImage.ami, userData.etcd) : []),
                ],
                recordedBuilds(running, plan),
                { amiOverride: config.ami !== undefined, roll: config.rollNodes },
            );
            return { config, plan, controlPlaneImage, etcdImage, costEstimate, running, lifecycle, region, renewalRequestedFor, userData, launchPlan };
        });
    const name = config.clusterName;
    for (const launch of launchPlan.launches) {
        if (launch.kind === "rolled")
            pulumi.log.info(`${launch.name} is rebuilt in this run from the current image and preparation (${launch.reasons.join("; ")})`);
    }
    if (launchPlan.waiting.length > 0) {
        pulumi.log.info(
            `one node is rebuilt per pulumi up; after this run succeeds, run it again for: ${launchPlan.waiting.map((w) => `${w.name} (${w.reasons.join("; ")})`).join(", ")}`,
        );
    }
    const launches = Object.fromEntries(launchPlan.launches.map((l) => [l.name, l]));
    const tags = { ...config.tags, "kubeadm-ha/cluster": name };

    const network = new Network(name, {
        clusterName: name,
        vpcCidr: config.vpcCidr,
        subnets: plan.subnets,
        apiAllowedCidrs: config.apiAllowedCidrs,
        sshAllowedCidrs: config.sshAllowedCidrs,
        etcdTopology: config.etcdTopology,
        cni: config.cni,
        monitoring: config.monitoring,
        tags,
    });
    // Every leaf it issues is re-issued in the window pulumi up renews kubeadm's certificates in.
    const pki = new ClusterPki(name, { renewWithinDays: config.certificateRenewalDays });
    // Off-node etcd snapshots, and the one identity that may write them: for the nodes that run etcd members.
    const backups = new BackupBucket(name, {
        clusterName: name,
        region,
        existingBucket: config.etcdBackupBucket,
        encryption: config.etcdBackupKmsKey,
        retentionDays: config.etcdBackupS3RetentionDays,
        interval: config.etcdBackupInterval,
        restoreFrom: config.etcdRestoreFrom,
        tags,
    });
    const restoreFrom = config.etcdRestoreFrom && { source: config.etcdRestoreFrom, region };
    const stacked = config.etcdTopology === "stacked";
    const ssh = new SshKey(name, { tags });
    const sshAccess = { user: config.sshUser, privateKey: ssh.privateKeyOpenssh };
    const launch = {
        launches,
        clusterName: name,
        subnetIdByZone: network.subnetIdByZone,
        keyName: ssh.keyName,
        rootVolumeSizeGiB: config.rootVolumeSizeGiB,
        cpuCredits: config.cpuCredits,
        internetGateway: network.internetGateway,
        tags,
        protect: config.protect,
    };

    const etcd =
        etcdImage && network.etcdSecurityGroup
            ? new EtcdCluster(name, {
                  clusterName: name,
                  nodes: plan.etcd,
                  launch: {
                      ...launch,
                      ami: etcdImage.ami,
                      instanceType: config.etcdInstanceType,
                      securityGroupIds: [network.etcdSecurityGroup.id],
                      userData: userData.etcd,
                      instanceProfile: backups.instanceProfileName,
                  },
                  pki,
                  ssh: sshAccess,
                  backupRetention: config.etcdBackupRetention,
                  offsite: backups.offsite,
                  restoreFrom,
              })
            : undefined;

    const controlPlane = new ControlPlane(name, {
        nodes: plan.controlPlane,
        launch: {
            ...launch,
            ami: controlPlaneImage.ami,
            instanceType: config.instanceType,
            securityGroupIds: [network.controlPlaneSecurityGroup.id],
            userData: userData.controlPlane,
            // With external etcd the control plane holds no etcd data, and no role.
            ...(stacked ? { instanceProfile: backups.instanceProfileName } : {}),
        },
    });

    // What this update applies, with what each node is built from (read back by the next run).
    const recorded = pulumi
        .all([...controlPlane.nodes, ...(etcd?.members ?? [])].map((n) => n.build))
        .apply((nodes): LifecycleRecord => ({ ...lifecycle, nodes }));
    new ClusterLifecycle(name, { running, requested: recorded });

    // The nodes reach the API through the load balancer from their Elastic IPs, known only now.
    const nodeApiAccess = network.allowApiFromNodes(controlPlane.nodes);

    const api = new ApiLoadBalancer(name, {
        vpcId: network.vpc.id,
        subnetIds: network.subnets.map((s) => s.id),
        securityGroupId: network.loadBalancerSecurityGroup.id,
        healthCheckPath: config.healthCheckPath,
        targets: controlPlane.nodes.map((n) => n.instance.id),
        tags,
    });

    const bootstrap = new KubeadmBootstrap(name, {
        cluster: {
            clusterName: name,
            kubernetesVersion: config.kubernetesVersion,
            podCidr: config.podCidr,
            serviceCidr: config.serviceCidr,
            exposeMetrics: config.monitoring,
        },
        kubernetesServiceIp: plan.kubernetesServiceIp,
        endpointHost: api.dnsName,
        endpoint: api.endpoint,
        nodes: controlPlane.nodes,
        apiAccess: nodeApiAccess,
        pki,
        ssh: sshAccess,
        etcdBackupRetention: config.etcdBackupRetention,
        offsite: backups.offsite,
        restoreFrom,
        renewWithinDays: config.certificateRenewalDays,
        renewalRequestedFor,
        externalEtcd: etcd && { endpoints: etcd.endpoints, clientCert: etcd.apiServerClient, certificates: etcd.certificates, healthGate: etcd.healthGate },
    });

    const kubeconfig = pulumi
        .all([api.url, pki.cas.cluster.certPem, pki.admin.certPem, pki.admin.keyPem])
        .apply(([server, caCertPem, clientCertPem, clientKeyPem]) => renderKubeconfig({ clusterName: name, server, caCertPem, clientCertPem, clientKeyPem }));

    const addons = new ClusterAddons(name, {
        kubeconfig: pulumi.secret(kubeconfig),
        bootstrapped: bootstrap.apiReachable,
        cni: config.cni,
        podCidr: config.podCidr,
        monitoring: config.monitoring,
        etcdTopology: config.etcdTopology,
    });

    return {
        apiEndpoint: api.url,
        kubeconfig: pulumi.secret(kubeconfig),
        [ADDONS_OUTPUT]: addons.installed,
        etcdTopology: config.etcdTopology,
        controlPlaneNodes: controlPlane.nodes.map(({ plan: node, instance, address }) => ({
            name: instance.privateDns,
            zone: node.zone,
            privateIp: instance.privateIp,
            publicIp: address,
            instanceId: instance.id,
        })),
        etcdMembers:
            etcd?.members.map(({ plan: member, instance, address }) => ({
                name: member.name,
                zone: member.zone,
                privateIp: instance.privateIp,
                publicIp: address,
                instanceId: instance.id,
            })) ?? [],
        etcdEndpoints: etcd?.endpoints ?? [],
        etcdBackups: {
            bucket: backups.bucketName,
            prefix: backups.prefix,
            interval: config.etcdBackupInterval.text,
            kmsKeyArn: backups.kmsKeyArn ?? null,
            instanceProfile: backups.instanceProfileName,
        },
        sshUser: config.sshUser,
        sshPrivateKey: ssh.privateKeyOpenssh,
        costEstimate,
        lifecycle: recorded,
        [CERTIFICATES_OUTPUT]: bootstrap.certificates,
    };
};
