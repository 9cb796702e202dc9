/**
 * The instance metadata service for root only (scripts/imds-guard.sh): the first part of every node's
 * user data, so the rules hold before any pod can start. Pure: text in, text out.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const GUARD = readFileSync(join(__dirname, "..", "scripts", "imds-guard.sh"), "utf8").replace(/^#!.*\n/, "");

/**
 * `userData` with the guard run first, right after its shebang. The guard sets bash's strict mode
 * itself, as the preparation that follows does.
 */
export function withMetadataGuard(userData: string): string {
    const shebang = /^#!.*\n/.exec(userData);
    if (!shebang) throw new Error("user data must start with a shebang line");
    return `${shebang[0]}${GUARD}${userData.slice(shebang[0].length)}`;
}
