/**
 * Tests are compiled by Sucrase, a pure-JavaScript transformer: fast, and no native binary to
 * download. Type checking is `tsc --noEmit`, which `npm test` runs first.
 */
module.exports = {
    testEnvironment: "node",
    roots: ["<rootDir>/test"],
    testMatch: ["**/*.test.ts"],
    transform: { "\\.ts$": "@sucrase/jest-plugin" },
    // The lifecycle scenarios run several `pulumi up`s of real scripts each, with both workers busy.
    testTimeout: 180000,
    // One worker per core: a test's time is mostly the processes it starts, which the other worker's
    // test leaves the second core to (jest's default keeps one core for itself).
    maxWorkers: "100%",
};
