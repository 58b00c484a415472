// Reads its inputs and the pre stage's state, saves more state both ways, sets an output.
const fs = require("fs");
const env = process.env;
const tag = env.INPUT_TAG;
console.log(`RESULT main-${tag}=${env["INPUT_WITH-HYPHEN"]}|state:${env.STATE_pre_value || "unset"}`);
console.log(`::save-state name=command_value::command-${tag}`);
fs.appendFileSync(env.GITHUB_STATE, `file_value=file-${tag}\n`);
fs.appendFileSync(env.GITHUB_OUTPUT, `greeting=hello from ${tag}\n`);
