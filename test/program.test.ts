import { runProgram } from "./harness";

describe("smoke", () => {
    it("runs", async () => {
        const run = await runProgram({});
        console.log(run.resources.length, run.resources.map((r) => r.type + " " + r.name).join("\n"));
        console.log(JSON.stringify(run.plainOutputs, null, 1));
    });
});
