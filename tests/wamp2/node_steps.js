// The step lines the Node scripts print for tests/wamp2/test_node_client.py: one JSON object a line.
'use strict';

function say(step, fields) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + '\n');
}

function fail(error) {
  say('error', { error: String(error && error.stack ? error.stack : JSON.stringify(error)) });
  process.exit(1);
}

module.exports = { say, fail };
