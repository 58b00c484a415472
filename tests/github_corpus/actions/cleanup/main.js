// Saves state for the post stage.
const fs = require("fs");
const tag = process.env.INPUT_TAG;
fs.appendFileSync(process.env.GITHUB_STATE, `seen=main-${tag}\n`);
console.log(`RESULT main-${tag}=ran`);
