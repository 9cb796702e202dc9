/**
 * Tests are compiled by Sucrase, a pure-JavaScript transformer: fast, and no native binary to
 * download. Type checking is `tsc --noEmit`, which `npm test` runs first.
 */
module.exports = {
    testEnvironment: "node",
    roots: ["<rootDir>/test"],
    testMatch: ["**/*.test.ts"],
    transform: { "\\.ts$": "@sucrase/jest-plugin" },
    testTimeout: 60000,
};
