// Saves state for the main and post stages, and tells what it saw.
const fs = require("fs");
const tag = process.env.INPUT_TAG;
fs.appendFileSync(process.env.GITHUB_STATE, `pre_value=pre-${tag}\n`);
console.log(`RESULT pre-${tag}=marker:${process.env.MARKER || "unset"}`);
