import * as aws from "@pulumi/aws";
import { ConfigError, ConfigKey, key } from "../core/config";
import { Architecture, checkInstanceType, ubuntuImageQuery } from "../core/node-image";

export interface NodeImage {
    ami: string;
    architecture: Architecture;
}

/**
 * Looks up the instance type and the Ubuntu image for it before any resource is declared, so an
 * unknown or undersized type fails `pulumi preview` with a config error instead of a failed launch.
 */
export async function resolveNodeImage(
    configKey: ConfigKey,
    instanceType: string,
    minimum: { vcpus: number; memoryMiB: number },
    amiOverride?: string,
): Promise<NodeImage> {
    let facts: aws.ec2.GetInstanceTypeResult;
    try {
        facts = await aws.ec2.getInstanceType({ instanceType });
    } catch (err) {
        throw new ConfigError([`${key(configKey)} = "${instanceType}" is not an instance type offered in this region (${String(err).split("\n")[0]})`]);
    }
    const architecture = checkInstanceType(configKey, instanceType, facts, minimum);
    if (amiOverride) {
        return { ami: amiOverride, architecture };
    }
    const image = await aws.ec2.getAmi(ubuntuImageQuery(architecture));
    return { ami: image.id, architecture };
}
