// Drives the npm `wamp1` WAMP v1 client against our server and prints one JSON line of results.
// Usage: node wamp1_client.js ws://127.0.0.1:PORT/
'use strict';

const Wamp = require('wamp1');

const url = process.argv[2];
const results = {};
const deadline = setTimeout(() => finish('timeout'), 5000);

function finish(error) {
  clearTimeout(deadline);
  if (error) results.error = String(error);
  process.stdout.write(JSON.stringify(results) + '\n');
  process.exit(error ? 1 : 0);
}

const wamp = new Wamp(url, {}, (welcome) => {
  results.welcome = welcome;
  results.sessionId = wamp.sessionId;
  // A CURIE: the server expands "rpc:sum" to "acme/rpc/sum" by concatenation.
  wamp.prefix('rpc', 'acme/rpc/');
  wamp.call('rpc:sum', 2, 3, (err, result) => {
    if (err) return finish('call failed: ' + JSON.stringify(err));
    results.sum = result;
    wamp.subscribe('acme/channel/interop', (data) => {
      results.event = data;
      finish();
    });
    // acme.topic broadcasts a publish to every subscriber, the publisher included.
    wamp.publish('acme/channel/interop', { from: 'wamp1' });
  });
});
wamp.on('error', (err) => finish('wamp error: ' + err));
