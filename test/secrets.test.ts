/**
 * No secret in plain state. A stack's state encrypts secret values only: every resource's id, every
 * input and output that is not secret, and the stack outputs printed without --show-secrets are plain
 * text in the state file, its backups and `pulumi stack export`. After a full update of each example
 * stack (Pulumi.dev.yaml, Pulumi.external.yaml), none of them may hold the bootstrap token, a private
 * key or a kubeconfig with a client key.
 */
import { readStackConfig } from "../tools/render";
import { ProgramRun, RecordedResource, runProgram, strings } from "./harness";

const COMMAND = "command:remote:Command";
const PASSWORD = "random:index/randomPassword:RandomPassword";

/** A text, and what it decodes to if it is base64 (user data, kubeconfig fields). */
function readable(text: string): string[] {
    const compact = text.replace(/\s/g, "");
    if (compact.length < 16 || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return [text];
    return [text, Buffer.from(compact, "base64").toString("utf8")];
}

interface PlainText {
    where: string;
    text: string;
}

/**
 * What the state holds in plain text for a resource: its id; its inputs with every secret value (at
 * any depth) left out; its outputs except those it declares secret and those that mirror a secret
 * input (the providers carry an input's secrecy to the output of the same name).
 */
function plainState(r: RecordedResource): PlainText[] {
    const secretOutputs = new Set([...(r.options.additionalSecretOutputs ?? []), ...r.secretInputs]);
    const outputs = Object.entries(r.state).filter(([key]) => !secretOutputs.has(key));
    return [
        ...(r.id === undefined ? [] : [{ where: `${r.name}: id`, text: r.id }]),
        ...strings(r.plainInputs ?? r.inputs).map((text) => ({ where: `${r.name}: inputs`, text })),
        ...outputs.flatMap(([key, value]) => strings(value).map((text) => ({ where: `${r.name}: output ${key}`, text }))),
    ];
}

function plainTexts(run: ProgramRun): PlainText[] {
    return [...run.resources.flatMap(plainState), ...strings(run.plainOutputs).map((text) => ({ where: "stack outputs", text }))].flatMap(({ where, text }) =>
        readable(text).map((t) => ({ where, text: t })),
    );
}

/** The bootstrap token the run generated: its public id and its secret part. */
function tokenOf(run: ProgramRun): { id: string; secret: string } {
    const part = (suffix: string) => run.ofType(PASSWORD).find((p) => p.name.endsWith(`-token-${suffix}`))!.state.result as string;
    return { id: part("id"), secret: part("secret") };
}

/** Where a plain text holds something secret. */
function leaks(texts: PlainText[], token: { id: string; secret: string }): string[] {
    const found: string[] = [];
    for (const { where, text } of texts) {
        if (text.includes(token.secret)) found.push(`${where}: the bootstrap token's secret`);
        if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) found.push(`${where}: a private key`);
        if (/client-key-data:/.test(text)) found.push(`${where}: a kubeconfig with a client key`);
    }
    return found;
}

describe.each([["dev"], ["external"]])("the state of a full update of stack %s", (stack) => {
    let run: ProgramRun;
    let cluster = "";
    beforeAll(async () => {
        const { config } = readStackConfig(stack);
        cluster = config.clusterName;
        run = await runProgram(config);
    });

    it("holds no bootstrap token, private key or kubeconfig with a client key in plain text", () => {
        const texts = plainTexts(run);
        expect(texts.length).toBeGreaterThan(500);
        expect(leaks(texts, tokenOf(run))).toEqual([]);
    });

    it("does hold them, encrypted: the search would find them where they are", () => {
        const token = tokenOf(run);
        const everything = run.resources.flatMap((r) => [...strings(r.inputs), ...strings(r.state)]).flatMap(readable);
        expect(everything.some((t) => t.includes(`${token.id}.${token.secret}`))).toBe(true);
        expect(everything.some((t) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(t))).toBe(true);
        expect(
            strings(run.outputs)
                .flatMap(readable)
                .some((t) => /client-key-data:/.test(t)),
        ).toBe(true);
        // A token in an id would be found: a RandomString's id is its result.
        const asId = { ...run.named(`${cluster}-token-secret`), id: token.secret };
        expect(
            leaks(
                plainState(asId).flatMap(({ where, text }) => readable(text).map((t) => ({ where, text: t }))),
                token,
            ),
        ).toEqual([`${cluster}-token-secret: id: the bootstrap token's secret`]);
    });

    it("draws the token from RandomPassword resources, whose id is not their result", () => {
        const parts = run.ofType(PASSWORD);
        expect(parts.map((p) => [p.name, p.id, p.inputs])).toEqual(
            [
                ["id", 6],
                ["secret", 16],
            ].map(([suffix, length]) => [
                `${cluster}-token-${suffix}`,
                "none",
                expect.objectContaining({ length, lower: true, upper: false, numeric: true, special: false }),
            ]),
        );
        for (const part of parts) expect(part.options.additionalSecretOutputs).toContain("result");
        expect(run.ofType("random:index/randomString:RandomString")).toEqual([]);
    });

    it("keeps every step's output secret, and prints none of it while the step runs", () => {
        const commands = run.ofType(COMMAND);
        expect(commands.length).toBeGreaterThan(10);
        for (const c of commands) {
            expect([c.name, c.options.additionalSecretOutputs]).toEqual([c.name, expect.arrayContaining(["stdout", "stderr"])]);
            expect([c.name, c.inputs.logging]).toEqual([c.name, "none"]);
        }
    });
});
