#!/usr/bin/env node
// Compiles Chainlink's LinkToken and Operator (npm @chainlink/contracts 1.2.0) and our minimal
// consumer (bench/chainlink/) with the compiler they pin, npm solc 0.8.19, and prints
// {"Name": {"abi": [...], "bytecode": "0x..."}} on stdout. Used by bench/chainlink_gas.py.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const here = __dirname;
const root = path.resolve(here, "..", "..");
const modules = path.join(here, "node_modules");
const sources = {
  "LinkToken.sol": "@chainlink/contracts/src/v0.8/shared/token/ERC677/LinkToken.sol",
  "Operator.sol": "@chainlink/contracts/src/v0.8/operatorforwarder/Operator.sol",
};
const input = {
  language: "Solidity",
  sources: {
    "AidocBenchConsumer.sol": {
      content: fs.readFileSync(path.join(root, "bench", "chainlink", "AidocBenchConsumer.sol"), "utf8"),
    },
  },
  settings: {
    optimizer: { enabled: true, runs: 10000 }, // the same setting as our contracts (brownie-config.yaml)
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
for (const [name, target] of Object.entries(sources)) {
  input.sources[name] = { content: `// SPDX-License-Identifier: MIT\npragma solidity 0.8.19;\nimport "${target}";\n` };
}

function findImports(importPath) {
  const resolved = path.join(modules, importPath);
  if (!resolved.startsWith(modules + path.sep) || !fs.existsSync(resolved)) {
    return { error: `not found: ${importPath}` };
  }
  return { contents: fs.readFileSync(resolved, "utf8") };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  process.stderr.write(errors.map((e) => e.formattedMessage).join("\n"));
  process.exit(1);
}
const wanted = { LinkToken: null, Operator: null, AidocBenchConsumer: null };
for (const file of Object.values(output.contracts)) {
  for (const [name, contract] of Object.entries(file)) {
    if (name in wanted) wanted[name] = { abi: contract.abi, bytecode: "0x" + contract.evm.bytecode.object };
  }
}
process.stdout.write(JSON.stringify(wanted));
