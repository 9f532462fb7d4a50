// autobahn-js (npm `autobahn`) as callee and caller through our dealer, two sessions in one Node.
// Usage: node --experimental-websocket autobahn_node_dealer.js ws://127.0.0.1:PORT/ realm1 json|msgpack
// Prints one JSON line per step.
'use strict';

const path = require('path');
const autobahn = require(path.join(__dirname, '..', 'interop', 'node_modules', 'autobahn'));
const { say, fail, connection: connect } = require('./node_steps.js');

const [url, realm, serializerName] = process.argv.slice(2);
const deadline = setTimeout(() => fail('timeout'), 15000);


function open() {
  const connection = connect(autobahn, url, realm, serializerName);
  return new Promise((resolve) => {
    connection.onopen = (session) => resolve([connection, session]);
    connection.open();
  });
}

async function main() {
  const [calleeConnection, callee] = await open();
  const [callerConnection, caller] = await open();
  await callee.register('com.acme.add', (args, kwargs) => new autobahn.Result([args[0] + args[1]], kwargs));
  await callee.register('com.acme.count', (args, kwargs, details) => {
    for (let i = 0; i < args[0]; i += 1) details.progress([i]);
    return args[0];
  });
  await callee.register('com.acme.refuse', () => {
    throw new autobahn.Error('com.acme.error.nope', ['nope'], { why: 'locked' });
  });
  await callee.register('com.acme.forever', () => new Promise(() => {}));
  say('registered', {});
  const added = await caller.call('com.acme.add', [2, 3], { unit: 'cm' });
  say('called', { args: added.args, kwargs: added.kwargs });
  const progress = [];
  const counted = await caller.call('com.acme.count', [3], {}, { receive_progress: true })
    .then((result) => result, null, (update) => progress.push(update));
  say('progressed', { progress, result: counted });
  let refused = null;
  try {
    await caller.call('com.acme.refuse');
  } catch (err) {
    refused = { error: err.error, args: err.args, kwargs: err.kwargs };
  }
  say('refused', refused);
  const pending = caller.call('com.acme.forever');
  let canceled = null;
  pending.cancel({ mode: 'killnowait' });
  try {
    await pending;
  } catch (err) {
    canceled = String(err.error || err.message);
  }
  say('canceled', { canceled });
  calleeConnection.close();
  callerConnection.close();
  clearTimeout(deadline);
  say('closed', {});
  setTimeout(() => process.exit(0), 100);
}

main().catch(fail);
