// `make test` runs `npx eslint .`: correctness rules only (no formatting), and import-x/no-cycle,
// which is the JavaScript half of the "no module imports in a cycle" rule (tests/test_layers.py
// is the Python half).
import js from "@eslint/js";
import { createNodeResolver, importX } from "eslint-plugin-import-x";
import globals from "globals";

export default [
  { ignores: ["static/vendor/", "node_modules/", "test-artifacts/", "var/", ".venv/"] },

  js.configs.recommended,
  importX.flatConfigs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: "module" },
    settings: { "import-x/resolver-next": [createNodeResolver()] },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
      // tests look exports up by name (new p[name]) on purpose
      "import-x/namespace": ["error", { allowComputed: true }],
      // libsodium.js's documented use is the default object (sodium.ready, sodium.crypto_*)
      "import-x/no-named-as-default-member": "off",
      "no-unused-vars": ["error", { args: "after-used", argsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  {
    files: ["static/js/**/*.js"],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ["tests/**/*.{js,mjs}", "scripts/**/*.mjs", "bench/**/*.mjs", "eslint.config.js"],
    languageOptions: { globals: globals.node },
  },
];
