// autobahn-js (npm `autobahn`) as a callee only, for a caller the test places elsewhere (another
// worker). Usage: node autobahn_node_callee.js ws://127.0.0.1:PORT/ realm1 json|msgpack
// Prints `registered`, then one `invoked` line per call; ends after 30 s or when killed.
'use strict';

const path = require('path');
const autobahn = require(path.join(__dirname, '..', 'interop', 'node_modules', 'autobahn'));
const { say, fail, connection: connect } = require('./node_steps.js');

const [url, realm, serializerName] = process.argv.slice(2);
setTimeout(() => process.exit(0), 30000);

const connection = connect(autobahn, url, realm, serializerName);
connection.onopen = async (session) => {
  try {
    await session.register('com.acme.js_add', (args, kwargs, details) => {
      say('invoked', { args });
      for (let i = 0; i < args[0]; i += 1) details.progress([i]);
      return new autobahn.Result([args[0] + args[1]], kwargs);
    });
    say('registered', {});
  } catch (err) {
    fail(err);
  }
};
connection.open();
