// ESLint (flat config): typescript-eslint's recommended type-aware rules, plus Pulumi's rule that
// an Output never lands in a template literal (it would render as a warning string, not the value;
// use pulumi.interpolate or apply). Formatting is Prettier's job (.prettierrc.json).
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";
import pulumi from "@pulumi/eslint-plugin";

export default defineConfig(
    { ignores: ["node_modules/", "render/", "coverage/", "*.js", "*.mjs"] },
    tseslint.configs.recommended,
    {
        files: ["**/*.ts"],
        languageOptions: {
            parser: tseslint.parser,
            parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
        },
        plugins: { "@pulumi": pulumi },
        rules: {
            "@pulumi/no-output-in-template-literal": "error",
            "@pulumi/no-output-instance-in-template-literal": "error",
        },
    },
    {
        // Test doubles and the offline engine handle provider payloads of any shape.
        files: ["test/**/*.ts", "tools/**/*.ts"],
        rules: { "@typescript-eslint/no-explicit-any": "off", "@typescript-eslint/no-require-imports": "off" },
    },
);
