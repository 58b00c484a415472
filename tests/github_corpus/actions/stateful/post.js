// Runs at the end of the job: the state the other stages saved, and the order of post stages.
const fs = require("fs");
const path = require("path");
const env = process.env;
const tag = env.INPUT_TAG;
const order = path.join(env.RUNNER_TEMP, "stateful-post-order");
fs.appendFileSync(order, `${tag} `);
const state = [env.STATE_pre_value, env.STATE_command_value, env.STATE_file_value];
console.log(`RESULT post-${tag}=${state.join("|")}|order:${fs.readFileSync(order, "utf8").trim()}`);
