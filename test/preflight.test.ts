/**
 * The preflight that `npm run up`, `preview` and `destroy` run before the Pulumi CLI: each check both
 * ways through its function, and the script itself run as npm runs it, with a made-up home directory
 * and an environment that holds only what each case gives it.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { createServer, Server } from "node:http";
import { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { backendUrl, iniSections, preflight, PreflightInput, PreflightReport } from "../tools/preflight";
import { tempDir } from "./tools";

const ROOT = resolve(__dirname, "..");
const DEPLOYER = "203.0.113.7";

/** A home directory with the given files, e.g. { ".aws/credentials": "..." }. */
function home(files: Record<string, string> = {}): string {
    const dir = tempDir("preflight-home");
    for (const [path, content] of Object.entries(files)) {
        mkdirSync(join(dir, path, ".."), { recursive: true });
        writeFileSync(join(dir, path), content);
    }
    return dir;
}

/** A stack file of its own ("test"), read with this project's Pulumi.yaml. */
function writeStack(content: string): string {
    const file = join(tempDir("preflight-stack"), "Pulumi.test.yaml");
    writeFileSync(file, content);
    return file;
}

const CREDENTIALS = { AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "secret" };
const PASSPHRASE = { PULUMI_CONFIG_PASSPHRASE: "correct horse battery staple" };

async function run(overrides: Partial<PreflightInput> & { env?: PreflightInput["env"] }): Promise<PreflightReport> {
    return preflight({
        command: "up",
        stack: "dev",
        home: home(),
        probeInstanceRole: async () => "unreachable",
        lookupPublicAddress: async () => DEPLOYER,
        ...overrides,
        env: overrides.env ?? {},
    });
}

describe("AWS credentials", () => {
    const withPassphrase = (env: PreflightInput["env"]) => ({ ...PASSPHRASE, ...env });

    it("stops with what to set when none can be found", async () => {
        const probed: string[] = [];
        const report = await run({
            env: withPassphrase({}),
            probeInstanceRole: async (endpoint) => {
                probed.push(endpoint);
                return "unreachable";
            },
        });
        expect(probed).toEqual(["http://169.254.169.254"]);
        expect(report.problems).toHaveLength(1);
        expect(report.problems[0]).toMatch(
            /^No AWS credentials found \(no AWS_\* variables, no default profile in ~\/\.aws\/credentials or ~\/\.aws\/config\)\./,
        );
        expect(report.problems[0]).toContain("export AWS_PROFILE=<profile>");
        expect(report.problems[0]).toContain("export AWS_ACCESS_KEY_ID=<key id> AWS_SECRET_ACCESS_KEY=<secret>");
    });

    it("says so when this is an EC2 instance without a role, and asks nothing when IMDS is turned off", async () => {
        const noRole = await run({ env: withPassphrase({}), probeInstanceRole: async () => "no-role" });
        expect(noRole.problems[0]).toContain("This EC2 instance has no IAM role attached.");
        const disabled = await run({
            env: withPassphrase({ AWS_EC2_METADATA_DISABLED: "true" }),
            probeInstanceRole: async () => {
                throw new Error("must not be asked");
            },
        });
        expect(disabled.problems).toHaveLength(1);
    });

    it("takes keys from the environment, and names the missing half of a pair", async () => {
        expect((await run({ env: withPassphrase(CREDENTIALS) })).found).toContain("AWS credentials from AWS_ACCESS_KEY_ID");
        expect((await run({ env: withPassphrase({ AWS_ACCESS_KEY_ID: "AKIAEXAMPLE" }) })).problems).toEqual([
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both (export AWS_SECRET_ACCESS_KEY=...), or unset AWS_ACCESS_KEY_ID to use a profile.",
        ]);
    });

    it.each<[string, Record<string, string>, PreflightInput["env"], string]>([
        [
            "keys in the default profile",
            { ".aws/credentials": "[default]\naws_access_key_id = AKIA\naws_secret_access_key = s\n" },
            {},
            "AWS credentials from the default profile",
        ],
        [
            "an SSO profile named by AWS_PROFILE",
            { ".aws/config": "[profile work]\nsso_session = corp\nregion = eu-west-1\n" },
            { AWS_PROFILE: "work" },
            "AWS credentials from profile work",
        ],
        [
            "an `aws login` default profile",
            { ".aws/config": "[default]\nlogin_session = arn:aws:iam::123456789012:user/me\n" },
            {},
            "AWS credentials from the default profile",
        ],
        [
            "a role assumed from another profile",
            { ".aws/config": "[profile admin]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = default\n" },
            { AWS_PROFILE: "admin" },
            "AWS credentials from profile admin",
        ],
        [
            "a credentials file elsewhere",
            { "keys/aws": "[default]\naws_access_key_id=A\naws_secret_access_key=S\n" },
            { AWS_SHARED_CREDENTIALS_FILE: "KEYS" },
            "AWS credentials from the default profile",
        ],
        [
            "a web identity token",
            {},
            { AWS_WEB_IDENTITY_TOKEN_FILE: "/var/run/token", AWS_ROLE_ARN: "arn:aws:iam::1:role/ci" },
            "AWS credentials from a web identity token",
        ],
        [
            "a container's endpoint",
            {},
            { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2/credentials/x" },
            "AWS credentials from the container's credentials endpoint",
        ],
    ])("finds %s", async (_label, files, env, found) => {
        const dir = home(files);
        const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === "KEYS" ? join(dir, "keys/aws") : v]));
        const report = await run({ home: dir, env: withPassphrase(resolved) });
        expect(report.problems).toEqual([]);
        expect(report.found).toContain(found);
    });

    it("finds an EC2 instance role through the metadata endpoint the SDKs use", async () => {
        const report = await run({
            env: withPassphrase({ AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://127.0.0.1:1338" }),
            probeInstanceRole: async (endpoint) => (endpoint === "http://127.0.0.1:1338" ? "role" : "unreachable"),
        });
        expect(report.found).toContain("AWS credentials from the EC2 instance role");
    });

    it("stops on a profile that does not exist or holds no credentials, rather than on the default one", async () => {
        const files = {
            ".aws/credentials": "[default]\naws_access_key_id = AKIA\naws_secret_access_key = s\n",
            ".aws/config": "[profile regional]\nregion = eu-west-1\n",
        };
        const missing = await run({ home: home(files), env: withPassphrase({ AWS_PROFILE: "prod" }) });
        expect(missing.problems).toEqual([
            'AWS_PROFILE names the AWS profile "prod", which is in neither ~/.aws/credentials nor ~/.aws/config. Create it (aws configure --profile prod, or aws configure sso) or name one that exists (aws configure list-profiles).',
        ]);
        const empty = await run({ home: home(files), env: withPassphrase({ AWS_PROFILE: "regional" }) });
        expect(empty.problems).toHaveLength(1);
        expect(empty.problems[0]).toMatch(/^The AWS profile "regional" \(AWS_PROFILE\) in ~\/\.aws\/config holds no credentials/);
        const noDefault = await run({ home: home({ ".aws/config": "[default]\nregion = us-east-1\n" }), env: withPassphrase({}) });
        expect(noDefault.problems[0]).toMatch(/^No AWS credentials found/);
    });

    it("follows the stack's own aws:profile before AWS_PROFILE", async () => {
        const stack = writeStack("config:\n  aws:profile: ops\n");
        const report = await run({
            stack,
            home: home({ ".aws/config": "[profile ops]\ncredential_process = /bin/creds\n" }),
            env: withPassphrase({ AWS_PROFILE: "other" }),
        });
        expect(report.found).toContain("AWS credentials from profile ops");
    });

    it("reads INI files as the AWS tools write them", () => {
        const sections = iniSections("# comment\n[default]\nAWS_Access_Key_ID = A\n; note\n[profile x]\nregion=us-east-1\n");
        expect([...sections.keys()]).toEqual(["default", "profile x"]);
        expect(sections.get("default")?.get("aws_access_key_id")).toBe("A");
    });
});

describe("the secrets passphrase", () => {
    const withCredentials = (env: PreflightInput["env"]) => ({ ...CREDENTIALS, ...env });

    it("is required with the local backend of Pulumi.yaml, and says how to set it", async () => {
        const report = await run({ env: withCredentials({}) });
        expect(report.problems).toHaveLength(1);
        expect(report.problems[0]).toMatch(/^PULUMI_CONFIG_PASSPHRASE is not set\. Stack dev keeps its state on this machine \(file:\/\/~\)/);
        expect(report.problems[0]).toContain("export PULUMI_CONFIG_PASSPHRASE='<a long passphrase>'");
        expect(report.problems[0]).toContain("export PULUMI_CONFIG_PASSPHRASE_FILE=<path of that file>");
    });

    it("is taken from PULUMI_CONFIG_PASSPHRASE, even empty (with a warning), or from a readable file", async () => {
        expect((await run({ env: withCredentials(PASSPHRASE) })).problems).toEqual([]);
        const empty = await run({ env: withCredentials({ PULUMI_CONFIG_PASSPHRASE: "" }) });
        expect(empty.problems).toEqual([]);
        expect(empty.warnings).toEqual(["PULUMI_CONFIG_PASSPHRASE is empty: the stack's secrets are encrypted with an empty passphrase."]);
        const dir = home({ passphrase: "correct horse\n" });
        expect((await run({ env: withCredentials({ PULUMI_CONFIG_PASSPHRASE_FILE: join(dir, "passphrase") }) })).problems).toEqual([]);
        const unreadable = await run({ env: withCredentials({ PULUMI_CONFIG_PASSPHRASE_FILE: join(dir, "nothing-here") }) });
        expect(unreadable.problems).toHaveLength(1);
        expect(unreadable.problems[0]).toMatch(/^PULUMI_CONFIG_PASSPHRASE_FILE=.*nothing-here cannot be read/);
    });

    it("is not needed with Pulumi Cloud or another secrets provider, and is with any other self-managed backend", async () => {
        expect((await run({ env: withCredentials({ PULUMI_BACKEND_URL: "https://api.pulumi.com" }) })).problems).toEqual([]);
        const kms = writeStack("secretsprovider: awskms://alias/pulumi\nencryptedkey: AQIC\n");
        expect((await run({ stack: kms, env: withCredentials({}) })).problems).toEqual([]);
        const s3 = await run({ env: withCredentials({ PULUMI_BACKEND_URL: "s3://state-bucket/kubeadm-ha" }) });
        expect(s3.problems[0]).toMatch(/^PULUMI_CONFIG_PASSPHRASE is not set\. Stack dev keeps its state in s3:\/\/state-bucket\/kubeadm-ha/);
        const salted = writeStack("encryptionsalt: v1:abc:def\n");
        expect((await run({ stack: salted, env: withCredentials({ PULUMI_BACKEND_URL: "https://api.pulumi.com" }) })).problems).toHaveLength(1);
    });

    it("follows the CLI's choice of backend: PULUMI_BACKEND_URL, then Pulumi.yaml, then the login", () => {
        const loggedIn = home({ ".pulumi/credentials.json": JSON.stringify({ current: "https://api.pulumi.com" }) });
        expect(backendUrl({ PULUMI_BACKEND_URL: "gs://b" }, loggedIn, { backend: { url: "file://~" } })).toBe("gs://b");
        expect(backendUrl({}, loggedIn, { backend: { url: "file://~" } })).toBe("file://~");
        expect(backendUrl({}, loggedIn, {})).toBe("https://api.pulumi.com");
        expect(backendUrl({}, home(), {})).toBe("https://api.pulumi.com");
    });
});

describe("the SSH path from this machine", () => {
    const ready = { ...CREDENTIALS, ...PASSPHRASE };
    const narrow = (cidrs: string[]) => writeStack(`config:\n  kubeadm-ha:sshAllowedCidrs:\n${cidrs.map((c) => `    - ${c}\n`).join("")}`);

    it("needs no lookup while SSH is open to every address (the default)", async () => {
        const lookup = jest.fn(async () => DEPLOYER);
        expect((await run({ env: ready, lookupPublicAddress: lookup })).found).toContain("SSH open to every address");
        expect((await run({ stack: writeStack("config: {}\n"), env: ready, lookupPublicAddress: lookup })).problems).toEqual([]);
        expect(lookup).not.toHaveBeenCalled();
    });

    it("passes when a block contains the looked-up address or KUBEADM_HA_DEPLOYER_IP", async () => {
        const stack = narrow(["198.51.100.0/24", "203.0.113.0/24"]);
        expect((await run({ stack, env: ready })).found).toContain(`SSH from ${DEPLOYER} allowed by 203.0.113.0/24`);
        const given = await run({
            stack,
            env: { ...ready, KUBEADM_HA_DEPLOYER_IP: "198.51.100.9" },
            lookupPublicAddress: async () => {
                throw new Error("must not be looked up");
            },
        });
        expect(given.found).toContain("SSH from 198.51.100.9 allowed by 198.51.100.0/24");
    });

    it("stops `up` with the command that adds the address", async () => {
        const report = await run({ stack: narrow(["198.51.100.0/24"]), env: ready });
        expect(report.problems).toEqual([
            [
                `kubeadm-ha:sshAllowedCidrs (198.51.100.0/24) does not contain this machine's public address ${DEPLOYER} (from https://checkip.amazonaws.com).`,
                "    The bootstrap runs kubeadm over SSH from this machine; it would time out once the instances are up. Add the address:",
                `      npx pulumi config set --stack test --path 'sshAllowedCidrs[1]' ${DEPLOYER}/32`,
                "    or, if SSH leaves this machine from another address than HTTPS does, export KUBEADM_HA_DEPLOYER_IP=<that address>.",
            ].join("\n"),
        ]);
    });

    it("leaves `destroy` alone (it opens no SSH connection), and only warns on `preview`", async () => {
        const stack = narrow(["198.51.100.0/24"]);
        const destroy = await run({ command: "destroy", stack, env: ready });
        expect([destroy.problems, destroy.warnings.filter((w) => w.includes("sshAllowedCidrs"))]).toEqual([[], []]);
        const preview = await run({ command: "preview", stack, env: ready });
        expect(preview.problems).toEqual([]);
        expect(preview.warnings[0]).toContain("(A preview opens no SSH connection; `npm run up` will stop here.)");
    });

    it("warns and goes on when the address cannot be looked up, and rejects a malformed KUBEADM_HA_DEPLOYER_IP", async () => {
        const stack = narrow(["198.51.100.0/24"]);
        const offline = await run({
            stack,
            env: ready,
            lookupPublicAddress: async () => {
                throw new Error("fetch failed");
            },
        });
        expect(offline.problems).toEqual([]);
        expect(offline.warnings).toEqual([
            "Could not look up this machine's public address at https://checkip.amazonaws.com (fetch failed), so kubeadm-ha:sshAllowedCidrs was not checked. Set KUBEADM_HA_DEPLOYER_IP=<your public address> to check it offline.",
        ]);
        expect((await run({ stack, env: { ...ready, KUBEADM_HA_DEPLOYER_IP: "my-laptop" } })).problems).toEqual([
            "KUBEADM_HA_DEPLOYER_IP=my-laptop is not an IPv4 address; set it to this machine's public address, e.g. 203.0.113.7.",
        ]);
    });
});

/** The script as `npm run up` runs it: its own process, a made-up home, only the variables given. */
function script(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((done) => {
        execFile(
            join(ROOT, "node_modules/.bin/sucrase-node"),
            [join(ROOT, "tools/preflight.ts"), ...args],
            { cwd: ROOT, env: { PATH: process.env.PATH ?? "", AWS_EC2_METADATA_DISABLED: "true", ...env }, timeout: 30000 },
            (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr }),
        );
    });
}

describe("the preflight script", () => {
    it("stops with one message naming the credentials and the passphrase when neither is set", async () => {
        const result = await script(["--stack", "dev", "--command", "up"], { HOME: home() });
        expect(result.code).toBe(1);
        expect(result.stdout).toBe("");
        expect(result.stderr).toMatch(/^preflight: stack dev: 2 things to set before `pulumi up`:\n {2}- No AWS credentials found/);
        expect(result.stderr).toContain("\n  - PULUMI_CONFIG_PASSPHRASE is not set.");
        expect(result.stderr).toContain("KUBEADM_HA_SKIP_PREFLIGHT=1 skips them.");
    });

    it("stops on the passphrase alone once credentials are in ~/.aws", async () => {
        const dir = home({ ".aws/credentials": "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n" });
        const result = await script(["--stack", "dev"], { HOME: dir });
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(/^preflight: stack dev: 1 thing to set before `pulumi up`:\n {2}- PULUMI_CONFIG_PASSPHRASE is not set/);
    });

    it("lets the run go on with both, and says what it found", async () => {
        const dir = home({ ".aws/credentials": "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n" });
        const result = await script(["--stack", "dev", "--command", "preview"], { HOME: dir, ...PASSPHRASE });
        expect(result).toEqual({
            code: 0,
            stdout: "preflight: stack dev: AWS credentials from the default profile; the secrets passphrase from PULUMI_CONFIG_PASSPHRASE; SSH open to every address\n",
            stderr: "",
        });
    });

    describe("with an EC2 metadata service", () => {
        let server: Server;
        let endpoint: string;
        beforeAll(async () => {
            // IMDSv2: a token from PUT /latest/api/token, then the role's name with that token.
            server = createServer((req, res) => {
                if (req.method === "PUT" && req.url === "/latest/api/token" && req.headers["x-aws-ec2-metadata-token-ttl-seconds"]) {
                    res.end("token-1");
                } else if (req.url === "/latest/meta-data/iam/security-credentials/" && req.headers["x-aws-ec2-metadata-token"] === "token-1") {
                    res.end("deployer-role");
                } else {
                    res.statusCode = 401;
                    res.end();
                }
            });
            await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
            endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        });
        afterAll(() => new Promise<void>((closed) => server.close(() => closed())));

        it("finds the instance role", async () => {
            const result = await script(["--stack", "dev"], {
                HOME: home(),
                ...PASSPHRASE,
                AWS_EC2_METADATA_DISABLED: "false",
                AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint,
            });
            expect(result.code).toBe(0);
            expect(result.stdout).toContain("AWS credentials from the EC2 instance role");
        });
    });

    it("stops `up` on an SSH range without this machine, using the address it is given", async () => {
        const stack = writeStack("config:\n  kubeadm-ha:sshAllowedCidrs:\n    - 198.51.100.0/24\n");
        const result = await script(["--stack", stack], { HOME: home(), ...CREDENTIALS, ...PASSPHRASE, KUBEADM_HA_DEPLOYER_IP: DEPLOYER });
        expect(result.code).toBe(1);
        expect(result.stderr).toContain(`does not contain this machine's public address ${DEPLOYER} (from KUBEADM_HA_DEPLOYER_IP)`);
    });

    it("can be skipped, and rejects an unknown command", async () => {
        expect(await script(["--stack", "dev"], { HOME: home(), KUBEADM_HA_SKIP_PREFLIGHT: "1" })).toEqual({
            code: 0,
            stdout: "",
            stderr: "preflight: skipped (KUBEADM_HA_SKIP_PREFLIGHT=1)\n",
        });
        expect((await script(["--command", "refresh"], { HOME: home() })).code).toBe(2);
    });
});

describe("the npm scripts", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
        scripts: Record<string, string>;
        dependencies: Record<string, string>;
    };

    it.each(["up", "preview", "destroy"])("`npm run %s` runs the preflight, then the project's own Pulumi CLI", (name) => {
        const steps = pkg.scripts[name].split(" && ");
        expect(steps[0]).toBe(`sucrase-node tools/preflight.ts --command ${name} --stack \${STACK:-dev}`);
        expect(steps.slice(1).every((step) => step.startsWith("pulumi "))).toBe(true);
        expect(steps[steps.length - 1]).toBe(`pulumi ${name} --stack \${STACK:-dev}`);
    });

    it("resolve `pulumi` to the pinned `pulumi` package, which downloads nothing at install time", () => {
        // npm puts node_modules/.bin first on a script's PATH.
        expect(pkg.dependencies.pulumi).toMatch(/^\d+\.\d+\.\d+$/);
        expect(resolve(ROOT, "node_modules/.bin", readlinkSync(join(ROOT, "node_modules/.bin/pulumi")))).toBe(join(ROOT, "node_modules/pulumi/run.js"));
        const cli = JSON.parse(readFileSync(join(ROOT, "node_modules/pulumi/package.json"), "utf8")) as { version: string; scripts?: Record<string, string> };
        expect(cli.version).toBe(pkg.dependencies.pulumi);
        expect(Object.keys(cli.scripts ?? {}).filter((s) => /install|prepare/.test(s))).toEqual([]);
        // Other packages' install scripts would call `pulumi plugin install`, i.e. this CLI: they stay off.
        expect(readFileSync(join(ROOT, ".npmrc"), "utf8")).toMatch(/^ignore-scripts=true$/m);
    });
});

describe("the pull-request workflow", () => {
    type Step = { id?: string; uses?: string; run?: string; with?: Record<string, string | number> };
    type Job = { if?: string; environment?: string; permissions?: Record<string, string>; env?: Record<string, string>; steps: Step[] };
    const read = (name: string) =>
        parse(readFileSync(join(ROOT, ".github/workflows", name), "utf8")) as { permissions?: Record<string, string>; jobs: Record<string, Job> };
    const workflow = read("preview.yml");
    const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);

    it("hands the passphrase only to a same-repository pull request in the protected environment, with a read-only role through OIDC", () => {
        const text = readFileSync(join(ROOT, ".github/workflows/preview.yml"), "utf8");
        expect(text).not.toMatch(/AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY/);
        const withSecrets = Object.entries(workflow.jobs).filter(([, job]) => JSON.stringify(job).includes("secrets."));
        expect(withSecrets.map(([name]) => name)).toEqual(["preview"]);
        const preview = workflow.jobs.preview;
        expect(preview.if).toBe("github.event.pull_request.head.repo.full_name == github.repository");
        expect(preview.environment).toBe("preview");
        expect(preview.permissions?.["id-token"]).toBe("write");
        expect(workflow.permissions?.["id-token"]).toBeUndefined();
        const aws = preview.steps.find((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"));
        expect(aws?.with?.["role-to-assume"]).toBe("${{ vars.AWS_PREVIEW_ROLE_ARN }}");
        expect(preview.steps.indexOf(aws!)).toBeLessThan(preview.steps.findIndex((s) => s.uses?.startsWith("pulumi/actions@")));
        // A fork's pull request gets a job that says why there is no preview.
        const fork = workflow.jobs.fork;
        expect(fork.if).toBe("github.event.pull_request.head.repo.full_name != github.repository");
        expect(fork.steps.map((s) => s.run).join("")).toMatch(/::notice::No preview for pull requests from forks/);
    });

    it.each(["preview.yml", "test.yml"])("%s runs on a Node.js line in support (Node 20 left it on 2026-04-30)", (name) => {
        const versions = Object.values(read(name).jobs).flatMap((job) =>
            job.steps.filter((s) => s.uses?.startsWith("actions/setup-node@")).map((s) => Number(s.with?.["node-version"])),
        );
        expect(versions.length).toBeGreaterThan(0);
        for (const v of versions) expect([22, 24]).toContain(v);
    });

    it("previews with the current major of the Pulumi action and the CLI version package.json pins", () => {
        const action = steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
        expect(action?.uses).toBe("pulumi/actions@v7");
        expect(action?.with?.["pulumi-version"]).toBe("${{ steps.cli.outputs.version }}");
        const cli = steps.find((s) => s.id === "cli");
        expect(steps.indexOf(cli!)).toBeLessThan(steps.indexOf(action!));
        // The step's own shell line, run here: it must print the pinned version.
        const output = join(tempDir("preflight-gh"), "output");
        writeFileSync(output, "");
        execFileSync("bash", ["-c", cli!.run!], { cwd: ROOT, env: { PATH: process.env.PATH ?? "", GITHUB_OUTPUT: output } });
        const pinned = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies.pulumi;
        expect(readFileSync(output, "utf8")).toBe(`version=${pinned}\n`);
    });
});
