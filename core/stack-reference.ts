/**
 * The name under which the program reads its own stack's last outputs (a StackReference to itself).
 *
 * No single form of the name is accepted by every state backend (pulumi/pulumi, pkg/backend):
 * - a self-managed backend (`file://`, `s3://`, `azblob://`, `gs://`) in the project layout
 *   (`diy.projectReferenceStore.ParseReference`) takes `<stack>`, `organization/<stack>` or
 *   `organization/<project>/<stack>`, and fills a missing project in from the current Pulumi.yaml;
 * - the same backends in the older layout, state written before projects (its `.pulumi/meta.yaml` has
 *   version 0, or `PULUMI_DIY_BACKEND_LEGACY_LAYOUT` created it) (`diy.legacyReferenceStore`), take a
 *   bare stack name only: `tokens.ParseStackName` refuses a `/`;
 * - Pulumi Cloud (`httpstateBackendClient.GetStackOutputs`) takes `<organization>/<project>/<stack>`
 *   only.
 * Every self-managed backend reports the organization as the fixed word `organization` (the diy
 * backend's `getTarget`), and Pulumi Cloud reports the stack's real organization, so the organization
 * the program runs in tells them apart: there the bare stack name, which both layouts resolve to this
 * stack of the current project; on Pulumi Cloud the fully qualified name.
 */

/** The organization every self-managed (diy) backend reports to the program. */
export const SELF_MANAGED_ORGANIZATION = "organization";

export interface RunningStack {
    /** `pulumi.getOrganization()` */
    organization: string;
    /** `pulumi.getProject()` */
    project: string;
    /** `pulumi.getStack()` */
    stack: string;
}

/** The StackReference name of the running stack itself, in the form its backend accepts. */
export function selfReferenceName(running: RunningStack): string {
    if (running.organization === SELF_MANAGED_ORGANIZATION) return running.stack;
    return `${running.organization}/${running.project}/${running.stack}`;
}
