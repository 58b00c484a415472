// Runs at the end of the job: the state of its main stage, its input, the order of posts.
const fs = require("fs");
const path = require("path");
const env = process.env;
const tag = env.INPUT_TAG;
const order = path.join(env.RUNNER_TEMP, "cleanup-post-order");
fs.appendFileSync(order, `${tag} `);
console.log(`RESULT post-${tag}=${env.STATE_seen}|order:${fs.readFileSync(order, "utf8").trim()}`);
