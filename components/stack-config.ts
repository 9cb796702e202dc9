import * as pulumi from "@pulumi/pulumi";
import { ConfigError, parseConfig, ParsedConfig } from "../core/config";

/**
 * Runs the part of the program that may still reject the configuration (parsing, zone and instance
 * type lookups, planning) and turns a ConfigError into a RunError: Pulumi prints its message alone,
 * without a stack trace, and no resource has been declared yet.
 */
export async function beforeAnyResource<T>(work: () => T | Promise<T>): Promise<T> {
    try {
        return await work();
    } catch (err) {
        if (err instanceof ConfigError) {
            throw new pulumi.RunError(err.message);
        }
        throw err;
    }
}

/** The stack's configuration, validated; warnings are reported through the engine. */
export function loadStackConfig(): ParsedConfig {
    const config = new pulumi.Config();
    const parsed = parseConfig((key) => config.get(key));
    for (const warning of parsed.warnings) {
        pulumi.log.warn(warning);
    }
    return parsed;
}
