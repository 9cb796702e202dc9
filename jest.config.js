/** Tests are compiled by SWC (type checking is `tsc --noEmit`, run first by `npm test`). */
module.exports = {
    testEnvironment: "node",
    roots: ["<rootDir>/test"],
    testMatch: ["**/*.test.ts"],
    transform: { "^.+\\.ts$": ["@swc/jest"] },
    testTimeout: 60000,
};
