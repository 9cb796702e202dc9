/**
 * The program's read of its own stack's last outputs names the stack in a form each state backend
 * accepts. The backends' rules are transcribed from pulumi/pulumi's source, and each model says which
 * stack a name resolves to, or refuses it with the backend's own message.
 */
import { selfReferenceName, SELF_MANAGED_ORGANIZATION } from "../core/stack-reference";
import { runProgram } from "./harness";

type Resolved = { stack: string } | { error: string };

/** sdk/go/common/tokens/stack_name.go, ParseStackName. */
function parseStackName(s: string): string | { error: string } {
    if (s === "") return { error: "a stack name may not be empty" };
    if (s.length > 100) return { error: "a stack name cannot exceed 100 characters" };
    const match = /^[A-Za-z0-9_.-]*/.exec(s)![0];
    if (match.length !== s.length)
        return {
            error: `a stack name may only contain alphanumeric, hyphens, underscores, or periods: invalid character "${s[match.length]}" at position ${match.length}`,
        };
    return s;
}

/** pkg/backend/diy/store.go, projectReferenceStore.ParseReference: stacks under .pulumi/stacks/<project>/. */
function diyProjectLayout(ref: string, currentProject: string): Resolved {
    if (ref === "") return { error: "stack name must not be empty" };
    const split = ref.split("/");
    let [org, project, name] = ["", "", ""];
    if (split.length === 1) [name] = split;
    else if (split.length === 2) [org, name] = split;
    else if (split.length === 3) [org, project, name] = split;
    if (org === "") org = "organization";
    if (org !== "organization") return { error: "organization name must be 'organization'" };
    if (project === "") project = currentProject;
    const parsed = parseStackName(name);
    if (typeof parsed !== "string") return parsed;
    return { stack: `organization/${project}/${parsed}` };
}

/** pkg/backend/diy/store.go, legacyReferenceStore.ParseReference: stacks under .pulumi/stacks/, no project. */
function diyLegacyLayout(ref: string): Resolved {
    const parsed = parseStackName(ref);
    return typeof parsed === "string" ? { stack: parsed } : parsed;
}

/** pkg/backend/httpstate/backend.go, httpstateBackendClient.GetStackOutputs: Pulumi Cloud. */
function pulumiCloud(ref: string): Resolved {
    if (ref.split("/").length - 1 !== 2)
        return {
            error:
                "a stack reference's name should be of the form '<organization>/<project>/<stack>'. " +
                "See https://www.pulumi.com/docs/using-pulumi/stack-outputs-and-references/#using-stack-references " +
                "for more information.",
        };
    return { stack: ref };
}

/** Where the running stack lives in each backend: what `pulumi up` itself selected. */
const RUNNING = { project: "kubeadm-ha", stack: "dev" };
const SELF = {
    projectLayout: { stack: `organization/${RUNNING.project}/${RUNNING.stack}` },
    legacyLayout: { stack: RUNNING.stack },
    cloud: (org: string) => ({ stack: `${org}/${RUNNING.project}/${RUNNING.stack}` }),
};

describe("the name of the stack's reference to itself", () => {
    it("on self-managed state resolves to the running stack in the project layout and in the legacy layout", () => {
        const name = selfReferenceName({ organization: SELF_MANAGED_ORGANIZATION, ...RUNNING });
        expect(diyProjectLayout(name, RUNNING.project)).toEqual(SELF.projectLayout);
        expect(diyLegacyLayout(name)).toEqual(SELF.legacyLayout);
    });

    it("on Pulumi Cloud is fully qualified with the stack's organization", () => {
        const name = selfReferenceName({ organization: "acme", ...RUNNING });
        expect(pulumiCloud(name)).toEqual(SELF.cloud("acme"));
    });

    it("is not the fully qualified name on self-managed state: the legacy layout refuses it", () => {
        expect(diyLegacyLayout(`organization/${RUNNING.project}/${RUNNING.stack}`)).toEqual({
            error: 'a stack name may only contain alphanumeric, hyphens, underscores, or periods: invalid character "/" at position 12',
        });
        // Nor a bare name on Pulumi Cloud.
        expect(pulumiCloud(RUNNING.stack)).toHaveProperty("error");
    });

    it("is what the program reads under mocks: a self-managed backend in either layout finds the running stack", async () => {
        // The offline engine runs stack "test" of project "kubeadm-ha" with the organization a self-managed backend reports.
        const run = await runProgram({});
        const [read] = run.ofType("pulumi:pulumi:StackReference");
        expect(read.name).toBe("previous-run");
        expect(diyProjectLayout(read.inputs.name, "kubeadm-ha")).toEqual({ stack: "organization/kubeadm-ha/test" });
        expect(diyLegacyLayout(read.inputs.name)).toEqual({ stack: "test" });
    });
});
