// The event's name and payload as a JavaScript action reads them.
const fs = require("fs");
const event = JSON.parse(fs.readFileSync(process.env.GITHUB_EVENT_PATH, "utf8"));
const pusher = event.pusher ? event.pusher.name : "none";
// Keys sorted: their order in the file is not part of the event.
const inputs = event.inputs ? JSON.stringify(event.inputs, Object.keys(event.inputs).sort()) : "none";
console.log(`RESULT js-event=${process.env.GITHUB_EVENT_NAME} pusher=${pusher} inputs=${inputs}`);
